{#- One row per segment ('all' and each recovery campaign) over every measured week: the
    headline recovery rates and the campaign's uplift with its 95% confidence interval. -#}

with

carts as (

    select * from {{ ref('int_recovery_campaign_carts') }}

),

overall as (

    select
        segment,
        min(week_start) as first_week_start,
        max(week_start) as last_week_start,
        {{ recovery_measures() }}
    from carts
    group by segment

),

final as (

    select *, {{ recovery_rates() }}
    from overall

)

select * from final
