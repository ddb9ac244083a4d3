{#- Building blocks for segment models. Each returns a query of user_id and a detail column
    or two over intermediate.int_events_stitched, as of as_of. -#}

{#- Users with at least `min_count` events of `event_type` (one type, or a list of types)
    in the last `amount` `unit`s: user_id, event_count, last_at (the latest of them). -#}
{% macro users_with_events_in_window(event_type, min_count, amount, unit) -%}
    {%- set event_types = [event_type] if event_type is string else event_type -%}
    select
        user_id,
        count(*) as event_count,
        max(occurred_at) as last_at
    from {{ ref('int_events_stitched') }}
    where event_type in ('{{ event_types | join("', '") }}')
        and {{ in_window('occurred_at', amount, unit) }}
    group by user_id
    having count(*) >= {{ min_count }}
{%- endmacro %}

{#- Users who did `first_event` and then did (or, with negate=true, did not do)
    `then_event` within `amount` `unit`s after it (from the same second, as a cart bought
    in the second it was filled is converted, to at most that long after): user_id, last_at (the latest such `first_event`). For negate, only
    `first_event`s whose window has fully passed by as_of count. With `within_amount`,
    only `first_event`s of the last `within_amount` `within_unit`s (default `unit`) count. -#}
{% macro users_who_did_then(first_event, then_event, amount, unit, negate=false, within_amount=none, within_unit=none) -%}
    select
        first_events.user_id,
        max(first_events.occurred_at) as last_at
    from {{ ref('int_events_stitched') }} as first_events
    where first_events.event_type = '{{ first_event }}'
        {% if within_amount is not none %}
        and {{ in_window('first_events.occurred_at', within_amount, within_unit or unit) }}
        {% endif %}
        {% if negate %}
        and {{ dbt.dateadd(unit, amount, 'first_events.occurred_at') }} <= {{ as_of() }}
        and not exists (
        {% else %}
        and exists (
        {% endif %}
            select 1
            from {{ ref('int_events_stitched') }} as then_events
            where then_events.user_id = first_events.user_id
                and then_events.event_type = '{{ then_event }}'
                and then_events.occurred_at >= first_events.occurred_at
                and then_events.occurred_at <= {{ dbt.dateadd(unit, amount, 'first_events.occurred_at') }}
        )
    group by first_events.user_id
{%- endmacro %}

{#- Users whose first ever `event_type` (any event when none) happened in the last
    `amount` `unit`s: user_id, first_at. -#}
{% macro users_first_time_in_window(event_type, amount, unit) -%}
    select user_id, min(occurred_at) as first_at
    from {{ ref('int_events_stitched') }}
    {% if event_type %}where event_type = '{{ event_type }}'{% endif %}
    group by user_id
    having {{ in_window('min(occurred_at)', amount, unit) }}
{%- endmacro %}

{#- Users who did `event_type` (any event when none) within the last `active_within_days`
    but not in the last `inactive_days`: they stopped. -#}
{% macro users_who_stopped(event_type, inactive_days, active_within_days) -%}
    select user_id, max(occurred_at) as last_at
    from {{ ref('int_events_stitched') }}
    {% if event_type %}where event_type = '{{ event_type }}'{% endif %}
    group by user_id
    having {{ in_window('max(occurred_at)', active_within_days, 'day') }}
        and max(occurred_at) <= {{ dbt.dateadd('day', -1 * inactive_days, as_of()) }}
{%- endmacro %}
