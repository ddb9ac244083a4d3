{%- set new_days = var('segments__new_light_visitor_days') -%}

with

new_users as (

    {{ users_first_time_in_window(none, new_days, 'day') }}

),

page_views as (

    -- A new user's events all lie in the window, so only its events are read.
    select
        user_id,
        count(*) as page_views
    from {{ ref('int_events_stitched') }}
    where
        event_type in ('page_view', 'product_view')
        and {{ in_window('occurred_at', new_days, 'day') }}
    group by user_id

),

final as (

    select
        new_users.user_id,
        new_users.first_at as first_seen_at,
        coalesce(page_views.page_views, 0) as page_views
    from new_users
    left join page_views on new_users.user_id = page_views.user_id
    where
        coalesce(page_views.page_views, 0)
        <= {{ var('segments__new_light_visitor_max_page_views') }}

)

select * from final
