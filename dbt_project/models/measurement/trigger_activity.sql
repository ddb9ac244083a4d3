{#- One row per segment and day since its first recorded day: activations (users who
    entered the segment, each a trigger firing) and how many of them had left the same
    segment less than cooldown_days before (re-triggered within the cooldown: message
    fatigue, which the cooldown suppression holds back). -#}

with

history as (

    select * from {{ ref('segment_membership_history') }}
    where valid_from <= {{ as_of() }}

),

settings as (

    select distinct
        segment,
        cooldown_days
    from {{ ref('int_segment_members') }}

),

days as (

    {{ segment_day_spine(ref('segment_membership_history')) }}

),

stays as (

    select
        segment,
        user_id,
        valid_from,
        lag(valid_to) over (partition by segment, user_id order by valid_from)
            as previous_stay_ended_at
    from history

),

activations as (

    select
        stays.segment,
        cast(stays.valid_from as date) as day,
        count(*) as activations,
        cast(sum(case
            when
                stays.previous_stay_ended_at
                > {{ dbt.dateadd('day', '-1 * settings.cooldown_days', 'stays.valid_from') }}
                then 1
            else 0
        end) as {{ dbt.type_bigint() }}) as retriggered_within_cooldown
    from stays
    left join settings on stays.segment = settings.segment
    group by 1, 2

),

final as (

    select
        days.segment,
        days.day,
        settings.cooldown_days,
        coalesce(activations.activations, 0) as activations,
        coalesce(activations.retriggered_within_cooldown, 0) as retriggered_within_cooldown,
        cast(activations.retriggered_within_cooldown as {{ type_double() }})
        / nullif(activations.activations, 0) as retrigger_share
    from days
    left join activations on days.segment = activations.segment and days.day = activations.day
    left join settings on days.segment = settings.segment

)

select * from final
