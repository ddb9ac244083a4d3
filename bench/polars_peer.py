"""The Polars peer: marts.user_metrics and marts.cart_abandonments the way an analyst
would write them with Polars' lazy API, straight from the landing zone's Parquet files.

The same rules as the pandas peer (bench/pandas_peer.py), which names where each comes
from in the pipeline: ingestion's (trimmed text, required fields, readable timestamps,
no negative or non-finite amounts, properties that look like one JSON object, nothing
more than a day in the future, the first copy of an event_id), erasure, identity
stitching as of as_of, cart episodes and the windowed counts. Windows come from the vars
of dbt_project.yml. It reads everything as one ingestion batch, as a first run does.

    python -m bench.polars_peer LANDING AS_OF
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import yaml

from bench.pandas_peer import CART_ABANDONMENTS_COLUMNS, USER_METRICS_COLUMNS
from orchestration.core.settings import DBT_PROJECT_DIR, parse_as_of

_VARS = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
ABANDONMENT_WINDOW = timedelta(hours=_VARS["segments__abandonment_window_hours"])
RECOVERY_WINDOW = timedelta(days=_VARS["segments__recovery_window_days"])
SESSION_GAP = timedelta(minutes=_VARS["segments__session_gap_minutes"])
# user_metrics' windows are in its column names (product_views_24h, ..._7d, ..._30d).
SHORT_WINDOW = timedelta(hours=24)
WEEK_WINDOW = timedelta(days=7)
MONTH_WINDOW = timedelta(days=30)
FUTURE_TOLERANCE = timedelta(days=1)

TEXT = ["event_id", "event_type", "occurred_at", "user_id", "anonymous_id", "session_id"]
TEXT += ["order_id", "properties"]
NUMBERS = ["price", "revenue", "quantity", "duration_seconds"]
CART_TYPES = ["add_to_cart", "checkout_started"]


def _files(folder: Path) -> list[str]:
    """Parquet files in ingestion's order (by path), hidden ones skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        str(path)
        for path in folder.rglob("*.parquet")
        if not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _scan(files: list[str], columns: list[str]) -> pl.LazyFrame:
    """The files one after the other, every column as text (files may write a number as
    text), a column a file lacks as nulls."""
    frames = []
    for path in files:
        frame = pl.scan_parquet(path)
        present = frame.collect_schema().names()
        frames.append(
            frame.select(
                (pl.col(name) if name in present else pl.lit(None)).cast(pl.Utf8).alias(name)
                for name in columns
            )
        )
    return pl.concat(frames)


def _text(name: str) -> pl.Expr:
    value = pl.col(name).cast(pl.Utf8).str.strip_chars(" ")
    return pl.when(value == "").then(None).otherwise(value).alias(name)


def _timestamp(name: str) -> pl.Expr:
    """ISO 8601 text as naive UTC (no offset means UTC); null when unreadable."""
    text = pl.col(name)
    with_offset = text.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC"
    ).dt.replace_time_zone(None)
    naive = [
        text.str.to_datetime(form, strict=False, time_unit="us")
        for form in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d")
    ]
    return pl.coalesce(with_offset, *naive).alias(name)


def accepted_events(landing: Path, ingested_at: datetime) -> pl.LazyFrame:
    """raw.events: the rows that pass every ingestion rule, the first of each event_id."""
    files = _files(landing / "events")
    events = (
        _scan(files, TEXT + NUMBERS)
        .with_row_index("landed_order")
        .with_columns(_text(name) for name in TEXT + NUMBERS)
        .with_columns(pl.col(name).is_not_null().alias(f"{name}_given") for name in NUMBERS)
        .with_columns(pl.col(name).cast(pl.Float64, strict=False) for name in NUMBERS)
        .with_columns(_timestamp("occurred_at"))
    )
    # A number given must read as a finite one.
    finite = {
        name: ~pl.col(f"{name}_given") | pl.col(name).is_finite().fill_null(False)
        for name in NUMBERS
    }
    valid = (
        pl.col("event_id").is_not_null()
        & pl.col("event_type").is_not_null()
        & pl.col("occurred_at").is_not_null()
        & (pl.col("user_id").is_not_null() | pl.col("anonymous_id").is_not_null())
        & finite["price"]
        & finite["revenue"]
        & finite["duration_seconds"]
        & (finite["quantity"] & (pl.col("quantity").is_null() | (pl.col("quantity") % 1 == 0)))
        & ~((pl.col("price") < 0) | (pl.col("revenue") < 0) | (pl.col("quantity") < 0)).fill_null(
            False
        )
        & (
            pl.col("properties").is_null()
            | (pl.col("properties").str.starts_with("{") & pl.col("properties").str.ends_with("}"))
        )
        & (pl.col("occurred_at") <= ingested_at + FUTURE_TOLERANCE)
    )
    return events.filter(valid).unique("event_id", keep="first", maintain_order=True)


