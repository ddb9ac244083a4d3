{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        event_id,
        event_type,
        occurred_at,
        user_id,
        anonymous_id,
        session_id,
        product_id,
        category,
        -- Money is exact from here on (macros/adapters/types.sql).
        cast(price as {{ type_money() }}) as price,
        cast(revenue as {{ type_money() }}) as revenue,
        quantity,
        order_id,
        duration_seconds,
        properties,
        _ingested_at as ingested_at,
        _batch_id as ingestion_batch_id,
        _source_file as source_file,
        _source_row as source_row

    from source

)

select * from renamed
