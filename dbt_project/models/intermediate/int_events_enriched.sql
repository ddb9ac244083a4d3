{{
    config(
        materialized=incremental_materialization(),
        incremental_strategy=incremental_strategy('delete+insert'),
        unique_key='event_id',
        on_schema_change='append_new_columns',
        tags=['event_level'],
    )
}}

-- depends_on: {{ ref('stg_raw__event_files') }}

{#- Incremental on the ingestion watermark, not on occurred_at: an event that arrives
    days after it occurred is picked up by the next run however late it is. The lookback
    re-reads a margin before the watermark; of what it re-reads, only the files of a batch
    whose events differ from those held (by count and a fingerprint of their event_ids) are
    written again, with delete+insert on event_id: a held event is the same row however
    often it is re-read. A partitioned run (a Dagster backfill) passes
    segments__partition_start/_end and reprocesses every event that occurred in
    [start, end) instead. -#}

{%- set partition_start = var('segments__partition_start', '') | string | trim -%}
{%- set partition_end = var('segments__partition_end', '') | string | trim -%}
{%- set re_read = is_incremental() and not partition_start -%}

{#- The instant after which events are re-read, read before the run as a literal so the
    scans of the raw events skip what was ingested earlier. -#}
{%- set re_read_after = '1900-01-01 00:00:00' -%}
{%- if re_read and execute -%}
    {%- set watermark_query -%}
        select cast({{ dbt.dateadd('hour', -1 * var('segments__incremental_lookback_hours'), 'max(ingested_at)') }}
            as {{ dbt.type_string() }})
        from {{ this }}
    {%- endset -%}
    {%- set watermark = run_query(watermark_query).columns[0].values()[0] -%}
    {%- if watermark is not none -%}
        {%- set re_read_after = watermark -%}
    {%- endif -%}
{%- endif %}

with

events as (

    select * from {{ ref('stg_raw__events') }}

    {% if is_incremental() and partition_start %}
    where occurred_at >= cast('{{ partition_start }}' as {{ dbt.type_timestamp() }})
        and occurred_at < cast('{{ partition_end }}' as {{ dbt.type_timestamp() }})
    {% elif re_read %}
    where ingested_at > cast('{{ re_read_after }}' as {{ dbt.type_timestamp() }})
    {% endif %}

),

{% if re_read %}

held_files as (

    select
        ingestion_batch_id,
        source_file,
        count(*) as events,
        sum({{ fingerprint(['event_id']) }}) as fingerprint
    from {{ this }}
    where ingested_at > cast('{{ re_read_after }}' as {{ dbt.type_timestamp() }})
    group by ingestion_batch_id, source_file

),

re_read_files as (

    select * from {{ ref('stg_raw__event_files') }}
    where ingested_at > cast('{{ re_read_after }}' as {{ dbt.type_timestamp() }})

),

changed_files as (

    -- Files of which some event is not held yet.
    select re_read_files.ingestion_batch_id, re_read_files.source_file
    from re_read_files
    left join held_files
        on re_read_files.ingestion_batch_id = held_files.ingestion_batch_id
        and re_read_files.source_file = held_files.source_file
    where held_files.events is null
        or held_files.events <> re_read_files.events
        or held_files.fingerprint <> re_read_files.fingerprint

),

events_to_enrich as (

    select events.*
    from events
    inner join changed_files
        on events.ingestion_batch_id = changed_files.ingestion_batch_id
        and events.source_file = changed_files.source_file

),

{% else %}

events_to_enrich as (

    select * from events

),

{% endif %}

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
                then cast(coalesce(revenue, price * coalesce(quantity, 1), 0) as {{ type_money() }})
        end as purchase_amount,
        event_type in ('add_to_cart', 'checkout_started') as is_cart_event,
        ingested_at,
        ingestion_batch_id,
        source_file,
        source_row

    from events_to_enrich

)

select * from final
