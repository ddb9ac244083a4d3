{#- Every period (months since cohort_month, from 0) up to the month of as_of, for each row
    of `cohort_sizes` (a CTE with a cohort_month column): cohorts keep their quiet months. -#}
{% macro cohort_periods(cohort_sizes) -%}
    select {{ cohort_sizes }}.*, cast(numbers.n as {{ dbt.type_bigint() }}) as period
    from {{ cohort_sizes }}
    cross join ({{ number_series(10000) }}) as numbers
    where numbers.n <= {{ dbt.datediff(
        cohort_sizes ~ '.cohort_month',
        'cast(' ~ dbt.date_trunc('month', as_of()) ~ ' as date)',
        'month') }}
{%- endmacro %}
