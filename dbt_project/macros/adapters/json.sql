{#- A top-level key of a JSON object held as text, as text (null when absent). -#}
{% macro json_text(json_expr, key) -%}
    {{ return(adapter.dispatch('json_text', 'behavioral_segments')(json_expr, key)) }}
{%- endmacro %}

{% macro default__json_text(json_expr, key) -%}
    {{ no_form_for('json_text', 'json.sql') }}
{%- endmacro %}

{% macro duckdb__json_text(json_expr, key) -%}
    json_extract_string({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}

{% macro postgres__json_text(json_expr, key) -%}
    (cast({{ json_expr }} as json) ->> '{{ key }}')
{%- endmacro %}

{% macro spark__json_text(json_expr, key) -%}
    get_json_object({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}

{% macro bigquery__json_text(json_expr, key) -%}
    json_value({{ json_expr }}, '$.{{ key }}')
{%- endmacro %}

{% macro snowflake__json_text(json_expr, key) -%}
    json_extract_path_text({{ json_expr }}, '{{ key }}')
{%- endmacro %}
