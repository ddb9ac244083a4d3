with

events as (

    select * from {{ ref('int_events_enriched') }}
    where occurred_at <= {{ as_of() }}

),

identity_links as (

    select * from {{ ref('int_identity_links') }}

),

erased_identities as (

    select identity from {{ ref('stg_raw__erased_identities') }}

),

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

    from events
    left join identity_links
        on events.anonymous_id = identity_links.anonymous_id

),

final as (

    select * from stitched
    where user_id not in (select identity from erased_identities)

)

select * from final
