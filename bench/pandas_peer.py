"""The pandas peer: marts.user_metrics and marts.cart_abandonments computed the way an
analyst would in a notebook, straight from the landing zone's Parquet files.

It applies the same rules as ingestion (orchestration/ingest/batch_load.py) and the dbt models
(stg_raw__events, int_identity_links, int_events_stitched, int_cart_episodes,
cart_abandonments, user_metrics), with groupby, merge and vectorized columns only, so the
benchmark compares the pipeline against a fair, correct peer. The windows are read from
the vars of dbt_project.yml, so both sides always use the same values.

What it cannot know from the landing zone alone: ingestion batches (it reads everything
as one batch, as a first run of the pipeline does), and a full JSON validation of
`properties` (a vectorized check that the text looks like one object stands in for it).

    python -m bench.pandas_peer LANDING AS_OF
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from orchestration.core.settings import DBT_PROJECT_DIR, parse_as_of

_VARS = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
ABANDONMENT_WINDOW = pd.Timedelta(hours=_VARS["segments__abandonment_window_hours"])
RECOVERY_WINDOW = pd.Timedelta(days=_VARS["segments__recovery_window_days"])
SESSION_GAP = pd.Timedelta(minutes=_VARS["segments__session_gap_minutes"])
# user_metrics' windows are in its column names (product_views_24h, ..._7d, ..._30d).
SHORT_WINDOW = pd.Timedelta(hours=24)
WEEK_WINDOW = pd.Timedelta(days=7)
MONTH_WINDOW = pd.Timedelta(days=30)
# Ingestion quarantines events more than this far after the moment they are ingested.
FUTURE_TOLERANCE = pd.Timedelta(days=1)

EVENT_TEXT = ("event_id", "event_type", "occurred_at", "user_id", "anonymous_id")
EVENT_TEXT += ("session_id", "order_id", "properties")
EVENT_NUMBERS = ("price", "revenue", "quantity", "duration_seconds")
CART_TYPES = ("add_to_cart", "checkout_started")

USER_METRICS_COLUMNS = [
    "user_id",
    "first_seen_at",
    "last_event_at",
    "days_since_last_event",
    "product_views_24h",
    "product_views_7d",
    "add_to_cart_7d",
    "cart_abandonments_7d",
    "purchases_30d",
    "revenue_30d",
    "sessions_24h",
]
CART_ABANDONMENTS_COLUMNS = [
    "user_id",
    "cart_started_at",
    "last_cart_event_at",
    "abandoned_at",
    "cart_events",
    "cart_value",
    "recovered_at",
]


def _landed_files(folder: Path) -> list[Path]:
    """Parquet files under a landing folder in ingestion's order, hidden ones skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*.parquet")
        if not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _read(folder: Path, columns: list[str]) -> pd.DataFrame:
    """Every file of a landing folder, one after the other in ingestion order, with the
    rank of its path as text (the warehouse's source_file order) and each row's number
    within its file."""
    files = _landed_files(folder)
    path_rank = {path: rank for rank, path in enumerate(sorted(files, key=str))}
    frames = [
        pd.read_parquet(path, columns=columns).assign(
            source_file=path_rank[path], source_row=lambda f: np.arange(len(f)) + 1
        )
        for path in files
    ]
    if not frames:
        empty = {name: pd.Series(dtype="str") for name in columns}
        return pd.DataFrame(empty).assign(source_file=0, source_row=0)
    return pd.concat(frames, ignore_index=True)


def _text(column: pd.Series) -> pd.Series:
    """Ingestion reads every cell as trimmed text, blank meaning missing."""
    column = column.astype("str").str.strip(" ")
    return column.where(column != "")


def _timestamp(column: pd.Series) -> pd.Series:
    """ISO 8601 text as naive UTC (no offset means UTC); NaT when unparseable."""
    parsed = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    return parsed.dt.tz_convert(None).astype("datetime64[us]")


