with

last_purchases as (

    select * from {{ ref('int_user_last_purchases') }}

),

final as (

    -- No purchase in the last 24 hours: the last one (if any) is older.
    select
        user_metrics.user_id,
        user_metrics.product_views_24h
    from {{ ref('user_metrics') }} as user_metrics
    left join last_purchases on user_metrics.user_id = last_purchases.user_id
    where
        user_metrics.product_views_24h > {{ var('segments__high_intent_min_product_views') }}
        and (
            last_purchases.last_purchase_at is null
            or not {{ in_window('last_purchases.last_purchase_at', 24, 'hour') }}
        )

)

select * from final
