with

category_views as (

    select
        user_id,
        category,
        count(*) as category_views,
        max(occurred_at) as last_viewed_at
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'product_view'
        and category is not null
        and {{ in_window('occurred_at', var('segments__highly_interested_lookback_days'), 'day') }}
    group by user_id, category

),

interested as (

    -- Enough views in the category, the last one less than 2 hours before as_of.
    select
        user_id,
        category,
        category_views,
        last_viewed_at,
        row_number() over (
            partition by user_id
            order by last_viewed_at desc, category_views desc, category asc
        ) as rank_in_user
    from category_views
    where
        category_views >= {{ var('segments__highly_interested_min_category_views') }}
        and {{ in_window('last_viewed_at', var('segments__highly_interested_last_view_hours'), 'hour') }}

),

final as (

    -- One row per user: the category viewed last (then the most viewed, then by name).
    select
        user_id,
        category,
        category_views,
        last_viewed_at
    from interested
    where rank_in_user = 1

)

select * from final
