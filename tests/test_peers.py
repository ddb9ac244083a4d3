"""The benchmark's comparisons compute what the pipeline computes, row for row: the floor
(bench/floor.py) the four core marts exactly, types included; the pandas and Polars peers
(bench/pandas_peer.py, bench/polars_peer.py) user_metrics and cart_abandonments. All on one
landing: generated days (late events, re-sent duplicates, anonymous visitors who log in
later, erasure requests, 2% bad rows) plus the hand-made edge cases of test_marts and a
few rows ingestion must quarantine or drop."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from bench import pandas_peer, polars_peer
from bench.floor import MARTS, run_floor
from orchestration.core.settings import Settings
from orchestration.demo.generator import GeneratorConfig, generate
from orchestration.pipeline import run_pipeline
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


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(landing, warehouse): the landing, and the pipeline's warehouse as of AS_OF."""
    base = tmp_path_factory.mktemp("peers")
    landing = base / "landing"
    generate(
        GeneratorConfig(
            out=landing, users=300, days=14, seed=5, start=date(2026, 2, 15), bad_rate=0.02
        )
    )
    early, later = ingestion_edge_events()
    write_rows(landing / "events" / "zz-scenario.parquet", scenario_events() + early, EVENT_COLUMNS)
    write_rows(landing / "events" / "zzz-resent.parquet", later, EVENT_COLUMNS)
    write_rows(
        landing / "erasure_requests" / "zz-requests.parquet",
        [{"user_id": "gone", "requested_at": at(-D)}],
    )
    warehouse = base / "warehouse.duckdb"
    run_pipeline(
        Settings(
            landing_dir=landing,
            warehouse=warehouse,
            exports_dir=base / "exports",
            as_of=AS_OF,
        )
    )
    return landing, warehouse


def assert_edge_cases_kept(user_metrics: pd.DataFrame) -> None:
    assert {"w1", "c1", "i1", "t1", "d1"} <= set(user_metrics["user_id"])
    assert not {"q1", "gone", "anon-gone"} & set(user_metrics["user_id"])


@pytest.mark.parametrize("peer", [pandas_peer, polars_peer], ids=["pandas", "polars"])
def test_a_peer_computes_the_same_marts_as_the_pipeline(built, peer):
    landing, warehouse = built
    user_metrics, cart_abandonments = peer.compute(landing, AS_OF)
    if not isinstance(user_metrics, pd.DataFrame):
        user_metrics, cart_abandonments = user_metrics.to_pandas(), cart_abandonments.to_pandas()

    assert_edge_cases_kept(user_metrics)
    assert_same_rows(user_metrics, read_mart(warehouse, "user_metrics"), ["user_id"])
    assert_same_rows(
        cart_abandonments,
        read_mart(warehouse, "cart_abandonments"),
        ["user_id", "cart_started_at"],
    )


def test_the_floor_builds_the_four_core_marts_exactly_as_the_pipeline(built, tmp_path):
    landing, warehouse = built
    floor = tmp_path / "floor.duckdb"
    run_floor(landing, floor, AS_OF)

    conn = duckdb.connect(str(floor))
    conn.execute(f"attach '{warehouse}' as pipeline (read_only)")
    try:
        assert_edge_cases_kept(conn.execute("select user_id from user_metrics").df())
        for mart in MARTS:
            assert (
                conn.execute(f"describe {mart}").fetchall()
                == conn.execute(f"describe pipeline.marts.{mart}").fetchall()
            ), mart
            rows = conn.execute(f"select count(*) from {mart}").fetchone()[0]
            assert rows > 0, mart
            theirs = f"pipeline.marts.{mart}"
            for first, second in ((mart, theirs), (theirs, mart)):
                (extra,) = conn.execute(
                    f"select count(*) from (from {first} except all from {second})"
                ).fetchone()
                assert extra == 0, f"{mart}: {extra} of {rows} rows only in {first}"
    finally:
        conn.close()