def _accepted_events(landing_dir: Path, ingested_at: pd.Timestamp) -> pd.DataFrame:
    """raw.events: rows that pass every ingestion rule, the first of each event_id kept."""
    events = _read(landing_dir / "events", [*EVENT_TEXT, *EVENT_NUMBERS])
    for name in EVENT_TEXT:
        events[name] = _text(events[name])
    for name in EVENT_NUMBERS:
        if not pd.api.types.is_numeric_dtype(events[name]):  # numbers written as text
            events[name] = _text(events[name])
    events["occurred_at"] = _timestamp(events["occurred_at"])

    numbers = {
        name: pd.to_numeric(events[name], errors="coerce").astype("float64")
        for name in EVENT_NUMBERS
    }
    given = {name: events[name].notna() for name in EVENT_NUMBERS}
    invalid_number = (
        (given["price"] & ~np.isfinite(numbers["price"]))
        | (given["revenue"] & ~np.isfinite(numbers["revenue"]))
        | (given["duration_seconds"] & ~np.isfinite(numbers["duration_seconds"]))
        | (
            given["quantity"]
            & ~(
                np.isfinite(numbers["quantity"])
                & (numbers["quantity"] == np.floor(numbers["quantity"]))
            )
        )
    )
    negative_amount = (numbers["price"] < 0) | (numbers["revenue"] < 0) | (numbers["quantity"] < 0)
    properties = events["properties"]
    malformed_properties = properties.notna() & ~(
        properties.str.startswith("{") & properties.str.endswith("}")
    ).fillna(False)

    quarantined = (
        events["event_id"].isna()
        | events["event_type"].isna()
        | events["occurred_at"].isna()
        | (events["user_id"].isna() & events["anonymous_id"].isna())
        | invalid_number
        | negative_amount
        | malformed_properties
        | (events["occurred_at"] > ingested_at + FUTURE_TOLERANCE)
    )
    for name in EVENT_NUMBERS:
        events[name] = numbers[name]
    # Rows are in ingestion order (file, then row): the first copy of an event_id wins.
    return events.loc[~quarantined].drop_duplicates("event_id", keep="first")


def _erased_identities(landing_dir: Path, events: pd.DataFrame) -> pd.Index:
    """The erased user_ids and every anonymous_id ever seen with one of them."""
    requests = _read(landing_dir / "erasure_requests", ["user_id", "requested_at"])
    user_id = _text(requests["user_id"])
    requested_at = _text(requests["requested_at"])
    accepted = user_id.notna() & (requested_at.isna() | _timestamp(requested_at).notna())
    erased_users = pd.Index(user_id[accepted].unique())
    linked_anonymous = events.loc[
        events["user_id"].isin(erased_users) & events["anonymous_id"].notna(), "anonymous_id"
    ]
    return erased_users.union(pd.Index(linked_anonymous.unique()))


def _stitched_events(landing_dir: Path, as_of: pd.Timestamp) -> pd.DataFrame:
    """int_events_stitched: accepted events at or before as_of, erased identities gone,
    each under its known user (its user_id, else the user its anonymous_id was first
    linked to, else the anonymous_id)."""
    ingested_at = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    events = _accepted_events(landing_dir, ingested_at)
    erased = _erased_identities(landing_dir, events)
    events = events[~events["user_id"].isin(erased) & ~events["anonymous_id"].isin(erased)]
    events = events[events["occurred_at"] <= as_of]

    # The earliest row carrying both ids links them (ties: file path, then row).
    links = (
        events.loc[events["user_id"].notna() & events["anonymous_id"].notna()]
        .sort_values(["occurred_at", "source_file", "source_row"], kind="stable")
        .drop_duplicates("anonymous_id", keep="first")
        .set_index("anonymous_id")["user_id"]
    )
    events = events.assign(
        user_id=events["user_id"]
        .fillna(events["anonymous_id"].map(links))
        .fillna(events["anonymous_id"])
    )
    events = events[~events["user_id"].isin(erased)]
    is_purchase = events["event_type"] == "purchase"
    return events.assign(
        order_key=events["order_id"].fillna(events["event_id"]),
        purchase_amount=(
            events["revenue"]
            .fillna(events["price"] * events["quantity"].fillna(1))
            .fillna(0.0)
            .where(is_purchase)
        ),
        is_cart_event=events["event_type"].isin(CART_TYPES),
        is_purchase=is_purchase,
    )


