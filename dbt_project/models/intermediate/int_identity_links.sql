with

first_link_times as (

    -- A row carrying both ids links them; links made after as_of are not known yet.
    select
        anonymous_id,
        min(occurred_at) as linked_at
    from {{ ref('int_events_enriched') }}
    where
        anonymous_id is not null
        and user_id is not null
        and occurred_at <= {{ as_of() }}
    group by anonymous_id

),

first_links as (

    -- The links made at that first instant: one, or a few to rank. Ranking only these,
    -- not every link, spares a sort of all linking events.
    select
        linking_events.anonymous_id,
        linking_events.user_id,
        linking_events.occurred_at,
        row_number() over (
            partition by linking_events.anonymous_id
            order by
                linking_events.ingestion_batch_id,
                linking_events.source_file,
                linking_events.source_row
        ) as link_rank
    from {{ ref('int_events_enriched') }} as linking_events
    inner join first_link_times
        on
            linking_events.anonymous_id = first_link_times.anonymous_id
            and linking_events.occurred_at = first_link_times.linked_at
    where
        linking_events.anonymous_id is not null
        and linking_events.user_id is not null

),

final as (

    -- The earliest link wins; among links of one instant, the first ingested.
    select
        anonymous_id,
        user_id,
        occurred_at as linked_at
    from first_links
    where link_rank = 1

)

select * from final
