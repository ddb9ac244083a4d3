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

{#- The continuous percentile (fraction 0-1, interpolated) of an expression over a group. -#}
{% macro percentile_of(expr, fraction) -%}
    {{ return(adapter.dispatch('percentile_of', 'behavioral_segments')(expr, fraction)) }}
{%- endmacro %}

{% macro default__percentile_of(expr, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__percentile_of(expr, fraction) -%}
    quantile_cont({{ expr }}, {{ fraction }})
{%- endmacro %}

{#- Approximate on BigQuery, as median_of. -#}
{% macro bigquery__percentile_of(expr, fraction) -%}
    approx_quantiles({{ expr }}, 100)[offset({{ (fraction * 100) | round | int }})]
{%- endmacro %}
