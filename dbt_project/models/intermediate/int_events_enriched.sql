{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_id',
        on_schema_change='append_new_columns',
        tags=['event_level'],
        post_hook=[
            "delete from {{ this }} where user_id in ({{ erased_identities_query() }}) or anonymous_id in ({{ erased_identities_query() }})"
        ],
    )
}}

{#- Incremental on the ingestion watermark, not on occurred_at: an event that arrives
    days after it occurred is picked up by the next run however late it is. The lookback
    re-reads a margin before the watermark; delete+insert on event_id keeps that idempotent.
    A partitioned run (a Dagster backfill) passes segments__partition_start/_end and
    reprocesses every event that occurred in [start, end) instead. -#}

{%- set partition_start = var('segments__partition_start', '') | string | trim -%}
{%- set partition_end = var('segments__partition_end', '') | string | trim -%}

with

events as (

    select * from {{ ref('stg_raw__events') }}

    {% if is_incremental() and partition_start %}
    where occurred_at >= cast('{{ partition_start }}' as {{ dbt.type_timestamp() }})
        and occurred_at < cast('{{ partition_end }}' as {{ dbt.type_timestamp() }})
    {% elif is_incremental() %}
    where ingested_at > (
        select coalesce(
            {{ dbt.dateadd('hour', -1 * var('segments__incremental_lookback_hours'), 'max(ingested_at)') }},
            cast('1900-01-01' as {{ dbt.type_timestamp() }})
        )
        from {{ this }}
    )
    {% endif %}

),

final as (

    select
        event_id,
        event_type,
        occurred_at,
        user_id,
        anonymous_id,
        session_id,
        product_id,
        category,
        price,
        quantity,
        revenue,
        duration_seconds,
        -- Where the visit came from, for acquisition cohorts.
        nullif(trim({{ json_text('properties', 'utm_source') }}), '') as utm_source,
        -- A purchase is one order: its order_id, else the event itself.
        coalesce(order_id, event_id) as order_key,
        -- What a purchase event brought in: its revenue, else price x quantity.
        case
            when event_type = 'purchase'
                then coalesce(revenue, price * coalesce(quantity, 1), 0)
        end as purchase_amount,
        event_type in ('add_to_cart', 'checkout_started') as is_cart_event,
        ingested_at,
        ingestion_batch_id,
        source_file,
        source_row

    from events

)

select * from final