def erased_identities(landing: Path, events: pl.LazyFrame) -> pl.LazyFrame:
    """The erased user_ids and every anonymous_id seen with one of them."""
    files = _files(landing / "erasure_requests")
    if not files:
        return pl.LazyFrame({"identity": []}, schema={"identity": pl.Utf8})
    requests = (
        _scan(files, ["user_id", "requested_at"])
        .with_columns(_text("user_id"), _text("requested_at"))
        .with_columns(_timestamp("requested_at").alias("requested_instant"))
        .filter(
            pl.col("user_id").is_not_null()
            & (pl.col("requested_instant").is_not_null() | pl.col("requested_at").is_null())
        )
        .select(identity="user_id")
        .unique()
    )
    linked = events.join(requests, left_on="user_id", right_on="identity", how="semi").select(
        identity="anonymous_id"
    )
    return pl.concat([requests, linked.drop_nulls()]).unique()


def stitched_events(landing: Path, as_of: datetime) -> pl.DataFrame:
    """Accepted events at or before as_of, erased identities gone, each under its known
    user: its user_id, else the user its anonymous_id was first linked to, else the
    anonymous_id."""
    events = accepted_events(landing, datetime.now(UTC).replace(tzinfo=None))
    erased = erased_identities(landing, events)
    events = (
        events.join(erased, left_on="user_id", right_on="identity", how="anti")
        .join(erased, left_on="anonymous_id", right_on="identity", how="anti")
        .filter(pl.col("occurred_at") <= as_of)
    )
    links = (
        events.filter(pl.col("user_id").is_not_null() & pl.col("anonymous_id").is_not_null())
        .sort("occurred_at", "landed_order")
        .group_by("anonymous_id")
        .agg(linked_user=pl.col("user_id").first())
    )
    return (
        events.join(links, on="anonymous_id", how="left")
        .with_columns(
            user_id=pl.coalesce("user_id", "linked_user", "anonymous_id"),
            order_key=pl.coalesce("order_id", "event_id"),
            is_purchase=pl.col("event_type") == "purchase",
        )
        .with_columns(
            purchase_amount=pl.when(pl.col("is_purchase")).then(
                pl.coalesce(
                    "revenue", pl.col("price") * pl.col("quantity").fill_null(1), pl.lit(0.0)
                )
            )
        )
        .select(
            "user_id",
            "event_id",
            "event_type",
            "occurred_at",
            "session_id",
            "price",
            "quantity",
            "order_key",
            "is_purchase",
            "purchase_amount",
        )
        .collect()
    )


