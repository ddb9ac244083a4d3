"""An incremental run gives exactly the tables of a full refresh: two batches, the second
with late events, duplicates, a late identity link and a late cart event."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb

from orchestration.core.settings import Settings
from orchestration.demo.generator import GeneratorConfig, generate
from orchestration.pipeline import run_pipeline
from tests.conftest import event, write_events

COMPARED = (
    "marts.user_metrics",
    "marts.cart_abandonments",
    "marts.customer_rfm",
    "marts.cohort_retention",
    "intermediate.int_events_enriched",
)
FIRST_AS_OF = datetime(2026, 1, 9)
FINAL_AS_OF = datetime(2026, 1, 13)
# With no lookback the second run reads only what the second batch ingested.
NO_LOOKBACK = {"segments__incremental_lookback_hours": 0}


def late_batch() -> list[dict]:
    return [
        # Occurred on day 2, arrives with the last batch.
        event("late-1", "product_view", "2026-01-02T10:00:00Z", user_id="u0000001"),
        # A cart event and purchase for a user long ago: reshapes that user's episodes.
        event("late-2", "add_to_cart", "2026-01-03T08:00:00Z", user_id="u0000002", price=9),
        event("late-3", "purchase", "2026-01-05T08:00:00Z", user_id="u0000002", revenue=9),
        # A late login links an anonymous visitor's old events to a user.
        event(
            "late-4", "login", "2026-01-04T09:00:00Z", user_id="late-user", anonymous_id="anon-late"
        ),
        # A duplicate of an event of the first batch, with other content: it must lose.
        event("ev-7-0000-00000000", "purchase", "2026-01-01T00:00:00Z", user_id="x", revenue=999),
    ]


def build_landing(root: Path) -> tuple[Path, Path]:
    everything = root / "generated"
    generate(GeneratorConfig(out=everything, users=300, days=12, seed=7, start=date(2026, 1, 1)))
    first, second = root / "first", root / "second"
    for landing in (first, second):
        (landing / "events").mkdir(parents=True)
    for path in sorted((everything / "events").iterdir()):
        target = first if path.name < "events-2026-01-09" else second
        shutil.copy(path, target / "events" / path.name)
    shutil.copytree(everything / "customers", first / "customers")
    write_events(
        first,
        "events-2026-01-02-visitor.csv",
        [
            event("visit-1", "product_view", "2026-01-02T09:00:00Z", anonymous_id="anon-late"),
            event(
                "visit-2", "add_to_cart", "2026-01-02T09:05:00Z", anonymous_id="anon-late", price=4
            ),
        ],
    )
    write_events(second, "events-2026-01-12-zz-late.csv", late_batch())
    return first, second


def settings(landing: Path, warehouse: Path, as_of: datetime, **options) -> Settings:
    return Settings(
        landing_dir=landing,
        warehouse=warehouse,
        exports_dir=warehouse.parent,
        as_of=as_of,
        dbt_vars=NO_LOOKBACK,
        **options,
    )


def differences(left: Path, right: Path, table: str) -> int:
    conn = duckdb.connect()
    conn.execute(f"attach '{left}' as l (read_only); attach '{right}' as r (read_only)")
    drop = (
        "exclude (ingested_at, ingestion_batch_id, source_file, source_row)"
        if table.startswith("intermediate")
        else ""
    )
    count = conn.execute(
        f"select count(*) from ((select * {drop} from l.{table} except all "
        f"select * {drop} from r.{table}) union all (select * {drop} from r.{table} "
        f"except all select * {drop} from l.{table}))"
    ).fetchone()[0]
    conn.close()
    return count


def test_incremental_runs_equal_a_full_refresh(tmp_path):
    first, second = build_landing(tmp_path)
    incremental = tmp_path / "incremental.duckdb"
    landing = tmp_path / "landing"
    shutil.copytree(first, landing)
    run_pipeline(settings(landing, incremental, FIRST_AS_OF))
    shutil.copytree(second, landing, dirs_exist_ok=True)
    run_pipeline(settings(landing, incremental, FINAL_AS_OF))

    full = tmp_path / "full.duckdb"
    run_pipeline(settings(landing, full, FINAL_AS_OF, full_refresh=True))

    conn = duckdb.connect(str(incremental), read_only=True)
    batches = conn.execute(
        "select count(distinct ingestion_batch_id) from intermediate.int_events_enriched"
    ).fetchone()[0]
    stitched_late = conn.execute(
        "select count(*) from intermediate.int_events_stitched "
        "where user_id = 'late-user' and anonymous_id = 'anon-late'"
    ).fetchone()[0]
    loser = conn.execute(
        "select count(*) from intermediate.int_events_enriched where revenue = 999"
    ).fetchone()[0]
    conn.close()
    assert batches == 2
    assert stitched_late == 3  # the login and the visitor's two earlier events
    assert loser == 0
    assert {table: differences(incremental, full, table) for table in COMPARED} == {
        table: 0 for table in COMPARED
    }


PAST_COMPARED = (
    "marts.user_metrics",
    "marts.cart_abandonments",
    "marts.customer_rfm",
    "marts.cohort_retention",
    "marts.segment_memberships",
    "marts.audience_members",
)


def test_a_run_as_of_a_past_instant_gives_the_answer_true_then(tmp_path):
    first, second = build_landing(tmp_path)
    landing = tmp_path / "landing"
    shutil.copytree(first, landing)
    shutil.copytree(second, landing, dirs_exist_ok=True)
    warehouse = tmp_path / "warehouse.duckdb"
    run_pipeline(settings(landing, warehouse, FINAL_AS_OF))
    run_pipeline(settings(landing, warehouse, FIRST_AS_OF))  # back in time: a backfill

    fresh = tmp_path / "fresh" / "warehouse.duckdb"
    fresh.parent.mkdir()
    run_pipeline(settings(landing, fresh, FIRST_AS_OF))
    assert {table: differences(warehouse, fresh, table) for table in PAST_COMPARED} == {
        table: 0 for table in PAST_COMPARED
    }
    history = (
        duckdb.connect(str(warehouse), read_only=True)
        .execute("select max(valid_from) from marts.segment_membership_history")
        .fetchone()[0]
    )
    assert history == FINAL_AS_OF  # the backfill did not rewrite history
    latest = (tmp_path / "latest.json").read_text()
    assert '"export_id": "20260113T0000Z"' in latest  # nor move `latest` back
