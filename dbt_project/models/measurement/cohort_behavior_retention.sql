{#- Monthly retention by behavior cohort: users grouped by the month of their first event
    and by one trait of how they started. cohort_dimension is 'all' (everyone),
    'acquisition_source' (utm_source of their first event that has one, 'direct' when
    none has) or 'first_category' (category of their first product view, 'none' when
    they viewed none). For each period (months since the cohort month) up to as_of's
    month: active_users (any event) and purchasing_users (a purchase), the purchase view
    of retention. Each CTE reads int_events_stitched itself: an import CTE read by
    several would be materialized whole (every event) first. -#}

with

user_months as (

    -- One pass over the events: per user and month of activity, whether they bought, and
    -- when their first event with a utm_source and their first categorised product view
    -- of the month happened.
    select
        user_id,
        cast({{ dbt.date_trunc('month', 'occurred_at') }} as date) as activity_month,
        max(case when event_type = 'purchase' then 1 else 0 end) as purchased,
        min(case when utm_source is not null then occurred_at end) as first_utm_source_at,
        min(case
            when event_type = 'product_view' and category is not null
                then occurred_at
        end) as first_category_view_at
    from {{ ref('int_events_stitched') }}
    group by 1, 2

),

firsts as (

    select
        user_id,
        min(activity_month) as cohort_month,
        min(first_utm_source_at) as first_utm_source_at,
        min(first_category_view_at) as first_category_view_at
    from user_months
    group by user_id

),

first_sources as (

    -- The utm_source of the user's first event that has one (the least of a tie).
    select
        events.user_id,
        min(events.utm_source) as utm_source
    from {{ ref('int_events_stitched') }} as events
    inner join firsts
        on
            events.user_id = firsts.user_id
            and events.occurred_at = firsts.first_utm_source_at
    where events.utm_source is not null
    group by events.user_id

),

first_categories as (

    -- The category of the user's first product view that has one (the least of a tie).
    select
        events.user_id,
        min(events.category) as category
    from {{ ref('int_events_stitched') }} as events
    inner join firsts
        on
            events.user_id = firsts.user_id
            and events.occurred_at = firsts.first_category_view_at
    where events.event_type = 'product_view' and events.category is not null
    group by events.user_id

),

cohort_members as (

    select
        user_id,
        cohort_month,
        cast('all' as {{ dbt.type_string() }}) as cohort_dimension,
        cast('all' as {{ dbt.type_string() }}) as cohort_value
    from firsts
    union all
    select
        firsts.user_id,
        firsts.cohort_month,
        'acquisition_source' as cohort_dimension,
        coalesce(first_sources.utm_source, 'direct') as cohort_value
    from firsts
    left join first_sources on firsts.user_id = first_sources.user_id
    union all
    select
        firsts.user_id,
        firsts.cohort_month,
        'first_category' as cohort_dimension,
        coalesce(first_categories.category, 'none') as cohort_value
    from firsts
    left join first_categories on firsts.user_id = first_categories.user_id

),

cohort_sizes as (

    select
        cohort_dimension,
        cohort_value,
        cohort_month,
        count(*) as cohort_size
    from cohort_members
    group by 1, 2, 3

),

periods as (

    {{ cohort_periods('cohort_sizes') }}

),

activity as (

    select
        cohort_members.cohort_dimension,
        cohort_members.cohort_value,
        cohort_members.cohort_month,
        {{ dbt.datediff('cohort_members.cohort_month', 'user_months.activity_month', 'month') }}
            as period,
        count(*) as active_users,
        cast(sum(user_months.purchased) as {{ dbt.type_bigint() }}) as purchasing_users
    from user_months
    inner join cohort_members on user_months.user_id = cohort_members.user_id
    group by 1, 2, 3, 4

),

final as (

    select
        periods.cohort_dimension,
        periods.cohort_value,
        periods.cohort_month,
        periods.period,
        periods.cohort_size,
        coalesce(activity.active_users, 0) as active_users,
        cast(coalesce(activity.active_users, 0) as {{ type_double() }})
        / periods.cohort_size as retention_rate,
        coalesce(activity.purchasing_users, 0) as purchasing_users,
        cast(coalesce(activity.purchasing_users, 0) as {{ type_double() }})
        / periods.cohort_size as purchase_retention_rate
    from periods
    left join activity
        on
            periods.cohort_dimension = activity.cohort_dimension
            and periods.cohort_value = activity.cohort_value
            and periods.cohort_month = activity.cohort_month
            and periods.period = activity.period

)

select * from final
