with

source as (

    select * from {{ source('raw', 'events') }}

),

erased_users as (

    select user_id from {{ ref('stg_raw__erasure_requests') }}

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
        price,
        revenue,
        quantity,
        order_id,
        duration_seconds,
        properties,
        _ingested_at as ingested_at,
        _batch_id as ingestion_batch_id,
        _source_file as source_file,
        _source_row as source_row

    from source

),

final as (

    -- Erasure removes every event carrying the user's id. Events linked to the user only
    -- through an anonymous_id are removed after stitching, in int_events_stitched.
    select * from renamed
    where user_id is null or user_id not in (select user_id from erased_users)

)

select * from final
