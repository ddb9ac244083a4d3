{#- The columns' names state their windows (product_views_24h, cart_abandonments_7d,
    purchases_30d), so the windows are fixed here rather than vars. -#}
{%- set short_hours = 24 -%}
{%- set week_days = 7 -%}
{%- set month_days = 30 -%}

{#- Each CTE reads int_events_stitched itself, for only the columns and rows it needs: an
    import CTE read by several would be materialized whole (every event) first. -#}

with

cart_abandonments as (

    select * from {{ ref('cart_abandonments') }}

),

recent_session_events as (

    -- Every event of the last 24 hours with its session (macros/sessions.sql).
    {{ windowed_sessions(short_hours, 'hour') }}

),

recent_sessions as (

    select
        user_id,
        count(distinct session_key) as sessions_24h
    from recent_session_events
    group by user_id

),

recent_purchases as (

    select
        user_id,
        count(distinct order_key) as purchases_30d,
        cast(sum(purchase_amount) as {{ type_money() }}) as revenue_30d
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'purchase'
        and {{ in_window('occurred_at', month_days, 'day') }}
    group by user_id

),

recent_abandonments as (

    select
        user_id,
        count(*) as cart_abandonments_7d
    from cart_abandonments
    where {{ in_window('abandoned_at', week_days, 'day') }}
    group by user_id

),

event_metrics as (

    select
        user_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_event_at,
        cast(sum(
            case
                when
                    event_type = 'product_view'
                    and {{ in_window('occurred_at', short_hours, 'hour') }} then 1
                else 0
            end
        ) as {{ dbt.type_bigint() }}) as product_views_24h,
        cast(sum(
            case
                when
                    event_type = 'product_view'
                    and {{ in_window('occurred_at', week_days, 'day') }} then 1
                else 0
            end
        ) as {{ dbt.type_bigint() }}) as product_views_7d,
        cast(sum(
            case
                when
                    event_type = 'add_to_cart'
                    and {{ in_window('occurred_at', week_days, 'day') }} then 1
                else 0
            end
        ) as {{ dbt.type_bigint() }}) as add_to_cart_7d
    from {{ ref('int_events_stitched') }}
    group by user_id

),

final as (

    select
        event_metrics.user_id,
        event_metrics.first_seen_at,
        event_metrics.last_event_at,
        cast(
            {{ whole_days_between('event_metrics.last_event_at', as_of()) }} as {{ dbt.type_int() }}
        )
            as days_since_last_event,
        event_metrics.product_views_24h,
        event_metrics.product_views_7d,
        event_metrics.add_to_cart_7d,
        coalesce(recent_abandonments.cart_abandonments_7d, 0) as cart_abandonments_7d,
        coalesce(recent_purchases.purchases_30d, 0) as purchases_30d,
        coalesce(recent_purchases.revenue_30d, cast(0 as {{ type_money() }})) as revenue_30d,
        coalesce(recent_sessions.sessions_24h, 0) as sessions_24h
    from event_metrics
    left join recent_purchases on event_metrics.user_id = recent_purchases.user_id
    left join recent_abandonments on event_metrics.user_id = recent_abandonments.user_id
    left join recent_sessions on event_metrics.user_id = recent_sessions.user_id

)

select * from final
