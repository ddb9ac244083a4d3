with

recent_unrecovered as (

    select
        user_id,
        max(abandoned_at) as last_abandoned_at,
        max(cart_value) as max_cart_value
    from {{ ref('cart_abandonments') }}
    where
        recovered_at is null
        and {{ in_window('abandoned_at', var('segments__potentially_lost_days'), 'day') }}
    group by user_id

),

last_purchases as (

    select * from {{ ref('int_user_last_purchases') }}

),

final as (

    -- A purchase after the abandonment means the user is not lost after all.
    select recent_unrecovered.*
    from recent_unrecovered
    left join last_purchases on recent_unrecovered.user_id = last_purchases.user_id
    where
        last_purchases.last_purchase_at is null
        or last_purchases.last_purchase_at <= recent_unrecovered.last_abandoned_at

)

select * from final
