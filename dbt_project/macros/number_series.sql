{#- Rows n = 0 .. upper_bound - 1, built from a cross join so it runs on any warehouse. -#}
{% macro number_series(upper_bound) -%}
    {{ return(adapter.dispatch('number_series', 'behavioral_segments')(upper_bound)) }}
{%- endmacro %}

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

{% macro _digits() -%}
    (select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
     union all select 5 union all select 6 union all select 7 union all select 8 union all select 9)
{%- endmacro %}

{#- Every period (months since cohort_month, from 0) up to the month of as_of, for each row
    of `cohort_sizes` (a CTE with a cohort_month column): cohorts keep their quiet months. -#}
{% macro cohort_periods(cohort_sizes) -%}
    select {{ cohort_sizes }}.*, numbers.n as period
    from {{ cohort_sizes }}
    cross join ({{ number_series(10000) }}) as numbers
    where numbers.n <= {{ dbt.datediff(
        cohort_sizes ~ '.cohort_month',
        'cast(' ~ dbt.date_trunc('month', as_of()) ~ ' as date)',
        'month') }}
{%- endmacro %}
