"""The floor: the four core marts (user_metrics, cart_abandonments, customer_rfm,
cohort_retention) as the least SQL that gives them, hand-written, in one DuckDB
connection, straight from the landing zone's Parquet files, load included.

It keeps every rule of the contract that decides a mart's rows: ingestion's (text cells
trimmed, blank is missing; a row without event_id, event_type, a readable timestamp or an
identity, with a negative or non-finite amount, malformed properties or a timestamp more
than a day after ingestion is not an event; the first copy of an event_id wins; erased
people and the anonymous ids seen with them are gone), identity stitching as of as_of,
and each mart's definition in DESIGN.md. What it leaves out is what a product owes its
users and the marts do not show: quarantine rows, reconciliation, run records, tests,
incremental state, segments, exports. It reads everything as one ingestion batch, as a
first run does. tests/test_floor.py holds it equal to the pipeline's marts.

    python -m bench.floor --landing DIR --db FILE --as-of 2026-04-01T00:00:00Z
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

from orchestration.core.settings import DBT_PROJECT_DIR, parse_as_of

_VARS = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
WINDOWS = {
    "abandonment_hours": _VARS["segments__abandonment_window_hours"],
    "recovery_days": _VARS["segments__recovery_window_days"],
    "gap_minutes": _VARS["segments__session_gap_minutes"],
    # user_metrics' windows are in its column names (product_views_24h, ..._7d, ..._30d).
    "short_hours": 24,
    "week_days": 7,
    "month_days": 30,
}
MARTS = ("user_metrics", "cart_abandonments", "customer_rfm", "cohort_retention")


def _text(column: str) -> str:
    return f"nullif(trim(cast({column} as varchar)), '')"


# The accepted events under their known user, at or before as_of.
LOAD_SQL = """
create temp table landed as
select
    {event_id} as event_id,
    {event_type} as event_type,
    try_cast({occurred_at} as timestamptz) as occurred_at_instant,
    {user_id} as user_id,
    {anonymous_id} as anonymous_id,
    {session_id} as session_id,
    {order_id} as order_id,
    {properties} as properties,
    try_cast(price as double) as price,
    try_cast(revenue as double) as revenue,
    try_cast(quantity as double) as quantity,
    try_cast(duration_seconds as double) as duration_seconds,
    price is not null and try_cast(price as double) is null as bad_price,
    revenue is not null and try_cast(revenue as double) is null as bad_revenue,
    quantity is not null and try_cast(quantity as double) is null as bad_quantity,
    duration_seconds is not null and try_cast(duration_seconds as double) is null
        as bad_duration,
    filename as source_file,
    file_row_number as source_row
from read_parquet($events, filename = true, file_row_number = true, union_by_name = true);

create temp table accepted as
select
    * exclude (occurred_at_instant),
    make_timestamp(epoch_us(occurred_at_instant)) as occurred_at
from landed
where event_id is not null
    and event_type is not null
    and isfinite(occurred_at_instant)
    and (user_id is not null or anonymous_id is not null)
    and not (bad_price or bad_revenue or bad_quantity or bad_duration)
    and coalesce(isfinite(price) and price < 1e14, true)
    and coalesce(isfinite(revenue) and revenue < 1e14, true)
    and coalesce(price * quantity < 1e14, true)
    and coalesce(isfinite(quantity) and quantity = floor(quantity), true)
    and coalesce(isfinite(duration_seconds), true)
    and not coalesce(price < 0 or revenue < 0 or quantity < 0, false)
    and (properties is null
        or (json_valid(properties)
            and json_type(case when json_valid(properties) then properties end) = 'OBJECT'))
    and make_timestamp(epoch_us(occurred_at_instant)) <= $ingested_at + interval 1 day
qualify row_number() over (partition by event_id order by source_file, source_row) = 1;

create temp table erased as
with requested as (
    select distinct {request_user_id} as identity
    from {{requests}}
    where {request_user_id} is not null
        and (requested_at is null or try_cast(requested_at as timestamptz) is not null)
)
select identity from requested
union
select anonymous_id from accepted
where anonymous_id is not null and user_id in (select identity from requested);

create temp table events as
with kept as (
    select * from accepted
    where occurred_at <= $as_of
        and coalesce(user_id not in (select identity from erased), true)
        and coalesce(anonymous_id not in (select identity from erased), true)
),
links as (
    select anonymous_id, arg_min(user_id, (occurred_at, source_file, source_row)) as user_id
    from kept
    where anonymous_id is not null and user_id is not null
    group by anonymous_id
)
select
    kept.event_id,
    kept.event_type,
    kept.occurred_at,
    coalesce(kept.user_id, links.user_id, kept.anonymous_id) as user_id,
    kept.session_id,
    coalesce(kept.order_id, kept.event_id) as order_key,
    cast(kept.price as decimal(28, 4)) as price,
    cast(kept.quantity as bigint) as quantity,
    case when kept.event_type = 'purchase' then cast(coalesce(
        cast(kept.revenue as decimal(28, 4)),
        cast(kept.price as decimal(28, 4)) * coalesce(cast(kept.quantity as bigint), 1),
        0) as decimal(28, 4)) end as purchase_amount
