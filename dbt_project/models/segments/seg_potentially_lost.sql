with

recent_unrecovered as (

    select user_id, max(abandoned_at) as last_abandoned_at, max(cart_value) as max_cart_value
    from {{ ref('cart_abandonments') }}
    where recovered_at is null
        and {{ in_window('abandoned_at', var('segments__potentially_lost_days'), 'day') }}
    group by user_id

),

purchases as (

    select user_id, max(occurred_at) as last_purchase_at
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase'
    group by user_id

),

final as (

    -- A purchase after the abandonment means the user is not lost after all.
    select recent_unrecovered.*
    from recent_unrecovered
    left join purchases on recent_unrecovered.user_id = purchases.user_id
    where purchases.last_purchase_at is null
        or purchases.last_purchase_at <= recent_unrecovered.last_abandoned_at

)

select * from final
