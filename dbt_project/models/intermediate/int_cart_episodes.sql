{#- Cart activity (add_to_cart, checkout_started) grouped into episodes. An episode opens
    at a cart event when the user has none open, takes in every later cart event within W
    of the previous one, and ends with a purchase within W of its last cart event
    (converted) or, when W passes with neither, is abandoned at last_cart_event_at + W.
    At one instant, cart events are ordered before purchases: add and buy in the same
    second is a converted cart. -#}

{%- set window_hours = var('segments__abandonment_window_hours') -%}

with

cart_and_purchase_events as (

    select
        user_id,
        event_id,
        event_type,
        occurred_at,
        price,
        quantity,
        case when is_cart_event then 0 else 1 end as kind_order
    from {{ ref('int_events_stitched') }}
    where is_cart_event or event_type = 'purchase'

),

sequenced as (

    select
        *,
        lag(occurred_at)
            over (partition by user_id order by occurred_at, kind_order, event_id)
            as previous_at,
        lag(kind_order)
            over (partition by user_id order by occurred_at, kind_order, event_id)
            as previous_kind_order,
        lead(occurred_at)
            over (partition by user_id order by occurred_at, kind_order, event_id)
            as next_at,
        lead(kind_order)
            over (partition by user_id order by occurred_at, kind_order, event_id)
            as next_kind_order
    from cart_and_purchase_events

),

cart_events as (

    select
        *,
        case
            when previous_at is null then 1
            when previous_kind_order = 1 then 1
            when occurred_at > {{ dbt.dateadd('hour', window_hours, 'previous_at') }} then 1
            else 0
        end as opens_episode,
        -- The next event after the episode's last cart event decides how it ended.
        case
            when
                next_kind_order = 1
                and next_at <= {{ dbt.dateadd('hour', window_hours, 'occurred_at') }}
                then 1
            else 0
        end as is_converted_here
    from sequenced
    where kind_order = 0

),

numbered as (

    select
        *,
        sum(opens_episode) over (
            partition by user_id
            order by occurred_at, kind_order, event_id
            rows between unbounded preceding and current row
        ) as episode_number
    from cart_events

),

final as (

    select
        user_id,
        episode_number,
        min(occurred_at) as cart_started_at,
        max(occurred_at) as last_cart_event_at,
        count(*) as cart_events,
        cast(coalesce(
            sum(case when event_type = 'add_to_cart' then price * coalesce(quantity, 1) end),
            0
        ) as {{ type_money() }}) as cart_value,
        max(is_converted_here) = 1 as is_converted
    from numbered
    group by user_id, episode_number

)

select * from final