from kept
left join links on kept.anonymous_id = links.anonymous_id;
""".format(
    **{
        name: _text(name)
        for name in (
            "event_id",
            "event_type",
            "occurred_at",
            "user_id",
            "anonymous_id",
            "session_id",
            "order_id",
            "properties",
        )
    },
    request_user_id=_text("user_id"),
)

MART_SQL = {
    "cart_abandonments": """
create table cart_abandonments as
with sequenced as (
    select
        user_id, event_id, event_type, occurred_at, price, quantity,
        event_type = 'purchase' as is_purchase,
        lag(occurred_at) over w as previous_at,
        lag(event_type = 'purchase') over w as previous_is_purchase,
        lead(occurred_at) over w as next_at,
        lead(event_type = 'purchase') over w as next_is_purchase
    from events
    where event_type in ('add_to_cart', 'checkout_started', 'purchase')
    window w as (
        partition by user_id
        order by occurred_at, event_type = 'purchase', event_id
    )
),
cart_events as (
    select
        *,
        sum(case when previous_at is null or previous_is_purchase
            or occurred_at > previous_at + interval {abandonment_hours} hour then 1 else 0 end)
            over (partition by user_id order by occurred_at, event_id
                rows unbounded preceding) as episode
    from (
        select * from sequenced where not is_purchase
    ) as carts
),
episodes as (
    select
        user_id,
        min(occurred_at) as cart_started_at,
        max(occurred_at) as last_cart_event_at,
        max(occurred_at) + interval {abandonment_hours} hour as abandoned_at,
        count(*) as cart_events,
        cast(coalesce(sum(case when event_type = 'add_to_cart'
            then price * coalesce(quantity, 1) end), 0) as decimal(28, 4)) as cart_value,
        bool_or(coalesce(next_is_purchase
            and next_at <= occurred_at + interval {abandonment_hours} hour, false))
            as is_converted
    from cart_events
    group by user_id, episode
),
abandoned as (
    select * from episodes
    where not is_converted and abandoned_at <= $as_of
)
select
    abandoned.user_id,
    abandoned.cart_started_at,
    abandoned.last_cart_event_at,
    abandoned.abandoned_at,
    abandoned.cart_events,
    abandoned.cart_value,
    (
        select min(purchases.occurred_at) from events as purchases
        where purchases.user_id = abandoned.user_id
            and purchases.event_type = 'purchase'
            and purchases.occurred_at > abandoned.abandoned_at
            and purchases.occurred_at <= abandoned.abandoned_at + interval {recovery_days} day
    ) as recovered_at
from abandoned
""",
    "user_metrics": """
create table user_metrics as
with sessionless as (
    select
        user_id, occurred_at,
        sum(case when previous_at is null
            or occurred_at > previous_at + interval {gap_minutes} minute then 1 else 0 end)
            over (partition by user_id order by occurred_at rows unbounded preceding)
            as session_number
    from (
        select user_id, occurred_at,
            lag(occurred_at) over (partition by user_id order by occurred_at) as previous_at
        from events
        where session_id is null
            and occurred_at > $as_of - interval {short_hours} hour - interval {gap_minutes} minute
    ) as recent
),
sessions as (
    select user_id, sum(sessions) as sessions_24h
    from (
        select user_id, count(distinct session_number) as sessions
        from sessionless
        where occurred_at > $as_of - interval {short_hours} hour
        group by user_id
        union all
        select user_id, count(distinct session_id)
        from events
        where session_id is not null and occurred_at > $as_of - interval {short_hours} hour
        group by user_id
    ) as both_kinds
    group by user_id
),
abandonments as (
    select user_id, count(*) as cart_abandonments_7d
    from cart_abandonments
    where abandoned_at > $as_of - interval {week_days} day
    group by user_id
),
per_user as (
    select
        user_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_event_at,
        count(*) filter (where event_type = 'product_view'
            and occurred_at > $as_of - interval {short_hours} hour) as product_views_24h,
        count(*) filter (where event_type = 'product_view'
            and occurred_at > $as_of - interval {week_days} day) as product_views_7d,
        count(*) filter (where event_type = 'add_to_cart'
            and occurred_at > $as_of - interval {week_days} day) as add_to_cart_7d,
        count(distinct order_key) filter (where event_type = 'purchase'
            and occurred_at > $as_of - interval {month_days} day) as purchases_30d,
        cast(coalesce(sum(purchase_amount) filter (where event_type = 'purchase'
            and occurred_at > $as_of - interval {month_days} day), 0) as decimal(28, 4))
            as revenue_30d
    from events
    group by user_id
)
select
    per_user.user_id,
    per_user.first_seen_at,
    per_user.last_event_at,
    cast(floor((epoch_us($as_of) - epoch_us(per_user.last_event_at)) / 86400000000.0)
        as integer) as days_since_last_event,
    per_user.product_views_24h,
    per_user.product_views_7d,
    per_user.add_to_cart_7d,
    coalesce(abandonments.cart_abandonments_7d, 0) as cart_abandonments_7d,
    per_user.purchases_30d,
    per_user.revenue_30d,
    cast(coalesce(sessions.sessions_24h, 0) as bigint) as sessions_24h
