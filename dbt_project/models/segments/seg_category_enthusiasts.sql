{%- set needed = var('segments__enthusiast_min_category_views') -%}

with

views as (

    select
        user_id,
        category,
        occurred_at
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'product_view'
        and category is not null
        and {{ in_window('occurred_at', var('segments__enthusiast_lookback_days'), 'day') }}

),

sequenced as (

    -- The view `needed - 1` views later in the same category, if any.
    select
        user_id,
        category,
        occurred_at,
        lead(occurred_at, {{ needed - 1 }}) over (
            partition by user_id, category order by occurred_at
        ) as later_view_at
    from views

),

bursts as (

    select
        user_id,
        category,
        count(*) as bursts
    from sequenced
    where
        later_view_at is not null
        and later_view_at
        <= {{ dbt.dateadd('minute', var('segments__enthusiast_window_minutes'), 'occurred_at') }}
    group by user_id, category

),

final as (

    -- One row per user: the category with the most bursts.
    select
        user_id,
        category
    from (
        select
            *,
            row_number() over (partition by user_id order by bursts desc, category asc) as rank_in_user
        from bursts
    ) as ranked
    where rank_in_user = 1

)

select * from final
