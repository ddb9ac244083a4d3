{{ config(materialized='ephemeral') }}

with

source as (

    select * from {{ source('raw', 'erasure_requests') }}

),

final as (

    -- One row per erased user: the first request is the one that counts.
    select
        user_id,
        min(requested_at) as requested_at,
        min(_ingested_at) as ingested_at
    from source
    group by user_id

)

select * from final
