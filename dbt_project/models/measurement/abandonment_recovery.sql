{#- One row per week of abandonment (week_start, Monday) and segment: 'all' for every
    abandoned cart, and each recovery campaign for the carts it could reach, split into
    treated and holdout (see int_recovery_campaign_carts). -#}

with

carts as (

    select * from {{ ref('int_recovery_campaign_carts') }}

),

weekly as (

    select segment, week_start, {{ recovery_measures() }}
    from carts
    group by segment, week_start

),

final as (

    select *, {{ recovery_rates() }}
    from weekly

)

select * from final
