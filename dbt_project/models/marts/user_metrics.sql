{%- set gap_minutes = var('segments__session_gap_minutes') -%}
{#- The columns' names state their windows (product_views_24h, cart_abandonments_7d,
    purchase_count_30d), so the windows are fixed here rather than vars. -#}
{%- set short_hours = 24 -%}
{%- set week_days = 7 -%}
{%- set month_days = 30 -%}

{#- Each CTE reads int_events_stitched itself, for only the columns and rows it needs: an
    import CTE read by several would be materialized whole (every event) first. -#}

with

cart_abandonments as (

    select * from {{ ref('cart_abandonments') }}

),

sessionless_events as (

    -- Only the events that can decide a session of the last 24 hours: those in the window
    -- and any within one session gap before it (an earlier event is more than a gap away
    -- from every event in the window, which therefore starts a session either way).
    select
        user_id,
        occurred_at,
        lag(occurred_at) over (partition by user_id order by occurred_at) as previous_at
    from {{ ref('int_events_stitched') }}
    where
        session_id is null
        and occurred_at
        > {{ dbt.dateadd('minute', -1 * (short_hours * 60 + gap_minutes), as_of()) }}

),

derived_sessions as (

    -- A user's events without a session_id form sessions of their own: a new one starts
    -- after a gap of more than the session gap.
    select
        user_id,
        occurred_at,
        sum(
            case
                when previous_at is null then 1
                when occurred_at > {{ dbt.dateadd('minute', gap_minutes, 'previous_at') }} then 1
                else 0
            end
        ) over (
            partition by user_id order by occurred_at
            rows between unbounded preceding and current row
        ) as session_number
    from sessionless_events

),

recent_session_keys as (

    select
        user_id,
        {{ dbt.concat(["'id:'", "session_id"]) }} as session_key
    from {{ ref('int_events_stitched') }}
    where session_id is not null and {{ in_window('occurred_at', short_hours, 'hour') }}

    union all

    select
        user_id,
        {{ dbt.concat(["'gap:'", dbt.cast('session_number', api.Column.translate_type('string'))]) }} as session_key
    from derived_sessions
    where {{ in_window('occurred_at', short_hours, 'hour') }}

),

recent_sessions as (

    select
        user_id,
        count(distinct session_key) as sessions_24h
    from recent_session_keys
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
