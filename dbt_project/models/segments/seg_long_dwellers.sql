with

recent_views as (

    select
        user_id,
        session_id,
        product_id,
        duration_seconds
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'product_view'
        and session_id is not null
        and {{ in_window('occurred_at', var('segments__long_dwell_lookback_days'), 'day') }}

),

sessions as (

    select
        user_id,
        session_id,
        max(duration_seconds) as longest_view_seconds,
        count(distinct product_id) as distinct_products
    from recent_views
    group by user_id, session_id

),

final as (

    select
        user_id,
        max(longest_view_seconds) as longest_view_seconds
    from sessions
    where
        longest_view_seconds > {{ var('segments__long_dwell_min_seconds') }}
        and distinct_products >= {{ var('segments__long_dwell_min_distinct_products') }}
    group by user_id

)

select * from final