def _cart_abandonments(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """int_cart_episodes and marts.cart_abandonments."""
    # Cart events and purchases per user in time order; at one instant cart events come
    # first (add and buy in the same second is a converted cart), then by event_id.
    sequence = (
        events.loc[
            events["is_cart_event"] | events["is_purchase"],
            ["user_id", "event_id", "event_type", "occurred_at", "price", "quantity"],
        ]
        .assign(kind=lambda f: (f["event_type"] == "purchase").astype("int8"))
        .sort_values(["user_id", "occurred_at", "kind", "event_id"])
    )
    per_user = sequence.groupby("user_id", sort=False)
    previous_at = per_user["occurred_at"].shift(1)
    previous_kind = per_user["kind"].shift(1)
    next_at = per_user["occurred_at"].shift(-1)
    next_kind = per_user["kind"].shift(-1)
    sequence = sequence.assign(
        # An episode opens at a cart event with nothing open: the user's first, one after a
        # purchase, or one more than W after the previous cart event.
        opens_episode=(
            previous_at.isna()
            | (previous_kind == 1)
            | (sequence["occurred_at"] > previous_at + ABANDONMENT_WINDOW)
        ),
        # A purchase within W of the episode's last cart event converts it.
        converts=((next_kind == 1) & (next_at <= sequence["occurred_at"] + ABANDONMENT_WINDOW)),
    )
    cart = sequence[sequence["kind"] == 0]
    cart = cart.assign(
        episode=cart.groupby("user_id", sort=False)["opens_episode"].cumsum(),
        value=(cart["price"] * cart["quantity"].fillna(1)).where(
            cart["event_type"] == "add_to_cart"
        ),
    )
    episodes = cart.groupby(["user_id", "episode"], sort=False).agg(
        cart_started_at=("occurred_at", "min"),
        last_cart_event_at=("occurred_at", "max"),
        cart_events=("occurred_at", "size"),
        cart_value=("value", "sum"),
        is_converted=("converts", "any"),
    )
    episodes["abandoned_at"] = episodes["last_cart_event_at"] + ABANDONMENT_WINDOW
    abandoned = episodes[~episodes["is_converted"] & (episodes["abandoned_at"] <= as_of)]
    abandoned = abandoned.reset_index().sort_values("abandoned_at")

    # The first purchase after abandoned_at and within the recovery window recovers it.
    purchases = (
        events.loc[events["is_purchase"], ["user_id", "occurred_at"]]
        .rename(columns={"occurred_at": "recovered_at"})
        .sort_values("recovered_at")
    )
    recovered = pd.merge_asof(
        abandoned,
        purchases,
        left_on="abandoned_at",
        right_on="recovered_at",
        by="user_id",
        direction="forward",
        allow_exact_matches=False,
        tolerance=RECOVERY_WINDOW,
    )
    return recovered[CART_ABANDONMENTS_COLUMNS].astype(
        {"cart_events": "int64", "cart_value": "float64"}
    )


def _sessions_24h(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Distinct sessions with an event in the last 24 hours: session_ids, and sessions of
    the session-less events split by gaps of more than the session gap."""
    recent = events["occurred_at"] > as_of - SHORT_WINDOW
    with_id = events.loc[recent & events["session_id"].notna()]
    by_id = with_id.groupby("user_id")["session_id"].nunique()

    sessionless = events.loc[events["session_id"].isna(), ["user_id", "occurred_at"]]
    sessionless = sessionless.sort_values(["user_id", "occurred_at"])
    previous_at = sessionless.groupby("user_id", sort=False)["occurred_at"].shift(1)
    starts = previous_at.isna() | (sessionless["occurred_at"] > previous_at + SESSION_GAP)
    sessionless = sessionless.assign(
        session_number=starts.groupby(sessionless["user_id"], sort=False).cumsum()
    )
    by_gap = (
        sessionless[sessionless["occurred_at"] > as_of - SHORT_WINDOW]
        .groupby("user_id")["session_number"]
        .nunique()
    )
    return by_id.add(by_gap, fill_value=0)


def _user_metrics(
    events: pd.DataFrame, abandonments: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """marts.user_metrics: one row per user with an event at or before as_of."""
    occurred_at = events["occurred_at"]
    in_24h = occurred_at > as_of - SHORT_WINDOW
    in_7d = occurred_at > as_of - WEEK_WINDOW
    in_30d = occurred_at > as_of - MONTH_WINDOW
    product_view = events["event_type"] == "product_view"
    flags = pd.DataFrame(
        {
            "user_id": events["user_id"],
            "occurred_at": occurred_at,
            "product_views_24h": product_view & in_24h,
            "product_views_7d": product_view & in_7d,
            "add_to_cart_7d": (events["event_type"] == "add_to_cart") & in_7d,
        }
    )
    metrics = flags.groupby("user_id").agg(
        first_seen_at=("occurred_at", "min"),
        last_event_at=("occurred_at", "max"),
        product_views_24h=("product_views_24h", "sum"),
        product_views_7d=("product_views_7d", "sum"),
        add_to_cart_7d=("add_to_cart_7d", "sum"),
    )
    metrics["days_since_last_event"] = (as_of - metrics["last_event_at"]) // pd.Timedelta(days=1)

    recent_abandonments = abandonments[abandonments["abandoned_at"] > as_of - WEEK_WINDOW]
    metrics["cart_abandonments_7d"] = recent_abandonments.groupby("user_id").size()

    purchases = events[events["is_purchase"] & in_30d].groupby("user_id")
    metrics["purchases_30d"] = purchases["order_key"].nunique()
    metrics["revenue_30d"] = purchases["purchase_amount"].sum()
    metrics["sessions_24h"] = _sessions_24h(events, as_of)

    counts = ["product_views_24h", "product_views_7d", "add_to_cart_7d"]
    counts += ["cart_abandonments_7d", "purchases_30d", "sessions_24h"]
    metrics = metrics.fillna({name: 0 for name in [*counts, "revenue_30d"]})
    metrics = metrics.astype({**dict.fromkeys(counts, "int64"), "days_since_last_event": "int32"})
    return metrics.reset_index()[USER_METRICS_COLUMNS]


def compute(landing_dir: Path, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user_metrics, cart_abandonments) as of `as_of` (naive UTC)."""
    as_of = pd.Timestamp(as_of)
    events = _stitched_events(Path(landing_dir), as_of)
    abandonments = _cart_abandonments(events, as_of)
    return _user_metrics(events, abandonments, as_of), abandonments


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pandas_peer",
        description="Compute marts.user_metrics and marts.cart_abandonments with pandas.",
    )
    parser.add_argument("landing", type=Path, help="the landing zone (events/, erasure_requests/)")
    parser.add_argument("as_of", help="ISO 8601 instant, e.g. 2026-01-31T00:00:00Z")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    user_metrics, cart_abandonments = compute(args.landing, parse_as_of(args.as_of))
    elapsed = time.perf_counter() - started
    print(f"user_metrics: {len(user_metrics):,} rows")
    print(f"cart_abandonments: {len(cart_abandonments):,} rows")
    print(f"elapsed: {elapsed:.2f} s")


if __name__ == "__main__":
    main()
