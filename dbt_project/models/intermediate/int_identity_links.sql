with

linking_events as (

    -- A row carrying both ids links them; links made after as_of are not known yet.
    select
        anonymous_id,
        user_id,
        occurred_at,
        ingestion_batch_id,
        source_file,
        source_row
    from {{ ref('int_events_enriched') }}
    where anonymous_id is not null
        and user_id is not null
        and occurred_at <= {{ as_of() }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by anonymous_id
            order by occurred_at, ingestion_batch_id, source_file, source_row
        ) as link_rank
    from linking_events

),

final as (

    -- The earliest link wins.
    select
        anonymous_id,
        user_id,
        occurred_at as linked_at
    from ranked
    where link_rank = 1

)

select * from final
