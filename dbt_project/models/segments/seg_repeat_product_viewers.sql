{%- set lookback_days = var('segments__repeat_viewer_lookback_days') -%}

with

product_views as (

    select
        user_id,
        product_id,
        count(*) as product_views,
        max(occurred_at) as last_viewed_at
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'product_view'
        and product_id is not null
        and {{ in_window('occurred_at', lookback_days, 'day') }}
    group by user_id, product_id

),

cart_additions as (

    select distinct
        user_id,
        product_id
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'add_to_cart'
        and product_id is not null
        and {{ in_window('occurred_at', lookback_days, 'day') }}

),

repeated as (

    -- Products viewed often enough and not added to the cart in the same days.
    select
        product_views.user_id,
        product_views.product_id,
        product_views.product_views,
        product_views.last_viewed_at,
        row_number() over (
            partition by product_views.user_id
            order by
                product_views.product_views desc,
                product_views.last_viewed_at desc,
                product_views.product_id asc
        ) as rank_in_user
    from product_views
    left join cart_additions
        on
            product_views.user_id = cart_additions.user_id
            and product_views.product_id = cart_additions.product_id
    where
        cart_additions.user_id is null
        and product_views.product_views >= {{ var('segments__repeat_viewer_min_product_views') }}

),

final as (

    -- One row per user: the product viewed most (then the latest viewed, then by id).
    select
        user_id,
        product_id,
        product_views,
        last_viewed_at
    from repeated
    where rank_in_user = 1

)

select * from final
