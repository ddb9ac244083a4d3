{#- One row per user of user_metrics: what the customer clusters are fitted on and applied
    to, as of as_of (recency, frequency, monetary value, engagement). -#}

with

user_metrics as (

    select * from {{ ref('user_metrics') }}

),

user_traits as (

    select * from {{ ref('user_traits') }}

),

final as (

    select
        user_metrics.user_id,
        {{ as_of() }} as as_of,
        user_metrics.days_since_last_event as recency_days,
        user_traits.lifetime_orders as frequency,
        cast(user_traits.lifetime_revenue as {{ type_double() }}) as monetary,
        user_traits.sessions_7d + user_traits.sessions_prior_21d as engagement
    from user_metrics
    inner join user_traits on user_metrics.user_id = user_traits.user_id

)

select * from final
