"""The benchmark's pandas peer (bench/pandas_peer.py) computes marts.user_metrics and
marts.cart_abandonments row for row as the pipeline does: on a generated landing (late
events, re-sent duplicates, anonymous visitors who log in later, erasure requests) plus
the hand-made edge cases of test_marts and a few rows ingestion must quarantine or drop."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from bench.pandas_peer import compute
from orchestration.generator import GeneratorConfig, generate
from orchestration.pipeline import run_pipeline
from orchestration.settings import Settings
from tests.conftest import EVENT_COLUMNS, at, event, write_rows
from tests.test_marts import scenario_events

# The generated days end where the hand-made scenario's as_of is.
AS_OF = datetime(2026, 3, 1)
H = timedelta(hours=1)
D = timedelta(days=1)


def ingestion_edge_events() -> tuple[list[dict], list[dict]]:
    """Rows of an early file and a later one: quarantined rows, and duplicates of which
    only the first accepted copy counts."""
    early = [
        # Quarantined: negative amount, no identity, bad timestamp, far future, bad JSON.
        event("q-neg", "add_to_cart", at(-2 * D), user_id="q1", price=-5),
        event("q-anon", "product_view", at(-2 * D)),
        event("q-time", "product_view", "yesterday", user_id="q1"),
        event("q-future", "product_view", "2099-01-01T00:00:00Z", user_id="q1"),
        event("q-json", "product_view", at(-2 * D), user_id="q1", properties='{"broken": '),
        # A quarantined row does not win the event_id: the later valid copy does.
        event("dup-1", "purchase", at(-D), user_id="d1", revenue=-1),
        # Text cells are trimmed; blank means missing.
        event(" pad-1 ", "page_view", at(-H), user_id=" t1 ", anonymous_id=" "),
    ]
    later = [
        event("dup-1", "purchase", at(-D), user_id="d1", revenue=12.5),
        # Re-sent with other content: the first copy (w1's product view at as_of) wins.
        event("e0003", "purchase", at(-H), user_id="d1", revenue=999),
    ]
    return early, later


def read_mart(warehouse: Path, table: str) -> pd.DataFrame:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute(f"select * from marts.{table}").df()
    finally:
        conn.close()


def assert_same_rows(peer: pd.DataFrame, mart: pd.DataFrame, keys: list[str]) -> None:
    assert list(peer.columns) == list(mart.columns)
    assert len(peer) == len(mart)
    peer = peer.sort_values(keys).reset_index(drop=True)
    mart = mart.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        peer.astype({"user_id": object}),
        mart.astype({"user_id": object}),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )


def test_pandas_peer_computes_the_same_marts_as_the_pipeline(tmp_path):
    landing = tmp_path / "landing"
    generate(GeneratorConfig(out=landing, users=300, days=14, seed=5, start=date(2026, 2, 15)))
    early, later = ingestion_edge_events()
    write_rows(landing / "events" / "zz-scenario.parquet", scenario_events() + early, EVENT_COLUMNS)
    write_rows(landing / "events" / "zzz-resent.parquet", later, EVENT_COLUMNS)
    write_rows(
        landing / "erasure_requests" / "zz-requests.parquet",
        [{"user_id": "gone", "requested_at": at(-D)}],
    )
    warehouse = tmp_path / "warehouse.duckdb"
    run_pipeline(
        Settings(
            landing_dir=landing,
            warehouse=warehouse,
            exports_dir=tmp_path / "exports",
            as_of=AS_OF,
        )
    )

    user_metrics, cart_abandonments = compute(landing, AS_OF)

    assert {"w1", "c1", "i1", "t1", "d1"} <= set(user_metrics["user_id"])
    assert not {"q1", "gone", "anon-gone"} & set(user_metrics["user_id"])
    assert_same_rows(user_metrics, read_mart(warehouse, "user_metrics"), ["user_id"])
    assert_same_rows(
        cart_abandonments,
        read_mart(warehouse, "cart_abandonments"),
        ["user_id", "cart_started_at"],
    )
