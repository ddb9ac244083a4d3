"""A deterministic synthetic landing zone with realistic funnels.

Each user has a persona: when they arrive, how often they visit, whether they churn,
when (if ever) they log in, which category they favour, how readily they buy. Days are
generated one at a time (vectorized over users), so memory is bounded by one day's events
whatever the total. Per day it writes one events file; about 1% of events arrive one to
three days late and 0.3% are delivered twice, as real collectors do. customers/ and
erasure_requests/ are written at the end. The same arguments always give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

DEFAULT_START = date(2026, 1, 1)
CATEGORIES = (
    "electronics",
    "apparel",
    "home",
    "beauty",
    "sports",
    "toys",
    "books",
    "grocery",
    "garden",
    "automotive",
    "jewelry",
    "pets",
)
SEARCH_TERMS = ("shoes", "headphones", "lamp", "gift", "sale", "jacket", "blender", "tent")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "CA", "AU", "SE")

# Event type codes of the generated frame (their names are the canonical event types).
PAGE_VIEW, LOGIN, SEARCH, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT, PURCHASE = range(7)
REMOVE_FROM_CART, EMAIL_OPEN, EMAIL_CLICK = 7, 8, 9
EVENT_TYPES = (
    "page_view",
    "login",
    "search",
    "product_view",
    "add_to_cart",
    "checkout_started",
    "purchase",
    "remove_from_cart",
    "email_open",
    "email_click",
)
# Bad-row kinds, in the order of the quarantine reasons they should produce.
BAD_KINDS = (
    "missing_event_id",
    "missing_event_type",
    "unparseable_timestamp",
    "missing_identity",
    "negative_amount",
    "malformed_properties",
    "future_timestamp",
)
LATE_SHARE = 0.01
DUPLICATE_SHARE = 0.003
RECOVERY_DAYS = 7
# A user back within a week of an abandoned cart buys it with this probability, or with the
# second when the demo's cart recovery campaign reached them: the default project emails
# the potentially_lost segment to consenting customers and holds out a share of them by the
# stable draw of its holdout_bucket macro. The difference is the campaign's true effect,
# which marts.abandonment_recovery should find again.
RECOVERY_PROB = 0.2
CAMPAIGN_RECOVERY_PROB = 0.45
# The reminder also brings users back: extra chance of a visit on each of the first days.
CAMPAIGN_RETURN_PROB = 0.2
CAMPAIGN_RETURN_DAYS = 3
CAMPAIGN_SEGMENT = "potentially_lost"
CAMPAIGN_HOLDOUT_SHARE = 0.1
# Where users first came from (the utm_source of their first page view; direct carries
# none) and how that changes how often they come back.
ACQUISITION_SOURCES = ("direct", "search", "social", "email", "affiliate")
ACQUISITION_SHARES = (0.3, 0.3, 0.2, 0.1, 0.1)
ACQUISITION_VISIT_FACTOR = (1.0, 1.1, 0.6, 1.5, 0.8)


@dataclass(frozen=True)
class GeneratorConfig:
    out: Path
    users: int
    days: int
    seed: int = 0
    start: date = DEFAULT_START
    file_format: str = "parquet"
    bad_rate: float = 0.0


@dataclass
class GeneratorReport:
    events_written: int = 0
    files_written: int = 0
    customers: int = 0
    erasure_requests: int = 0
    bad_rows: int = 0


class _Personas:
    """Per-user traits and the state carried from day to day."""

    def __init__(self, users: int, days: int, rng: np.random.Generator):
        n = users
        self.count = n
        # A third were already customers on day 0; the rest arrive over the period.
        existing = rng.random(n) < 0.3
        self.first_day = np.where(existing, 0, rng.integers(0, max(days, 1), n))
        churns = rng.random(n) < 0.35
        self.last_day = np.where(churns, self.first_day + rng.geometric(1 / 21, n), days + 1)
        self.visit_prob = np.clip(rng.lognormal(np.log(0.1), 0.8, n), 0.01, 0.8)
        self.daily_engaged = rng.random(n) < 0.03
        self.visit_prob[self.daily_engaged] = 0.9
        # 70% log in at some point: registered customers from their first visit,
        # others after a few anonymous days (identity stitching matters for them).
        identifies = rng.random(n) < 0.7
        delay = np.where(rng.random(n) < 0.5, 0, rng.geometric(1 / 4, n))
        self.login_day = np.where(identifies, self.first_day + delay, 10**6)
        self.keeps_anonymous_id = rng.random(n) < 0.5
        self.favourite = rng.zipf(1.6, n) % len(CATEGORIES)
        self.cart_prob = np.clip(rng.normal(0.22, 0.08, n), 0.02, 0.6)
        self.buy_prob = np.clip(rng.normal(0.5, 0.2, n), 0.02, 0.95)
        abandoners = rng.random(n) < 0.05
        self.cart_prob[abandoners] = 0.7
        self.buy_prob[abandoners] = 0.08
        self.email_consent = rng.random(n) < 0.6
        self.sms_consent = rng.random(n) < 0.25
        self.push_consent = rng.random(n) < 0.3
        self.login_second = rng.integers(0, 86_400, n)
        self.acquisition = rng.choice(len(ACQUISITION_SOURCES), n, p=ACQUISITION_SHARES)
        factor = np.asarray(ACQUISITION_VISIT_FACTOR)[self.acquisition]
        self.visit_prob[~self.daily_engaged] = np.clip(
            self.visit_prob[~self.daily_engaged] * factor[~self.daily_engaged], 0.01, 0.8
        )
        self.campaign_holdout = holdout_draws(CAMPAIGN_SEGMENT, n) < CAMPAIGN_HOLDOUT_SHARE * 10_000
        # State: the day of the user's last abandoned cart (recovery is likelier after it).
        self.abandoned_day = np.full(n, -(10**6))


def user_id(user: int) -> str:
    return f"u{user:07d}"


def holdout_bucket(segment: str, user: str) -> int:
    """A user's holdout bucket (0..9999) in a segment, as the holdout_bucket macro draws it:
    the first 32 bits of md5("segment|user_id"), modulo 10000. A deliberate second copy of
    the macro: the generator runs before any warehouse exists. tests/test_measurement.py
    picks its holdout users with it, so the two cannot drift apart unnoticed."""
    return int(hashlib.md5(f"{segment}|{user}".encode()).hexdigest()[:8], 16) % 10_000


def holdout_draws(segment: str, users: int) -> np.ndarray:
    """The holdout bucket of each generated user in `segment`."""
    return np.fromiter(
        (holdout_bucket(segment, user_id(user)) for user in range(users)),
        dtype=np.int64,
        count=users,
    )


def _day_events(
    day: int, personas: _Personas, rng: np.random.Generator, day_start: int
) -> dict[str, np.ndarray]:
    """The events that happen on one day, as numeric columns."""
    p = personas
    users = np.arange(p.count)
    alive = (p.first_day <= day) & (day < p.last_day)
    # The campaign reaches a known customer with email consent who is not held out.
    since_abandoned = day - p.abandoned_day
    reached = (p.login_day <= p.abandoned_day) & p.email_consent & ~p.campaign_holdout
    reminded = reached & (since_abandoned >= 1) & (since_abandoned <= CAMPAIGN_RETURN_DAYS)
    # Everyone visits on their first day and on the day they log in.
    visits = alive & (
        (rng.random(p.count) < p.visit_prob)
        | (p.first_day == day)
        | (p.login_day == day)
        | (reminded & (rng.random(p.count) < CAMPAIGN_RETURN_PROB))
    )
    visitors = users[visits]

    sessions_per_visitor = 1 + rng.poisson(0.3, visitors.size)
    engaged = p.daily_engaged[visitors]
    sessions_per_visitor[engaged] = 1 + rng.poisson(3.5, int(engaged.sum()))
    s_user = np.repeat(visitors, sessions_per_visitor)
    s = s_user.size
    # Visits cluster in the evening: a mixture of a uniform day and an evening peak.
    hour_mix = np.where(rng.random(s) < 0.6, rng.normal(19.5, 2.5, s), rng.uniform(0, 24, s))
    s_start = day_start + (np.clip(hour_mix, 0, 23.5) * 3600).astype(np.int64)
    s_has_id = rng.random(s) < 0.97
    s_category = np.where(rng.random(s) < 0.7, p.favourite[s_user], rng.integers(0, 12, s))

    login_today = p.login_day[s_user] == day
    s_first_of_user = np.r_[True, s_user[1:] != s_user[:-1]]
    s_login = login_today & s_first_of_user
    s_search = rng.random(s) < 0.2
    s_views = rng.geometric(0.3, s) - (rng.random(s) < 0.15)  # some sessions view nothing
    s_cart = (s_views > 0) & (rng.random(s) < p.cart_prob[s_user])
    s_remove = s_cart & (rng.random(s) < 0.08)
    s_checkout = s_cart & (rng.random(s) < 0.6)
    s_buy = s_checkout & (rng.random(s) < p.buy_prob[s_user])
    # A user back within a week of an abandoned cart often buys it: a recovery, likelier
    # when the campaign emailed them.
    pending = (since_abandoned[s_user] >= 1) & (since_abandoned[s_user] <= RECOVERY_DAYS)
    recovery_prob = np.where(reached[s_user], CAMPAIGN_RECOVERY_PROB, RECOVERY_PROB)
    s_recovery = pending & s_first_of_user & ~s_buy & (rng.random(s) < recovery_prob)
    s_buy = s_buy | s_recovery
    s_cart_product = s_category * 1000 + rng.integers(0, 150, s)
    s_quantity = 1 + (rng.random(s) < 0.25) + (rng.random(s) < 0.08)

    abandoned_now = np.unique(s_user[s_cart & ~s_buy])
    p.abandoned_day[abandoned_now] = day
    p.abandoned_day[np.unique(s_user[s_buy])] = -(10**6)

    # Stages of a session, in order; count events per session.
    stage_counts = np.stack(
        [
            np.ones(s, np.int64),
            s_login,
            s_search,
            s_views,
            s_cart,
            s_remove,
            s_checkout,
            s_buy,
        ],
        axis=1,
    ).astype(np.int64)
    stage_types = np.array(
        [PAGE_VIEW, LOGIN, SEARCH, PRODUCT_VIEW, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT, PURCHASE]
    )
    per_session = stage_counts.sum(axis=1)
    e_session = np.repeat(np.arange(s), per_session)
    e_stage = np.repeat(np.tile(np.arange(len(stage_types)), s), stage_counts.ravel())
    e_type = stage_types[e_stage]
    n = e_session.size
    gaps = rng.exponential(45.0, n).astype(np.int64) + 1
    session_offsets = np.repeat(np.cumsum(per_session) - per_session, per_session)
    first_gap = np.cumsum(gaps)[session_offsets]
    e_time = s_start[e_session] + np.cumsum(gaps) - first_gap
    e_user = s_user[e_session]

    # The first page view of a user's first session carries where they came from.
    landing = (e_stage == 0) & s_first_of_user[e_session] & (p.first_day[e_user] == day)
    source = np.where(landing, p.acquisition[e_user], 0)

    viewed = e_type == PRODUCT_VIEW
    product = np.where(
        viewed,
        s_category[e_session] * 1000 + rng.integers(0, 150, n),
        s_cart_product[e_session],
    )
    carries_product = viewed | np.isin(e_type, [ADD_TO_CART, REMOVE_FROM_CART, PURCHASE])
    price = np.round(4.99 + (product % 1000) * 0.83 + (product // 1000) * 3.1, 2)
    quantity = s_quantity[e_session]
    revenue = np.where(e_type == PURCHASE, np.round(price * quantity, 2), np.nan)
    # Time on page: mostly short, a tail of long reads (over three minutes).
    duration = np.where(viewed, np.round(rng.lognormal(np.log(40), 0.9, n), 1), np.nan)

    # Identity: anonymous before the login day; the login session links both ids.
    # Identity: anonymous until the session in which the user logs in; from its start on,
    # events carry the user_id (and, for half the users, still the anonymous_id).
    login_start = np.full(p.count, np.iinfo(np.int64).max)
    login_start[s_user[s_login]] = s_start[s_login]
    identified = (p.login_day[e_user] < day) | (
        (p.login_day[e_user] == day) & (e_time >= login_start[e_user])
    )
    carries_user = identified
    carries_anonymous = ~identified | p.keeps_anonymous_id[e_user] | (e_type == LOGIN)

    events = {
        "user": e_user,
        "ts": e_time,
        "etype": e_type,
        "session": np.where(s_has_id[e_session], e_session, -1),
        "product": np.where(carries_product, product, -1),
        "category": np.where(carries_product | (e_type == PAGE_VIEW), s_category[e_session], -1),
        "price": np.where(carries_product, price, np.nan),
        "quantity": np.where(np.isin(e_type, [ADD_TO_CART, PURCHASE]), quantity, -1),
        "order_session": np.where(e_type == PURCHASE, e_session, -1),
        "revenue": revenue,
        "duration": duration,
        "search_term": np.where(e_type == SEARCH, rng.integers(0, len(SEARCH_TERMS), n), -1),
        "source": source,
        "carries_user": carries_user,
        "carries_anonymous": carries_anonymous,
    }

    # Marketing email: consenting identified users sometimes open, and some click.
    reachable = users[(p.login_day < day) & p.email_consent & alive]
    openers = reachable[rng.random(reachable.size) < 0.06]
    clickers = openers[rng.random(openers.size) < 0.3]
    mail_users = np.concatenate([openers, clickers])
    mail_types = np.r_[np.full(openers.size, EMAIL_OPEN), np.full(clickers.size, EMAIL_CLICK)]
    mail_time = day_start + rng.integers(6 * 3600, 22 * 3600, mail_users.size)
    m = mail_users.size
    mail = {
        "user": mail_users,
        "ts": mail_time,
        "etype": mail_types,
        "session": np.full(m, -1),
        "product": np.full(m, -1),
        "category": np.full(m, -1),
        "price": np.full(m, np.nan),
        "quantity": np.full(m, -1),
        "order_session": np.full(m, -1),
        "revenue": np.full(m, np.nan),
        "duration": np.full(m, np.nan),
        "search_term": np.full(m, -1),
        "source": np.zeros(m, np.int64),
        "carries_user": np.ones(m, bool),
        "carries_anonymous": np.zeros(m, bool),
    }
    merged = {key: np.concatenate([events[key], mail[key]]) for key in events}
    order = np.lexsort((merged["etype"], merged["ts"]))
    return {key: value[order] for key, value in merged.items()}


_FORMAT_SQL = """
select
    case when bad = 1 then null
         else printf('ev-%d-%04d-%08d', $seed, day, seq) end as event_id,
    case when bad = 2 then null else $event_types[etype + 1] end as event_type,
    case when bad = 3 then 'not a timestamp'
         when bad = 7 then strftime(make_timestamp((ts + 36500 * cast(86400 as bigint)) * 1000000),
                                    '%Y-%m-%dT%H:%M:%SZ')
         else strftime(make_timestamp(ts * 1000000), '%Y-%m-%dT%H:%M:%SZ') end as occurred_at,
    case when carries_user and bad <> 4 then printf('u%07d', "user") end as user_id,
    case when carries_anonymous and bad <> 4
         then printf('anon-%08x', ("user" * 2654435761) % 4294967296) end as anonymous_id,
    case when session >= 0 then printf('s-%04d-%07d', day, session) end as session_id,
    case when product >= 0 then printf('p%05d', product) end as product_id,
    case when category >= 0 then $categories[category + 1] end as category,
    case when bad = 5 then -abs(coalesce(nullif(price, 'nan'::double), 1.0))
         when isnan(price) then null else price end as price,
    case when quantity >= 0 then quantity end as quantity,
    case when order_session >= 0 then printf('o-%04d-%07d', day, order_session) end as order_id,
    case when not isnan(revenue) then revenue end as revenue,
    case when not isnan(duration) then duration end as duration_seconds,
    case when bad = 6 then '{"broken": '
         when search_term >= 0 then '{"query": "' || $terms[search_term + 1] || '"}'
         when source > 0 then '{"utm_source": "' || $sources[source + 1] || '"}'
         when etype in (8, 9) then '{"campaign": "weekly-' || (day // 7) || '"}'
    end as properties
from frame
order by file_order
"""

_CUSTOMERS_SQL = """
select
    printf('u%07d', "user") as customer_id,
    printf('customer%07d@example.com', "user") as email,
    case when has_phone then printf('+1555%07d', "user") end as phone,
    strftime(make_timestamp(signed_up * 1000000), '%Y-%m-%dT%H:%M:%SZ') as signed_up_at,
    $countries[country + 1] as country,
    consent_email, consent_sms, consent_push
from customers
order by "user"
"""


def _copy(conn: duckdb.DuckDBPyConnection, query: str, params: dict, path: Path, fmt: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "parquet": "(format parquet, compression zstd)",
        "csv": "(format csv, header true)",
        "jsonl": "(format json)",
    }[fmt]
    tmp = path.with_name(path.name + ".tmp")
    conn.execute(f"copy ({query}) to '{tmp}' {options}", params)
    tmp.replace(path)


def generate(
    config: GeneratorConfig, progress: Callable[[str], None] = lambda _m: None
) -> GeneratorReport:
    if config.users < 1 or config.days < 1:
        raise ValueError("--users and --days must be at least 1")
    if not 0 <= config.bad_rate < 1:
        raise ValueError("--bad-rate must be between 0 and 1")
    if config.file_format not in ("parquet", "csv", "jsonl"):
        raise ValueError("--format must be parquet, csv or jsonl")
    report = GeneratorReport()
    personas = _Personas(config.users, config.days, np.random.default_rng([config.seed, 0]))
    epoch = datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC)
    start_ts = int(epoch.timestamp())
    conn = duckdb.connect()
    conn.execute("set TimeZone = 'UTC'; set threads = 2")
    params = {
        "seed": config.seed,
        "event_types": list(EVENT_TYPES),
        "categories": list(CATEGORIES),
        "terms": list(SEARCH_TERMS),
        "sources": list(ACQUISITION_SOURCES),
    }
    late: dict[int, list[dict[str, np.ndarray]]] = {}
    for day in range(config.days):
        rng = np.random.default_rng([config.seed, 1, day])
        frame = _day_events(day, personas, rng, start_ts + day * 86_400)
        frame["day"] = np.full(frame["ts"].size, day)
        frame["seq"] = np.arange(frame["ts"].size)
        n = frame["ts"].size
        # Late arrivals leave today's file for a later one; duplicates are re-sent tomorrow.
        target = np.minimum(day + rng.integers(1, 4, n), config.days - 1)
        goes_late = (rng.random(n) < LATE_SHARE) & (target > day)
        resent = ~goes_late & (rng.random(n) < DUPLICATE_SHARE) & (day + 1 < config.days)
        for later_day in np.unique(target[goes_late]):
            chosen = goes_late & (target == later_day)
            late.setdefault(int(later_day), []).append({k: v[chosen] for k, v in frame.items()})
        if resent.any():
            late.setdefault(day + 1, []).append({k: v[resent] for k, v in frame.items()})
        frame = {k: v[~goes_late] for k, v in frame.items()}
        parts = [frame, *late.pop(day, [])]
        delivered = {k: np.concatenate([part[k] for part in parts]) for k in frame}
        m = delivered["ts"].size
        delivered["bad"] = np.where(
            rng.random(m) < config.bad_rate, rng.integers(1, len(BAD_KINDS) + 1, m), 0
        )
        delivered["file_order"] = np.arange(m)
        report.bad_rows += int((delivered["bad"] > 0).sum())
        conn.register("frame", pa.table(delivered))
        day_name = (config.start + timedelta(days=day)).isoformat()
        path = config.out / "events" / f"events-{day_name}.{config.file_format}"
        _copy(conn, _FORMAT_SQL, params, path, config.file_format)
        conn.unregister("frame")
        report.events_written += m
        report.files_written += 1
        if (day + 1) % 10 == 0 or day + 1 == config.days:
            progress(f"day {day + 1}/{config.days}: {report.events_written:,} events written")

    report.customers = _write_customers(conn, config, personas, start_ts, params)
    report.erasure_requests = _write_erasure_requests(conn, config, personas, start_ts)
    report.files_written += 2
    conn.close()
    return report


def _write_customers(conn, config, personas: _Personas, start_ts: int, params) -> int:
    p = personas
    rng = np.random.default_rng([config.seed, 2])
    known = np.flatnonzero(p.login_day < config.days)
    customers = pa.table(
        {
            "user": known,
            "signed_up": start_ts + p.login_day[known] * 86_400 + p.login_second[known],
            "country": rng.integers(0, len(COUNTRIES), known.size),
            "has_phone": rng.random(known.size) < 0.6,
            "consent_email": p.email_consent[known],
            "consent_sms": p.sms_consent[known],
            "consent_push": p.push_consent[known],
        }
    )
    conn.register("customers", customers)
    _copy(
        conn,
        _CUSTOMERS_SQL,
        {"countries": list(COUNTRIES)},
        config.out / "customers" / f"customers.{config.file_format}",
        config.file_format,
    )
    conn.unregister("customers")
    return int(known.size)


def _write_erasure_requests(conn, config, personas: _Personas, start_ts: int) -> int:
    rng = np.random.default_rng([config.seed, 3])
    known = np.flatnonzero(personas.login_day < config.days)
    erased = known[rng.random(known.size) < 0.002]
    requested = start_ts + (config.days - 1) * 86_400 + rng.integers(0, 43_200, erased.size)
    conn.register("erasures", pa.table({"user": erased, "requested": requested}))
    _copy(
        conn,
        "select printf('u%07d', \"user\") as user_id, strftime(make_timestamp(requested * "
        "1000000), '%Y-%m-%dT%H:%M:%SZ') as requested_at from erasures order by \"user\"",
        {},
        config.out / "erasure_requests" / f"erasure_requests.{config.file_format}",
        config.file_format,
    )
    conn.unregister("erasures")
    return int(erased.size)
