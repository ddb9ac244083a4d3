{#- One row per segment and day, from the segment's first recorded day to as_of's day.
    members and holdout_members are the stays open at the end of the day (at as_of on its
    own day), entered and exited the stays that began and ended that day, exported the
    distinct users written to the segment's audience files that day. Built after the
    export, so a day's figures include its own export. -#}

with

history as (

    select * from {{ ref('segment_membership_history') }}
    where valid_from <= {{ as_of() }}

),

days as (

    {{ segment_day_spine(ref('segment_membership_history')) }}

),

open_at_day_end as (

    select
        days.segment,
        days.day,
        count(history.user_id) as members,
        cast(sum(case when history.is_holdout then 1 else 0 end) as {{ dbt.type_bigint() }})
            as holdout_members
    from days
    inner join history
        on
            days.segment = history.segment
            and cast(history.valid_from as date) <= days.day
            and (
                history.valid_to is null or cast(history.valid_to as date) > days.day
                or history.valid_to > {{ as_of() }}
            )
    group by days.segment, days.day

),

entries as (

    select
        segment,
        cast(valid_from as date) as day,
        count(*) as entered
    from history
    group by 1, 2

),

exits as (

    select
        segment,
        cast(valid_to as date) as day,
        count(*) as exited
    from history
    where valid_to <= {{ as_of() }}
    group by 1, 2

),

exports as (

    select
        segment,
        cast(exported_at as date) as day,
        count(distinct user_id) as exported
    from {{ ref('stg_audit__export_log') }}
    where exported_at <= {{ as_of() }}
    group by 1, 2

),

final as (

    select
        days.segment,
        days.day,
        coalesce(open_at_day_end.members, 0) as members,
        coalesce(open_at_day_end.holdout_members, 0) as holdout_members,
        coalesce(exports.exported, 0) as exported,
        coalesce(entries.entered, 0) as entered,
        coalesce(exits.exited, 0) as exited
    from days
    left join open_at_day_end
        on days.segment = open_at_day_end.segment and days.day = open_at_day_end.day
    left join entries on days.segment = entries.segment and days.day = entries.day
    left join exits on days.segment = exits.segment and days.day = exits.day
    left join exports on days.segment = exports.segment and days.day = exports.day

)

select * from final
