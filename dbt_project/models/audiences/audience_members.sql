{#- One row per current segment membership, with the channel address and why it is not
    exported (suppression_reason), or null when it is. Reasons, first match wins: holdout,
    no_consent (no consent for the segment's channel, or not a known customer), no_address,
    converted (suppress_converted segments: a purchase after the user's latest abandoned
    cart), cooldown (exported for this segment in an earlier stay within cooldown_days),
    frequency_cap (the user is already in segments__daily_frequency_cap files of higher
    priority in this export). -#}

with

memberships as (

    select * from {{ ref('segment_memberships') }}

),

settings as (

    select distinct
        segment,
        channel,
        priority,
        cooldown_days,
        suppress_converted
    from {{ ref('int_segment_members') }}

),

customers as (

    select * from {{ ref('stg_raw__customers') }}

),

latest_abandonments as (

    select
        user_id,
        max(abandoned_at) as last_abandoned_at
    from {{ ref('cart_abandonments') }}
    group by user_id

),

last_purchases as (

    select * from {{ ref('int_user_last_purchases') }}

),

converted_users as (

    select latest_abandonments.user_id
    from latest_abandonments
    inner join last_purchases on latest_abandonments.user_id = last_purchases.user_id
    where last_purchases.last_purchase_at > latest_abandonments.last_abandoned_at

),

earlier_exports as (

    -- Exports made before this as_of: a rerun of the same as_of never sees itself.
    select
        segment,
        user_id,
        entered_at,
        exported_at
    from {{ ref('stg_audit__export_log') }}
    where exported_at < {{ as_of() }}

),

candidates as (

    select
        memberships.segment,
        memberships.user_id,
        memberships.entered_at,
        memberships.is_holdout,
        settings.channel,
        settings.priority,
        case settings.channel
            {%- for name, channel in segment_channels().items() %}
            when '{{ name }}' then customers.{{ channel.consent }}
            {%- endfor %}
        end as has_consent,
        nullif(lower(trim(customers.email)), '') as email,
        nullif(trim(customers.phone), '') as phone,
        settings.suppress_converted
        and memberships.user_id in (select converted_users.user_id from converted_users)
            as is_converted,
        exists(
            select 1
            from earlier_exports
            where
                earlier_exports.segment = memberships.segment
                and earlier_exports.user_id = memberships.user_id
                and earlier_exports.entered_at < memberships.entered_at
                and earlier_exports.exported_at
                > {{ dbt.dateadd('day', '-1 * settings.cooldown_days', as_of()) }}
        ) as is_cooling_down
    from memberships
    inner join settings on memberships.segment = settings.segment
    left join customers on memberships.user_id = customers.user_id

),

reasoned as (

    select
        *,
        case
            when is_holdout then 'holdout'
            when not coalesce(has_consent, false) then 'no_consent'
            {%- for name, channel in segment_channels().items() if channel.address %}
            when channel = '{{ name }}' and {{ channel.address }} is null then 'no_address'
            {%- endfor %}
            when is_converted then 'converted'
            when is_cooling_down then 'cooldown'
        end as earlier_reason
    from candidates

),

capped as (

    select
        *,
        case
            when earlier_reason is null then
                row_number() over (
                    partition by user_id, earlier_reason is null order by priority, segment
                )
        end as rank_for_user
    from reasoned

),

final as (

    select
        segment,
        user_id,
        entered_at,
        channel,
        is_holdout,
        case when email is not null then {{ sha256_hex('email') }} end as email_sha256,
        case channel
            {%- for name, channel in segment_channels().items() %}
            when '{{ name }}' then {{ channel.address or 'user_id' }}
            {%- endfor %}
        end as channel_address,
        coalesce(
            earlier_reason,
            case
                when rank_for_user > {{ var('segments__daily_frequency_cap') }}
                    then 'frequency_cap'
            end
        ) as suppression_reason
    from capped

)

select * from final