from per_user
left join abandonments on per_user.user_id = abandonments.user_id
left join sessions on per_user.user_id = sessions.user_id
""",
    "customer_rfm": """
create table customer_rfm as
with days as (
    select user_id, cast(occurred_at as date) as day, sum(purchase_amount) as revenue
    from events
    where event_type = 'purchase'
    group by all
),
summary as (
    select
        user_id,
        count(*) - 1 as frequency,
        datediff('day', min(day), max(day)) as recency,
        datediff('day', min(day), cast($as_of as date)) as t,
        cast(coalesce(avg(revenue) filter (where day > first_day), 0) as decimal(28, 6))
            as monetary_value
    from (select *, min(day) over (partition by user_id) as first_day from days) as d
    group by user_id
),
scored as (
    select
        *,
        cast(1 + floor(4.9999 * percent_rank() over (order by t - recency desc)) as integer)
            as r_score,
        cast(1 + floor(4.9999 * percent_rank() over (order by frequency)) as integer)
            as f_score,
        cast(1 + floor(4.9999 * percent_rank() over (order by monetary_value)) as integer)
            as m_score
    from summary
)
select
    user_id, frequency, recency, t as "T", monetary_value, r_score, f_score, m_score,
    case
        when r_score >= 4 and f_score >= 4 then 'champions'
        when f_score >= 4 then 'loyal'
        when r_score >= 4 and f_score >= 2 then 'potential_loyalists'
        when r_score >= 4 then 'new_customers'
        when r_score <= 2 and f_score >= 3 then 'at_risk'
        when r_score <= 2 then 'hibernating'
        else 'needs_attention'
    end as rfm_segment
from scored
""",
    "cohort_retention": """
create table cohort_retention as
with months as (
    select distinct user_id, cast(date_trunc('month', occurred_at) as date) as month
    from events
),
cohorts as (
    select user_id, min(month) as cohort_month from months group by user_id
),
sizes as (
    select cohort_month, count(*) as cohort_size from cohorts group by cohort_month
),
active as (
    select cohorts.cohort_month, datediff('month', cohorts.cohort_month, months.month)
        as period, count(*) as active_users
    from months join cohorts using (user_id)
    group by all
)
select
    sizes.cohort_month,
    periods.period,
    sizes.cohort_size,
    coalesce(active.active_users, 0) as active_users,
    coalesce(active.active_users, 0) / sizes.cohort_size as retention_rate
from sizes
cross join lateral (
    select cast(range as bigint) as period from range(0, datediff('month',
        sizes.cohort_month, cast(date_trunc('month', $as_of) as date)) + 1)
) as periods
left join active
    on active.cohort_month = sizes.cohort_month and active.period = periods.period
""",
}


def _parameters(sql: str, values: dict) -> dict:
    return {name: value for name, value in values.items() if f"${name}" in sql}


def run_floor(landing: Path, db: Path, as_of: datetime, memory_limit: str = "6GB") -> dict:
    """Builds the four marts in `db` (replaced) and returns the time of each phase."""
    db.unlink(missing_ok=True)
    started = time.monotonic()
    conn = duckdb.connect(str(db))
    conn.execute(f"set TimeZone = 'UTC'; set threads = 2; set memory_limit = '{memory_limit}'")
    requests = sorted(str(p) for p in (landing / "erasure_requests").rglob("*.parquet"))
    values = {
        "events": str(landing / "events" / "**" / "*.parquet"),
        "requests": requests,
        "as_of": as_of,
        "ingested_at": datetime.now(UTC).replace(tzinfo=None),
    }
    load = LOAD_SQL.format(
        requests="read_parquet($requests, union_by_name = true)"
        if requests
        else "(select null as user_id, null as requested_at where false)"
    )
    for statement in (s for s in load.split(";") if s.strip()):
        conn.execute(statement, _parameters(statement, values))
    loaded = time.monotonic()
    timings = {}
    for name in ("cart_abandonments", "user_metrics", "customer_rfm", "cohort_retention"):
        statement = MART_SQL[name].format(**WINDOWS)
        mart_started = time.monotonic()
        conn.execute(statement, _parameters(statement, values))
        timings[name] = round(time.monotonic() - mart_started, 3)
    conn.close()
    finished = time.monotonic()
    return {
        "load_seconds": round(loaded - started, 2),
        "models_seconds": round(finished - loaded, 2),
        "total_seconds": round(finished - started, 2),
        "model_seconds": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--as-of", required=True, help="ISO 8601, e.g. 2026-04-01T00:00:00Z")
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--out", type=Path, help="write the phase timings here as JSON")
    args = parser.parse_args()
    result = run_floor(args.landing, args.db, parse_as_of(args.as_of), args.memory_limit)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
