{#- The median of an expression over a group. -#}
{% macro median_of(expr) -%}
    {{ return(adapter.dispatch('median_of', 'behavioral_segments')(expr)) }}
{%- endmacro %}

{% macro default__median_of(expr) -%}
    percentile_cont(0.5) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__median_of(expr) -%}
    median({{ expr }})
{%- endmacro %}

{% macro snowflake__median_of(expr) -%}
    median({{ expr }})
{%- endmacro %}

{#- BigQuery has no exact median aggregate (PERCENTILE_CONT is a window function there):
    this one is approximate, one of the middle values of the group. -#}
{% macro bigquery__median_of(expr) -%}
    approx_quantiles({{ expr }}, 2)[offset(1)]
{%- endmacro %}
