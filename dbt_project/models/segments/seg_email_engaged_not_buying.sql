{%- set lookback_days = var('segments__email_engaged_lookback_days') -%}

with

email_engaged as (

    {{ users_with_events_in_window(
        ['email_open', 'email_click'],
        var('segments__email_engaged_min_engagements'),
        lookback_days, 'day'
    ) }}

),

last_purchases as (

    select * from {{ ref('int_user_last_purchases') }}

),

final as (

    -- No purchase in the same days: the last one (if any) is older.
    select
        email_engaged.user_id,
        email_engaged.event_count as email_engagements,
        email_engaged.last_at as last_engaged_at
    from email_engaged
    left join last_purchases on email_engaged.user_id = last_purchases.user_id
    where
        last_purchases.last_purchase_at is null
        or not {{ in_window('last_purchases.last_purchase_at', lookback_days, 'day') }}

)

select * from final
