{{
    config(
        materialized=incremental_materialization(),
        incremental_strategy=incremental_strategy('append'),
        on_schema_change='fail',
        pre_hook=[
            "{{ restitch_relinked_events() }}",
            "{{ delete_changed_event_groups() }}",
        ],
    )
}}

{#- Incremental, and exactly the table a full rebuild gives. The pre-hooks of an
    incremental run (macros/event_groups.sql) bring the held rows up to date: an anonymous
    event whose identity link changed (a later batch brought an earlier link, or as_of
    moved) gets its new user_id; every group of events (one
    ingestion batch, one day of occurred_at) whose count or content differs from
    int_events_enriched's at or before as_of is deleted. The run then appends the groups
    it does not hold: new, late, or just deleted (an event belongs to one group, so it is
    never held twice). int_events_enriched is read in each CTE that needs it, not through
    an import CTE, which would be materialized whole (every event) first. -#}

with

identity_links as (

    select * from {{ ref('int_identity_links') }}

),

{% if is_incremental() %}

event_groups as (

    select distinct ingestion_batch_id, cast(occurred_at as date) as occurred_on
    from {{ ref('int_events_enriched') }}
    where occurred_at <= {{ as_of() }}

),

held_groups as (

    select distinct ingestion_batch_id, cast(occurred_at as date) as occurred_on
    from {{ this }}

),

missing_groups as (

    -- Groups not held: new, late, or deleted by the pre-hook as changed.
    select event_groups.ingestion_batch_id, event_groups.occurred_on
    from event_groups
    left join held_groups
        on event_groups.ingestion_batch_id = held_groups.ingestion_batch_id
        and event_groups.occurred_on = held_groups.occurred_on
    where held_groups.ingestion_batch_id is null

),

events_to_stitch as (

    select events.*
    from {{ ref('int_events_enriched') }} as events
    inner join missing_groups
        on events.ingestion_batch_id = missing_groups.ingestion_batch_id
        and cast(events.occurred_at as date) = missing_groups.occurred_on
    where events.occurred_at <= {{ as_of() }}

),

{% else %}

events_to_stitch as (

    select * from {{ ref('int_events_enriched') }}
    where occurred_at <= {{ as_of() }}

),

{% endif %}

stitched as (

    select
        events.event_id,
        events.event_type,
        events.occurred_at,
        -- The known user: the event's own user_id, else the user its anonymous_id was
        -- linked to, else the anonymous visitor.
        coalesce(events.user_id, identity_links.user_id, events.anonymous_id) as user_id,
        events.user_id as event_user_id,
        events.anonymous_id,
        events.session_id,
        events.product_id,
        events.category,
        events.price,
        events.quantity,
        events.duration_seconds,
        events.utm_source,
        events.order_key,
        events.purchase_amount,
        events.is_cart_event,
        events.ingestion_batch_id,
        events.source_file,
        events.source_row

    from events_to_stitch as events
    left join identity_links
        on events.anonymous_id = identity_links.anonymous_id

)

select * from stitched
