with

recent_buyers as (

    select distinct user_id
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase' and {{ in_window('occurred_at', 24, 'hour') }}

),

final as (

    select user_id, product_views_24h
    from {{ ref('user_metrics') }}
    where product_views_24h > {{ var('segments__high_intent_min_product_views') }}
        and user_id not in (select user_id from recent_buyers)

)

select * from final
