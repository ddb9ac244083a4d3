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

{#- Money: an exact decimal, so sums do not depend on the order a parallel engine adds in
    and reruns are bit-identical. Amounts (prices, revenue, their sums) keep 4 decimals,
    cents and the sub-cent prices some currencies and fuel have; means keep 6. 28 digits
    hold any sum of landed amounts (ingestion quarantines one of 10^14 or more); BigQuery
    allows at most 29 digits before the point. NUMERIC(p, s) is the standard name on every
    warehouse here (on BigQuery a parameterized NUMERIC, on Spark an alias of DECIMAL). -#}
{% macro type_money(scale=4) -%}
    {{ return(adapter.dispatch('type_money', 'behavioral_segments')(scale)) }}
{%- endmacro %}

{% macro default__type_money(scale) -%}
    numeric(28, {{ scale }})
{%- endmacro %}