def cart_abandonments(events: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """int_cart_episodes and marts.cart_abandonments: at one instant cart events come
    before purchases (add and buy in the same second is a converted cart)."""
    sequence = (
        events.lazy()
        .filter(pl.col("event_type").is_in(CART_TYPES) | pl.col("is_purchase"))
        .sort("user_id", "occurred_at", "is_purchase", "event_id")
        .with_columns(
            previous_at=pl.col("occurred_at").shift(1).over("user_id"),
            previous_is_purchase=pl.col("is_purchase").shift(1).over("user_id"),
            next_at=pl.col("occurred_at").shift(-1).over("user_id"),
            next_is_purchase=pl.col("is_purchase").shift(-1).over("user_id"),
        )
        .filter(~pl.col("is_purchase"))
        .with_columns(
            opens=(
                pl.col("previous_at").is_null()
                | pl.col("previous_is_purchase")
                | (pl.col("occurred_at") > pl.col("previous_at") + ABANDONMENT_WINDOW)
            ),
            converts=(
                pl.col("next_is_purchase")
                & (pl.col("next_at") <= pl.col("occurred_at") + ABANDONMENT_WINDOW)
            ).fill_null(False),
        )
        .with_columns(episode=pl.col("opens").cast(pl.Int64).cum_sum().over("user_id"))
    )
    abandoned = (
        sequence.group_by("user_id", "episode")
        .agg(
            cart_started_at=pl.col("occurred_at").min(),
            last_cart_event_at=pl.col("occurred_at").max(),
            cart_events=pl.len().cast(pl.Int64),
            cart_value=(pl.col("price") * pl.col("quantity").fill_null(1))
            .filter(pl.col("event_type") == "add_to_cart")
            .sum(),
            is_converted=pl.col("converts").any(),
        )
        .with_columns(abandoned_at=pl.col("last_cart_event_at") + ABANDONMENT_WINDOW)
        .filter(~pl.col("is_converted") & (pl.col("abandoned_at") <= as_of))
        .sort("abandoned_at")
        .collect()
    )
    purchases = (
        events.filter(pl.col("is_purchase"))
        .select("user_id", recovered_at="occurred_at")
        .sort("recovered_at")
    )
    # The first purchase after abandoned_at, within the recovery window, recovers it.
    recovered = abandoned.join_asof(
        purchases,
        left_on="abandoned_at",
        right_on="recovered_at",
        by="user_id",
        strategy="forward",
        allow_exact_matches=False,
        tolerance=RECOVERY_WINDOW,
        check_sortedness=False,  # sorted on the time columns above, over all users
    )
    return recovered.select(CART_ABANDONMENTS_COLUMNS)


def user_metrics(events: pl.DataFrame, abandonments: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """marts.user_metrics: one row per user with an event at or before as_of."""
    at = pl.col("occurred_at")
    in_24h, in_7d, in_30d = (
        (at > as_of - SHORT_WINDOW),
        (at > as_of - WEEK_WINDOW),
        (at > as_of - MONTH_WINDOW),
    )
    product_view = pl.col("event_type") == "product_view"
    purchase_30d = pl.col("is_purchase") & in_30d
    metrics = (
        events.lazy()
        .group_by("user_id")
        .agg(
            first_seen_at=at.min(),
            last_event_at=at.max(),
            product_views_24h=(product_view & in_24h).sum().cast(pl.Int64),
            product_views_7d=(product_view & in_7d).sum().cast(pl.Int64),
            add_to_cart_7d=((pl.col("event_type") == "add_to_cart") & in_7d).sum().cast(pl.Int64),
            purchases_30d=pl.col("order_key").filter(purchase_30d).n_unique().cast(pl.Int64),
            revenue_30d=pl.col("purchase_amount").filter(purchase_30d).sum(),
        )
    )
    recent_abandonments = (
        abandonments.lazy()
        .filter(pl.col("abandoned_at") > as_of - WEEK_WINDOW)
        .group_by("user_id")
        .agg(cart_abandonments_7d=pl.len().cast(pl.Int64))
    )
    # Sessions of the last 24 hours: distinct session_ids, and the session-less events
    # split where more than the session gap passes between two of them.
    by_id = (
        events.lazy()
        .filter(pl.col("session_id").is_not_null() & in_24h)
        .group_by("user_id")
        .agg(sessions=pl.col("session_id").n_unique())
    )
    by_gap = (
        events.lazy()
        .filter(pl.col("session_id").is_null())
        .select("user_id", "occurred_at")
        .sort("user_id", "occurred_at")
        .with_columns(previous_at=at.shift(1).over("user_id"))
        .with_columns(
            session_number=(
                pl.col("previous_at").is_null() | (at > pl.col("previous_at") + SESSION_GAP)
            )
            .cast(pl.Int64)
            .cum_sum()
            .over("user_id")
        )
        .filter(in_24h)
        .group_by("user_id")
        .agg(sessions=pl.col("session_number").n_unique())
    )
    sessions = (
        pl.concat([by_id, by_gap])
        .group_by("user_id")
        .agg(sessions_24h=pl.col("sessions").sum().cast(pl.Int64))
    )
    return (
        metrics.join(recent_abandonments, on="user_id", how="left")
        .join(sessions, on="user_id", how="left")
        .with_columns(
            days_since_last_event=(
                (pl.lit(as_of) - pl.col("last_event_at")).dt.total_microseconds() // 86_400_000_000
            ).cast(pl.Int32),
            cart_abandonments_7d=pl.col("cart_abandonments_7d").fill_null(0),
            sessions_24h=pl.col("sessions_24h").fill_null(0),
        )
        .select(USER_METRICS_COLUMNS)
        .collect()
    )


def compute(landing: Path, as_of: datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(user_metrics, cart_abandonments) as of `as_of` (naive UTC)."""
    events = stitched_events(Path(landing), as_of)
    abandonments = cart_abandonments(events, as_of)
    return user_metrics(events, abandonments, as_of), abandonments


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.polars_peer",
        description="Compute marts.user_metrics and marts.cart_abandonments with Polars.",
    )
    parser.add_argument("landing", type=Path, help="the landing zone (events/, erasure_requests/)")
    parser.add_argument("as_of", help="ISO 8601 instant, e.g. 2026-01-31T00:00:00Z")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    metrics, abandonments = compute(args.landing, parse_as_of(args.as_of))
    elapsed = time.perf_counter() - started
    print(f"user_metrics: {len(metrics):,} rows")
    print(f"cart_abandonments: {len(abandonments):,} rows")
    print(f"elapsed: {elapsed:.2f} s")


if __name__ == "__main__":
    main()
