{#- Incremental upkeep of the event-level models by groups of events: a group whose events
    differ between a model and what it is built from is rebuilt whole, a group that matches
    is left alone. int_events_enriched compares the landed files it re-reads with those it
    holds (stg_raw__event_files); int_events_stitched compares its groups (one ingestion
    batch, one day of occurred_at) with int_events_enriched's, by count and content. -#}

{#- The fingerprint of an event's enriched columns, those int_events_stitched copies.
    `user_column` holds the event's own user_id (user_id in int_events_enriched,
    event_user_id in int_events_stitched). -#}
{% macro event_fingerprint(user_column) -%}
    {{ fingerprint([
        'event_id', 'event_type', 'occurred_at', user_column, 'anonymous_id', 'session_id',
        'product_id', 'category', 'price', 'quantity', 'duration_seconds', 'utm_source',
        'order_key', 'purchase_amount', 'is_cart_event', 'ingestion_batch_id', 'source_file',
        'source_row',
    ]) }}
{%- endmacro %}

{#- One row per group of `relation`: its key (ingestion_batch_id, occurred_on), how many
    events it holds and the sum of their fingerprints. -#}
{% macro event_group_signatures(relation, user_column, where='true') -%}
    select
        ingestion_batch_id,
        cast(occurred_at as date) as occurred_on,
        count(*) as events,
        sum({{ event_fingerprint(user_column) }}) as fingerprint
    from {{ relation }}
    where {{ where }}
    group by ingestion_batch_id, cast(occurred_at as date)
{%- endmacro %}

{#- The pre-hooks of int_events_stitched, in the order they run. -#}

{#- Pre-hook of int_events_stitched on an incremental run: gives each held anonymous event
    (no user_id of its own) the user its anonymous_id links to now, or the anonymous_id when
    no link is known, where that changed. Nothing on a full refresh. -#}
{% macro restitch_relinked_events() -%}
    {%- if is_incremental() -%}
    update {{ this }} as held
    set user_id = relinked.user_id
    from (
        select
            stitched.event_id,
            coalesce(identity_links.user_id, stitched.anonymous_id) as user_id
        from {{ this }} as stitched
        left join {{ ref('int_identity_links') }} as identity_links
            on stitched.anonymous_id = identity_links.anonymous_id
        where stitched.event_user_id is null
            and stitched.anonymous_id is not null
            and stitched.user_id <> coalesce(identity_links.user_id, stitched.anonymous_id)
    ) as relinked
    where held.event_id = relinked.event_id
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of int_events_stitched on an incremental run: deletes every held row of a
    group whose events differ from int_events_enriched's at or before as_of (new, late,
    rewritten by a backfill, or past a moved as_of); the model inserts those groups
    again. Nothing on a full refresh. -#}
{% macro delete_changed_event_groups() -%}
    {%- if is_incremental() -%}
    {%- set changed_groups -%}
        select held_groups.ingestion_batch_id, held_groups.occurred_on
        from ({{ event_group_signatures(this, 'event_user_id') }}) as held_groups
        left join ({{ event_group_signatures(
            ref('int_events_enriched'), 'user_id', 'occurred_at <= ' ~ as_of()) }}) as current_groups
            on held_groups.ingestion_batch_id = current_groups.ingestion_batch_id
            and held_groups.occurred_on = current_groups.occurred_on
        where current_groups.events is null
            or current_groups.events <> held_groups.events
            or current_groups.fingerprint <> held_groups.fingerprint
    {%- endset %}
    {{ delete_matching(this, 'held', changed_groups, 'changed_groups',
        'held.ingestion_batch_id = changed_groups.ingestion_batch_id'
        ~ ' and cast(held.occurred_at as date) = changed_groups.occurred_on') }}
    {%- endif -%}
{%- endmacro %}
