{#- Rows n = 0 .. upper_bound - 1 (upper_bound at most 10000). -#}
{% macro number_series(upper_bound) -%}
    {{ return(adapter.dispatch('number_series', 'behavioral_segments')(upper_bound)) }}
{%- endmacro %}

{#- A cross join of digits: standard SQL, so it runs on any warehouse. -#}
{% macro default__number_series(upper_bound) -%}
    select n from (
        select ones.d + 10 * tens.d + 100 * hundreds.d + 1000 * thousands.d as n
        from {{ _digits() }} as ones
        cross join {{ _digits() }} as tens
        cross join {{ _digits() }} as hundreds
        cross join {{ _digits() }} as thousands
    ) as numbers
    where n < {{ upper_bound }}
{%- endmacro %}

{% macro duckdb__number_series(upper_bound) -%}
    select range as n from range({{ upper_bound }})
{%- endmacro %}

{% macro bigquery__number_series(upper_bound) -%}
    select n from unnest(generate_array(0, {{ upper_bound }} - 1)) as n
{%- endmacro %}

{% macro _digits() -%}
    (select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
     union all select 5 union all select 6 union all select 7 union all select 8 union all select 9)
{%- endmacro %}
