{#- A query of the events of the last `amount` `unit`s before as_of with the session each
    belongs to: user_id, occurred_at, session_key. A session is the event's session_id
    ('id:<session_id>'); a user's events without one form sessions of their own, a new one
    starting after a gap of more than segments__session_gap_minutes between consecutive
    such events ('gap:<n>', numbered per user). count(distinct session_key) per user over
    some of these rows counts the sessions with an event in them, and a session spanning
    two windows counts in each. user_metrics (sessions_24h) and user_traits (sessions_7d,
    sessions_prior_21d) read sessions only through this macro. -#}
{% macro windowed_sessions(amount, unit) -%}
    {%- set gap_minutes = var('segments__session_gap_minutes') -%}
    {%- set window_start = dbt.dateadd(unit, -1 * amount, as_of()) -%}
    select
        user_id,
        occurred_at,
        {{ dbt.concat(["'id:'", "session_id"]) }} as session_key
    from {{ ref('int_events_stitched') }}
    where session_id is not null and {{ in_window('occurred_at', amount, unit) }}

    union all

    select
        user_id,
        occurred_at,
        {{ dbt.concat(["'gap:'", dbt.cast('session_number', api.Column.translate_type('string'))]) }} as session_key
    from (
        -- A new session starts at a user's first session-less event and after every gap of
        -- more than the session gap.
        select
            user_id,
            occurred_at,
            sum(
                case
                    when previous_at is null then 1
                    when occurred_at > {{ dbt.dateadd('minute', gap_minutes, 'previous_at') }} then 1
                    else 0
                end
            ) over (
                partition by user_id order by occurred_at
                rows between unbounded preceding and current row
            ) as session_number
        from (
            -- Only the events that can decide a session of the window: those in it and any
            -- within one session gap before it (an earlier event is more than a gap away
            -- from every event in the window, which therefore starts a session either way).
            select
                user_id,
                occurred_at,
                lag(occurred_at) over (partition by user_id order by occurred_at) as previous_at
            from {{ ref('int_events_stitched') }}
            where
                session_id is null
                and occurred_at > {{ dbt.dateadd('minute', -1 * gap_minutes, window_start) }}
        ) as sessionless_events
    ) as derived_sessions
    where {{ in_window('occurred_at', amount, unit) }}
{%- endmacro %}
