with

-- Checkouts of the last 24 hours whose 30 minutes have passed with no purchase.
abandoned_checkouts as (

    {{ users_who_did_then(
        'checkout_started', 'purchase',
        var('segments__checkout_abandonment_window_minutes'), 'minute', negate=true,
        within_amount=var('segments__checkout_abandonment_lookback_hours'), within_unit='hour'
    ) }}

),

last_purchases as (

    select * from {{ ref('int_user_last_purchases') }}

),

final as (

    -- A purchase after the latest abandoned checkout, even a late one, means the user
    -- finished buying after all.
    select
        abandoned_checkouts.user_id,
        abandoned_checkouts.last_at as last_checkout_started_at
    from abandoned_checkouts
    left join last_purchases on abandoned_checkouts.user_id = last_purchases.user_id
    where
        last_purchases.last_purchase_at is null
        or last_purchases.last_purchase_at < abandoned_checkouts.last_at

)

select * from final
