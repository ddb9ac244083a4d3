{#- One row per user and instant: the propensity scores' features as of that instant and,
    at the training instants, what happened after it. The scoring instant is as_of itself;
    the training instants lie whole steps before it, the latest one a full label horizon
    before as_of, so every label is known by as_of. A feature reads only events at or
    before its instant, a label only events after it within its horizon. -#}
{%- set churn_days = var('segments__churn_horizon_days') -%}
{%- set purchase_days = var('segments__purchase_horizon_days') -%}
{%- set label_days = [churn_days, purchase_days] | max -%}
{%- set training_instants = var('segments__score_training_instants') -%}
{%- set step_days = var('segments__score_instant_step_days') -%}

with

instants as (

    select
        {{ as_of() }} as instant,
        false as is_training,
        cast(null as {{ dbt.type_timestamp() }}) as labels_until
    {% for k in range(training_instants) %}
    union all
    select
        {{ dbt.dateadd('day', -1 * (label_days + k * step_days), as_of()) }} as instant,
        true as is_training,
        {{ dbt.dateadd('day', -1 * (k * step_days), as_of()) }} as labels_until
    {% endfor %}

),

events as (

    select
        user_id,
        event_type,
        occurred_at,
        order_key,
        purchase_amount
    from {{ ref('int_events_stitched') }}

),

first_seen as (

    select
        user_id,
        min(occurred_at) as first_seen_at
    from events
    group by user_id

),

recent_events as (

    -- The events of the 30 days up to each instant.
    select
        instants.instant,
        events.user_id,
        events.event_type,
        events.occurred_at,
        events.order_key
    from instants
    inner join events
        on
            events.occurred_at <= instants.instant
            and events.occurred_at > {{ dbt.dateadd('day', -30, 'instants.instant') }}

),

recent_activity as (

    select
        instant,
        user_id,
        max(occurred_at) as last_recent_event_at,
        count(*) as events_30d,
        sum(case when occurred_at > {{ dbt.dateadd('day', -7, 'instant') }} then 1 else 0 end)
            as events_7d,
        count(distinct cast(occurred_at as date)) as active_days_30d,
        count(distinct case
            when occurred_at > {{ dbt.dateadd('day', -7, 'instant') }}
                then cast(occurred_at as date)
        end) as active_days_7d,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views_30d,
        sum(case when event_type in ('add_to_cart', 'checkout_started') then 1 else 0 end)
            as cart_events_30d,
        count(distinct case when event_type = 'purchase' then order_key end) as orders_30d,
        sum(case when event_type in ('email_open', 'email_click') then 1 else 0 end)
            as email_engagements_30d
    from recent_events
    group by instant, user_id

),

event_days as (

    select
        user_id,
        cast(occurred_at as date) as event_date,
        max(occurred_at) as last_event_at
    from events
    group by user_id, cast(occurred_at as date)

),

earlier_activity as (

    -- The last event of the days before each instant's own day: every event of those days
    -- lies before the instant (its own day's events are among recent_events).
    select
        instants.instant,
        event_days.user_id,
        max(event_days.last_event_at) as last_earlier_event_at
    from instants
    inner join event_days on event_days.event_date < cast(instants.instant as date)
    group by instants.instant, event_days.user_id

),

lifetime_purchases as (

    select
        instants.instant,
        events.user_id,
        count(distinct events.order_key) as lifetime_orders,
        sum(events.purchase_amount) as lifetime_revenue,
        max(events.occurred_at) as last_purchase_at
    from instants
    inner join events
        on
            events.event_type = 'purchase'
            and events.occurred_at <= instants.instant
    group by instants.instant, events.user_id

),

outcomes as (

    -- What each user did in the label horizon after each training instant.
    select
        instants.instant,
        events.user_id,
        sum(
            case
                when events.occurred_at <= {{ dbt.dateadd('day', churn_days, 'instants.instant') }}
                    then 1
                else 0
            end
        ) as events_after,
        sum(
            case
                when
                    events.event_type = 'purchase'
                    and events.occurred_at
                    <= {{ dbt.dateadd('day', purchase_days, 'instants.instant') }}
                    then 1
                else 0
            end
        ) as purchases_after
    from instants
    inner join events
        on
            instants.is_training
            and events.occurred_at > instants.instant
            and events.occurred_at <= {{ dbt.dateadd('day', label_days, 'instants.instant') }}
    group by instants.instant, events.user_id

),

final as (

    select
        instants.instant,
        instants.is_training,
        instants.labels_until,
        first_seen.user_id,
        {{ whole_days_between('first_seen.first_seen_at', 'instants.instant') }}
            as tenure_days,
        {{ dbt.datediff(
            'coalesce(recent_activity.last_recent_event_at, earlier_activity.last_earlier_event_at)',
            'instants.instant',
            'second'
        ) }} / 86400.0 as days_since_last_event,
        coalesce(recent_activity.events_7d, 0) as events_7d,
        coalesce(recent_activity.events_30d, 0) as events_30d,
        coalesce(recent_activity.active_days_7d, 0) as active_days_7d,
        coalesce(recent_activity.active_days_30d, 0) as active_days_30d,
        coalesce(recent_activity.product_views_30d, 0) as product_views_30d,
        coalesce(recent_activity.cart_events_30d, 0) as cart_events_30d,
        coalesce(recent_activity.orders_30d, 0) as orders_30d,
        coalesce(recent_activity.email_engagements_30d, 0) as email_engagements_30d,
        coalesce(lifetime_purchases.lifetime_orders, 0) as lifetime_orders,
        cast(coalesce(lifetime_purchases.lifetime_revenue, 0) as {{ type_double() }})
            as lifetime_revenue,
        {{ dbt.datediff('lifetime_purchases.last_purchase_at', 'instants.instant', 'second') }}
        / 86400.0 as days_since_last_purchase,
        case
            when not instants.is_training then null
            when coalesce(outcomes.events_after, 0) = 0 then 1
            else 0
        end as churned,
        case
            when not instants.is_training then null
            when coalesce(outcomes.purchases_after, 0) > 0 then 1
            else 0
        end as purchased
    from instants
    inner join first_seen on first_seen.first_seen_at <= instants.instant
    left join recent_activity
        on
            instants.instant = recent_activity.instant
            and first_seen.user_id = recent_activity.user_id
    left join earlier_activity
        on
            instants.instant = earlier_activity.instant
            and first_seen.user_id = earlier_activity.user_id
    left join lifetime_purchases
        on
            instants.instant = lifetime_purchases.instant
            and first_seen.user_id = lifetime_purchases.user_id
    left join outcomes
        on
            instants.instant = outcomes.instant
            and first_seen.user_id = outcomes.user_id

)

select * from final
