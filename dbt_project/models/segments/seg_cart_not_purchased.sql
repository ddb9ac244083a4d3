with

-- Cart additions of the last 72 hours whose 48 hours have passed with no purchase.
unpurchased_additions as (

    {{ users_who_did_then(
        'add_to_cart', 'purchase',
        var('segments__cart_not_purchased_window_hours'), 'hour', negate=true,
        within_amount=var('segments__cart_not_purchased_lookback_hours'), within_unit='hour'
    ) }}

),

last_purchases as (

    select * from {{ ref('int_user_last_purchases') }}

),

final as (

    -- A purchase after the latest such addition, even a late one, takes the user out.
    select
        unpurchased_additions.user_id,
        unpurchased_additions.last_at as last_added_to_cart_at
    from unpurchased_additions
    left join last_purchases on unpurchased_additions.user_id = last_purchases.user_id
    where
        last_purchases.last_purchase_at is null
        or last_purchases.last_purchase_at < unpurchased_additions.last_at

)

select * from final
