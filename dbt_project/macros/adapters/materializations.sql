{#- How the stateful models (the event-level models and the membership history) are kept:
    incrementally, with row-level deletes. Spark's Parquet tables have no row-level
    delete, so there they are rebuilt on every run. -#}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'behavioral_segments')()) }}
{%- endmacro %}

{% macro default__incremental_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__incremental_materialization() -%}
    {{ return('table') }}
{%- endmacro %}
