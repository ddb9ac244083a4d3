with

recent_cart_additions as (

    {{ users_with_events_in_window(
        'add_to_cart',
        var('segments__engaged_min_cart_additions'),
        var('segments__engaged_cart_addition_days'), 'day'
    ) }}

),

user_metrics as (

    select * from {{ ref('user_metrics') }}

),

user_traits as (

    select * from {{ ref('user_traits') }}

),

final as (

    select
        recent_cart_additions.user_id,
        user_traits.sessions_7d,
        user_metrics.product_views_7d,
        recent_cart_additions.last_at as last_added_to_cart_at
    from recent_cart_additions
    inner join user_metrics on recent_cart_additions.user_id = user_metrics.user_id
    inner join user_traits on recent_cart_additions.user_id = user_traits.user_id
    where
        user_traits.sessions_7d >= {{ var('segments__engaged_min_sessions') }}
        and user_metrics.product_views_7d >= {{ var('segments__engaged_min_product_views') }}

)

select * from final
