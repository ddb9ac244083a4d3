{{ config(materialized='ephemeral') }}

{#- One row per landed file of events and ingestion batch: how many of its events
    raw.events holds and the sum of their event_ids'
    fingerprints. int_events_enriched compares it with what it holds to re-read only the
    files whose events it does not hold yet. Ephemeral, like stg_raw__events. -#}

with

source as (

    select * from {{ source('raw', 'events') }}

),

final as (

    select
        _batch_id as ingestion_batch_id,
        _source_file as source_file,
        _ingested_at as ingested_at,
        count(*) as events,
        sum({{ fingerprint(['event_id']) }}) as fingerprint
    from source
    group by _batch_id, _source_file, _ingested_at

)

select * from final
