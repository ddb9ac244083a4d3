with

user_months as (

    select distinct
        user_id,
        cast({{ dbt.date_trunc('month', 'occurred_at') }} as date) as activity_month
    from {{ ref('int_events_stitched') }}

),

cohorts as (

    select
        user_id,
        min(activity_month) as cohort_month
    from user_months
    group by user_id

),

cohort_sizes as (

    select
        cohort_month,
        count(*) as cohort_size
    from cohorts
    group by cohort_month

),

periods as (

    {{ cohort_periods('cohort_sizes') }}

),

activity as (

    select
        cohorts.cohort_month,
        {{ dbt.datediff('cohorts.cohort_month', 'user_months.activity_month', 'month') }} as period,
        count(distinct user_months.user_id) as active_users
    from user_months
    inner join cohorts on user_months.user_id = cohorts.user_id
    group by 1, 2

),

final as (

    select
        periods.cohort_month,
        periods.period,
        periods.cohort_size,
        coalesce(activity.active_users, 0) as active_users,
        cast(coalesce(activity.active_users, 0) as {{ type_double() }})
        / periods.cohort_size as retention_rate
    from periods
    left join activity
        on
            periods.cohort_month = activity.cohort_month
            and periods.period = activity.period

)

select * from final
