{#- One row per user with a purchase at or before as_of: when they last bought. -#}

with

purchases as (

    select
        user_id,
        occurred_at
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase'

),

final as (

    select
        user_id,
        max(occurred_at) as last_purchase_at
    from purchases
    group by user_id

)

select * from final
