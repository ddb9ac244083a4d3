{#- One row per user of user_metrics: what describes the customer as of as_of (interests,
    purchase history, engagement, visit trend, country, preferred channel). Column rules
    are in _marts.yml. -#}

{#- The columns' names state their windows (email_opens_30d, sessions_7d,
    sessions_prior_21d), so those are fixed here; the others are vars. -#}
{%- set week_days = 7 -%}
{%- set month_days = 30 -%}
{%- set trend_days = 28 -%}
{%- set prior_weeks = 3 -%}
{%- set favourite_days = var('segments__favourite_category_lookback_days') -%}
{%- set min_change = var('segments__visit_trend_min_change') -%}
{%- if min_change is not number or min_change is boolean or min_change < 0 -%}
    {{ exceptions.raise_compiler_error("segments__visit_trend_min_change must be a number >= 0, not " ~ min_change) }}
{%- endif -%}

{#- What counts as engaging through each channel of segment_channels(): the events email
    brings (opens and clicks; the visit an email click leads to is that click again), and
    for sms and push the events whose utm_source names them (no event type records an sms
    or a push being opened). Every channel a segment may use needs a rule here. -#}
{%- set channel_engagement = {
    'email': "event_type in ('email_open', 'email_click')",
    'sms': "lower(utm_source) = 'sms'",
    'push': "lower(utm_source) = 'push'",
} -%}
{%- for name in segment_channels() if name not in channel_engagement -%}
    {{ exceptions.raise_compiler_error("user_traits: no engagement rule for channel " ~ name) }}
{%- endfor %}

{#- Each CTE reads int_events_stitched itself, for only the columns and rows it needs, as
    user_metrics does. -#}

with

users as (

    select user_id from {{ ref('user_metrics') }}

),

customers as (

    -- The newest record of each customer (stg_raw__customers keeps only that one).
    select * from {{ ref('stg_raw__customers') }}

),

category_views as (

    select
        user_id,
        category,
        count(*) as view_count,
        max(occurred_at) as last_viewed_at
    from {{ ref('int_events_stitched') }}
    where
        event_type = 'product_view'
        and category is not null
        and {{ in_window('occurred_at', favourite_days, 'day') }}
    group by user_id, category

),

favourite_categories as (

    select
        user_id,
        category,
        row_number() over (
            partition by user_id
            order by view_count desc, last_viewed_at desc, category asc
        ) as category_rank
    from category_views

),

product_views as (

    -- The latest product_view first; of views at the same instant, the greatest event_id.
    select
        user_id,
        category,
        product_id,
        row_number() over (
            partition by user_id
            order by occurred_at desc, event_id desc
        ) as view_rank
    from {{ ref('int_events_stitched') }}
    where event_type = 'product_view' and occurred_at <= {{ as_of() }}

),

purchases as (

    select
        user_id,
        count(distinct order_key) as lifetime_orders,
        cast(sum(purchase_amount) as {{ type_money() }}) as lifetime_revenue,
        max(occurred_at) as last_purchase_at
    from {{ ref('int_events_stitched') }}
    where event_type = 'purchase' and occurred_at <= {{ as_of() }}
    group by user_id

),

email_engagement as (

    select
        user_id,
        cast(sum(
            case when event_type = 'email_open' then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as email_opens_30d,
        cast(sum(
            case when event_type = 'email_click' then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as email_clicks_30d
    from {{ ref('int_events_stitched') }}
    where
        event_type in ('email_open', 'email_click')
        and {{ in_window('occurred_at', month_days, 'day') }}
    group by user_id

),

trend_session_events as (

    -- Every event of the last 28 days with its session (macros/sessions.sql).
    {{ windowed_sessions(trend_days, 'day') }}

),

trend_sessions as (

    -- A session with events on both sides of as_of - 7 days counts in both windows.
    select
        user_id,
        count(distinct case
            when {{ in_window('occurred_at', week_days, 'day') }} then session_key
        end) as sessions_7d,
        count(distinct case
            when occurred_at <= {{ dbt.dateadd('day', -1 * week_days, as_of()) }} then session_key
        end) as sessions_prior_21d
    from trend_session_events
    group by user_id

),

channel_events as (

    select
        {%- for name, rule in channel_engagement.items() %}
        cast(sum(case when {{ rule }} then 1 else 0 end) as {{ dbt.type_bigint() }})
            as {{ name }}_engagements,
        {%- endfor %}
        user_id
    from {{ ref('int_events_stitched') }}
    where
        occurred_at <= {{ as_of() }}
        and (
            {%- for rule in channel_engagement.values() %}
            {{ "or " if not loop.first }}{{ rule }}
            {%- endfor %}
        )
    group by user_id

),

consented_channels as (

    -- One row per channel the newest customer record consents to, in the order of
    -- segment_channels() (email, sms, push), which breaks ties.
    {%- for name, channel in segment_channels().items() %}
    select
        customers.user_id,
        '{{ name }}' as channel,
        {{ loop.index }} as channel_order,
        coalesce(channel_events.{{ name }}_engagements, 0) as engagements
    from customers
    left join channel_events on customers.user_id = channel_events.user_id
    where customers.{{ channel.consent }}
    {% if not loop.last %}
    union all
    {% endif %}
    {%- endfor %}

),

preferred_channels as (

    select
        user_id,
        channel,
        row_number() over (
            partition by user_id
            order by engagements desc, channel_order asc
        ) as channel_rank
    from consented_channels

),

measured as (

    select
        users.user_id,
        favourite_categories.category as favourite_category,
        product_views.category as last_viewed_category,
        product_views.product_id as last_viewed_product_id,
        coalesce(purchases.lifetime_orders, 0) as lifetime_orders,
        coalesce(purchases.lifetime_revenue, cast(0 as {{ type_money() }})) as lifetime_revenue,
        cast(
            purchases.lifetime_revenue / purchases.lifetime_orders as {{ type_money(6) }}
        ) as average_order_value,
        cast(
            {{ whole_days_between('purchases.last_purchase_at', as_of()) }} as {{ dbt.type_int() }}
        ) as days_since_last_purchase,
        coalesce(email_engagement.email_opens_30d, 0) as email_opens_30d,
        coalesce(email_engagement.email_clicks_30d, 0) as email_clicks_30d,
        coalesce(trend_sessions.sessions_7d, 0) as sessions_7d,
        coalesce(trend_sessions.sessions_prior_21d, 0) as sessions_prior_21d,
        nullif(trim(customers.country), '') as country,
        preferred_channels.channel as preferred_channel
    from users
    left join favourite_categories
        on users.user_id = favourite_categories.user_id and favourite_categories.category_rank = 1
    left join product_views
        on users.user_id = product_views.user_id and product_views.view_rank = 1
    left join purchases on users.user_id = purchases.user_id
    left join email_engagement on users.user_id = email_engagement.user_id
    left join trend_sessions on users.user_id = trend_sessions.user_id
    left join customers on users.user_id = customers.user_id
    left join preferred_channels
        on users.user_id = preferred_channels.user_id and preferred_channels.channel_rank = 1

),

final as (

    select
        user_id,
        favourite_category,
        last_viewed_category,
        last_viewed_product_id,
        lifetime_orders,
        lifetime_revenue,
        average_order_value,
        days_since_last_purchase,
        email_opens_30d,
        email_clicks_30d,
        sessions_7d,
        sessions_prior_21d,
        -- The last 7 days against the weekly rate of the 21 before (sessions_prior_21d / 3),
        -- compared multiplied out so the arithmetic stays exact: rising when higher by at
        -- least the relative change, declining when lower by at least it, else steady.
        case
            when
                sessions_7d * {{ prior_weeks }} > sessions_prior_21d
                and sessions_7d * {{ prior_weeks }} >= sessions_prior_21d * (1 + {{ min_change }})
                then 'rising'
            when
                sessions_7d * {{ prior_weeks }} < sessions_prior_21d
                and sessions_7d * {{ prior_weeks }} <= sessions_prior_21d * (1 - {{ min_change }})
                then 'declining'
            else 'steady'
        end as visit_trend,
        country,
        preferred_channel
    from measured

)

select * from final
