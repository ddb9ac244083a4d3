"""The synthetic landing zone: deterministic, realistic, and bad where asked."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.core.warehouse import connect
from orchestration.demo.generator import BAD_KINDS, GeneratorConfig, generate
from orchestration.ingest.batch_load import ingest


def digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("file_format", ["parquet", "csv", "jsonl"])
def test_same_seed_gives_the_same_bytes(tmp_path, file_format):
    config = dict(users=200, days=5, seed=3, file_format=file_format, bad_rate=0.01)
    generate(GeneratorConfig(out=tmp_path / "a", **config))
    generate(GeneratorConfig(out=tmp_path / "b", **config))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert len(digest(tmp_path / "a")) == 7  # five days of events, customers, erasures


def test_another_seed_gives_other_data(tmp_path):
    generate(GeneratorConfig(out=tmp_path / "a", users=200, days=3, seed=1))
    generate(GeneratorConfig(out=tmp_path / "b", users=200, days=3, seed=2))
    assert digest(tmp_path / "a") != digest(tmp_path / "b")


def test_every_bad_row_is_quarantined_with_one_of_the_typed_reasons(tmp_path):
    report = generate(
        GeneratorConfig(out=tmp_path / "landing", users=300, days=4, seed=5, bad_rate=0.05)
    )
    conn = connect(tmp_path / "w.duckdb")
    result = ingest(conn, tmp_path / "landing", datetime(2026, 1, 10))
    reasons = dict(
        conn.execute("select reason, count(*) from audit.quarantined_events group by 1").fetchall()
    )
    assert set(reasons) == set(BAD_KINDS)
    assert result.rows_quarantined == report.bad_rows > 0
    assert result.rows_landed == report.events_written + report.customers + report.erasure_requests


@pytest.fixture(scope="module")
def demo_events(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    out = tmp_path_factory.mktemp("demo")
    generate(GeneratorConfig(out=out, users=2000, days=30, seed=11, start=date(2026, 1, 1)))
    conn = duckdb.connect()
    files = f"{out}/events/*.parquet"
    conn.execute(f"create view e as select * from read_parquet('{files}', filename = true)")
    return conn


def share(conn, sql: str) -> float:
    return conn.execute(sql).fetchone()[0]


def test_funnel_rates_are_realistic(demo_events):
    views_per_cart = share(
        demo_events,
        "select count(*) filter (where event_type = "
        "'product_view') / count(*) filter (where event_type = 'add_to_cart')"
        " from e",
    )
    carts_per_purchase = share(
        demo_events,
        "select count(*) filter (where event_type = "
        "'add_to_cart') / count(*) filter (where event_type = 'purchase')"
        " from e",
    )
    assert 8 <= views_per_cart <= 25
    assert 1.5 <= carts_per_purchase <= 4


def test_anonymous_visitors_later_log_in(demo_events):
    linked = share(
        demo_events,
        "select count(distinct anonymous_id) from e where event_type = "
        "'login' and anonymous_id in (select anonymous_id from e where user_id is null)",
    )
    assert linked > 100


def test_late_and_duplicate_deliveries_exist(demo_events):
    duplicates = share(demo_events, "select count(*) - count(distinct event_id) from e")
    late = share(
        demo_events,
        "select count(*) from e where cast(occurred_at as date) < "
        "cast(regexp_extract(filename, 'events-(.*)\\.parquet', 1) as date)",
    )
    assert duplicates > 0
    assert late > 0
