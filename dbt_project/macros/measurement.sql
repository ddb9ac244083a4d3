{#- Aggregates of a set of measured carts (int_recovery_campaign_carts rows): sizes,
    recovery, revenue, and the treated and holdout groups. -#}
{% macro recovery_measures() -%}
    count(*) as abandoned_carts,
    cast(sum(case when is_recovered then 1 else 0 end) as {{ dbt.type_bigint() }}) as recovered_carts,
    {{ median_of('hours_to_recovery') }} as median_hours_to_recovery,
    cast(sum(recovered_revenue) as {{ type_money() }}) as recovered_revenue,
    cast(sum(case when campaign_group = 'treated' then 1 else 0 end) as {{ dbt.type_bigint() }}) as treated_carts,
    cast(sum(case when campaign_group = 'treated' and is_recovered then 1 else 0 end) as {{ dbt.type_bigint() }}) as treated_recovered,
    cast(sum(case when campaign_group = 'holdout' then 1 else 0 end) as {{ dbt.type_bigint() }}) as holdout_carts,
    cast(sum(case when campaign_group = 'holdout' and is_recovered then 1 else 0 end) as {{ dbt.type_bigint() }}) as holdout_recovered
{%- endmacro %}

{#- Rates over recovery_measures() columns, and the uplift (treated rate minus holdout
    rate) with its 95% confidence interval by the Wald interval for a difference of two
    independent proportions: uplift +/- 1.96 * sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0).
    Null where a group is empty. -#}
{% macro recovery_rates() -%}
    {%- set p1 = 'cast(treated_recovered as ' ~ type_double() ~ ') / nullif(treated_carts, 0)' -%}
    {%- set p0 = 'cast(holdout_recovered as ' ~ type_double() ~ ') / nullif(holdout_carts, 0)' -%}
    {%- set se = 'sqrt((' ~ p1 ~ ') * (1 - (' ~ p1 ~ ')) / nullif(treated_carts, 0) + (' ~ p0 ~ ') * (1 - (' ~ p0 ~ ')) / nullif(holdout_carts, 0))' -%}
    cast(recovered_carts as {{ type_double() }}) / nullif(abandoned_carts, 0) as recovery_rate,
    {{ p1 }} as treated_recovery_rate,
    {{ p0 }} as holdout_recovery_rate,
    ({{ p1 }}) - ({{ p0 }}) as uplift,
    ({{ p1 }}) - ({{ p0 }}) - 1.96 * {{ se }} as uplift_ci_low,
    ({{ p1 }}) - ({{ p0 }}) + 1.96 * {{ se }} as uplift_ci_high
{%- endmacro %}

{#- Days from the first recorded day of the audience history up to as_of's day: one row
    per segment and day, for the daily measurement marts. -#}
{% macro segment_day_spine(history_relation) -%}
    select
        segments.segment,
        cast({{ dbt.dateadd('day', 'numbers.n', 'segments.first_day') }} as date) as day
    from (
        select segment, min(cast(valid_from as date)) as first_day
        from {{ history_relation }}
        where valid_from <= {{ as_of() }}
        group by segment
    ) as segments
    cross join ({{ number_series(10000) }}) as numbers
    where {{ dbt.dateadd('day', 'numbers.n', 'segments.first_day') }}
        <= cast({{ as_of() }} as date)
{%- endmacro %}
