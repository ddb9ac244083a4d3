{#- A 64-bit floating point type. dbt's type_float() is `float`, which is 64 bits on
    PostgreSQL, BigQuery and Snowflake but 32 bits on DuckDB: rates computed as `float`
    there agreed with other engines to only 7 digits. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'behavioral_segments')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    {{ dbt.type_float() }}
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}
