{#- Every abandoned cart once under segment 'all', and once more under each recovery
    campaign (a segment with meta.segment.recovery_campaign) when the campaign could reach
    its user: a customer with consent and an address for the campaign's channel. There
    campaign_group is 'holdout' or 'treated' by the user's stable holdout draw in that
    segment: an intent-to-treat comparison, which needs no record of who was sent what and
    covers carts from before the first export. Only carts whose recovery window has
    passed by as_of are measured (a younger cart could still be recovered, and counting it
    as lost would drag the newest week down); carts abandoned before
    segments__measurement_start (when set) are left out. -#}

{%- set campaigns = segment_catalog() | selectattr('recovery_campaign') | list -%}
{%- set measurement_start = var('segments__measurement_start', '') | string | trim %}

with

carts as (

    select
        user_id,
        cart_started_at,
        abandoned_at,
        recovered_at
    from {{ ref('cart_abandonments') }}
    where
        {{ dbt.dateadd('day', var('segments__recovery_window_days'), 'abandoned_at') }}
        <= {{ as_of() }}
    {% if measurement_start %}
    and abandoned_at >= cast('{{ measurement_start | replace("'", "") }}' as {{ dbt.type_timestamp() }})
    {% endif %}

),

recovering_orders as (

    -- What the purchase that recovered a cart brought in.
    select
        carts.user_id,
        carts.abandoned_at,
        cast(sum(purchases.purchase_amount) as {{ type_money() }}) as revenue
    from carts
    inner join {{ ref('int_events_stitched') }} as purchases
        on
            purchases.user_id = carts.user_id
            and purchases.event_type = 'purchase'
            and purchases.occurred_at = carts.recovered_at
    group by carts.user_id, carts.abandoned_at

),

measured as (

    select
        carts.user_id,
        carts.cart_started_at,
        carts.abandoned_at,
        cast({{ dbt.date_trunc('week', 'carts.abandoned_at') }} as date) as week_start,
        carts.recovered_at,
        carts.recovered_at is not null as is_recovered,
        -- A double, not a decimal: Spark reads 3600.0 as a decimal and keeps 6 places.
        cast(
            {{ dbt.datediff('carts.abandoned_at', 'carts.recovered_at', 'second') }}
            as {{ type_double() }}
        ) / 3600 as hours_to_recovery,
        coalesce(recovering_orders.revenue, cast(0 as {{ type_money() }})) as recovered_revenue
    from carts
    left join recovering_orders
        on
            carts.user_id = recovering_orders.user_id
            and carts.abandoned_at = recovering_orders.abandoned_at

),

customers as (

    select * from {{ ref('stg_raw__customers') }}

),

final as (

    select
        cast('all' as {{ dbt.type_string() }}) as segment,
        measured.*,
        cast(null as {{ dbt.type_string() }}) as campaign_group
    from measured

    {% for campaign in campaigns %}
    union all

    select
        cast('{{ campaign.name }}' as {{ dbt.type_string() }}) as segment,
        measured.*,
        case
            when
                {{ holdout_bucket("'" ~ campaign.name ~ "'", 'measured.user_id') }}
                < {{ campaign.holdout_share }} * 10000 then 'holdout'
            else 'treated'
        end as campaign_group
    from measured
    inner join customers on measured.user_id = customers.user_id
    {%- set channel = segment_channels()[campaign.channel] %}
    where
        customers.{{ channel.consent }}
        {%- if channel.address %}
        and nullif(trim(customers.{{ channel.address }}), '') is not null
        {%- endif %}
    {% endfor %}

)

select * from final
