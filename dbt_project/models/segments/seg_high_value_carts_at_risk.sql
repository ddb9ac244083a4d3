with

abandoned_carts as (

    -- Every abandoned cart as of as_of, with how many carts are worth at most as much
    -- (itself and its peers included) and how many there are.
    select
        user_id,
        abandoned_at,
        cart_value,
        recovered_at,
        count(*) over (
            order by cart_value range between unbounded preceding and current row
        ) as carts_at_or_below,
        count(*) over () as carts
    from {{ ref('cart_abandonments') }}

),

at_risk as (

    -- A cart's percentile is the share of abandoned carts worth at most as much; compared
    -- multiplied out so the arithmetic stays exact.
    select
        user_id,
        abandoned_at,
        cart_value,
        row_number() over (
            partition by user_id order by cart_value desc, abandoned_at desc
        ) as rank_in_user
    from abandoned_carts
    where
        recovered_at is null
        and cart_value > 0
        and carts_at_or_below > {{ var('segments__high_value_cart_more_than_percentile') }} * carts
        and {{ in_window('abandoned_at', var('segments__high_value_cart_lookback_days'), 'day') }}

),

final as (

    -- One row per user: the most valuable such cart (then the latest).
    select
        user_id,
        cart_value,
        abandoned_at
    from at_risk
    where rank_in_user = 1

)

select * from final
