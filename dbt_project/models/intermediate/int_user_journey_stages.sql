{#- One journey stage per user, the furthest reached by as_of: loyalty (purchases on two or
    more days), conversion (one purchase day), decision (cart activity), consideration
    (product views or searches), awareness (anything else). Funnel stages of event types
    come from the event_types seed. -#}

with

events as (

    select
        events.user_id,
        events.event_type,
        event_types.funnel_stage
    from {{ ref('int_events_stitched') }} as events
    left join {{ ref('event_types') }} as event_types
        on events.event_type = event_types.event_type

),

purchase_days as (

    -- Counted over the purchases alone, not as a distinct count over every event.
    select
        user_id,
        count(distinct cast(occurred_at as date)) as purchase_days
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase'
    group by user_id

),

stages_reached as (

    select
        user_id,
        max(case when funnel_stage = 'decision' then 1 else 0 end) as reached_decision,
        max(case when funnel_stage = 'consideration' then 1 else 0 end) as reached_consideration
    from events
    group by user_id

),

per_user as (

    select
        stages_reached.user_id,
        coalesce(purchase_days.purchase_days, 0) as purchase_days,
        stages_reached.reached_decision,
        stages_reached.reached_consideration
    from stages_reached
    left join purchase_days on stages_reached.user_id = purchase_days.user_id

),

final as (

    select
        user_id,
        case
            when purchase_days >= 2 then 'loyalty'
            when purchase_days = 1 then 'conversion'
            when reached_decision = 1 then 'decision'
            when reached_consideration = 1 then 'consideration'
            else 'awareness'
        end as journey_stage
    from per_user

)

select * from final
