{%- set window_hours = var('segments__abandonment_window_hours') -%}
{%- set recovery_days = var('segments__recovery_window_days') -%}

with

episodes as (

    select
        *,
        {{ dbt.dateadd('hour', window_hours, 'last_cart_event_at') }} as abandoned_at
    from {{ ref('int_cart_episodes') }}
    where not is_converted

),

abandoned as (

    -- An episode whose window has not passed by as_of is still open: not a row yet.
    select * from episodes
    where abandoned_at <= {{ as_of() }}

),

purchases as (

    select
        user_id,
        occurred_at
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase'

),

recoveries as (

    select
        abandoned.user_id,
        abandoned.episode_number,
        min(purchases.occurred_at) as recovered_at
    from abandoned
    inner join purchases
        on
            abandoned.user_id = purchases.user_id
            and purchases.occurred_at > abandoned.abandoned_at
            and purchases.occurred_at
            <= {{ dbt.dateadd('day', recovery_days, 'abandoned.abandoned_at') }}
    group by abandoned.user_id, abandoned.episode_number

),

final as (

    select
        abandoned.user_id,
        abandoned.cart_started_at,
        abandoned.last_cart_event_at,
        abandoned.abandoned_at,
        abandoned.cart_events,
        abandoned.cart_value,
        recoveries.recovered_at
    from abandoned
    left join recoveries
        on
            abandoned.user_id = recoveries.user_id
            and abandoned.episode_number = recoveries.episode_number

)

select * from final
