"""Operating the pipeline with Dagster: definitions, partitions and backfills, schedules,
the landing sensor, and two runs at once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.assets.dbt import event_models
from orchestration.core.locking import WarehouseLockedError, lock_path, warehouse_lock
from orchestration.core.settings import PROJECT_ROOT, Settings
from orchestration.definitions import build_definitions
from orchestration.demo.generator import GeneratorConfig, generate
from orchestration.pipeline import run_pipeline
from orchestration.resources import (
    AS_OF_TAG,
    REFIT_CLUSTERS_TAG,
    PipelineSettings,
    build_resources,
    run_settings,
)
from orchestration.schedules import daily_audiences, hourly_refresh, weekly_cluster_refit
from orchestration.sensors import new_landing_files
from tests.conftest import event, write_events
from tests.test_incremental import differences

AS_OF = datetime(2026, 1, 5)


def test_definitions_load_and_validate():
    defs = build_definitions(Settings())
    dg.Definitions.validate_loadable(defs)
    assert {job.name for job in defs.resolve_all_job_defs()} >= {
        "segments_pipeline",
        "segments_refresh",
    }
    assert {s.name for s in defs.schedules} == {
        "hourly_refresh",
        "daily_audiences",
        "weekly_cluster_refit",
    }
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in defs.schedules)
    assert [s.name for s in defs.sensors] == ["new_landing_files"]
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"gx_segment_memberships", "gx_user_metrics", "gx_audience_exports"} <= checks
    assert any(name.startswith("unique_") for name in checks)  # dbt tests as checks


def test_event_models_are_daily_partitioned():
    spec_partitions = event_models.partitions_def
    assert isinstance(spec_partitions, dg.DailyPartitionsDefinition)
    assert spec_partitions.get_partition_keys()[0] == "2026-01-01"


def test_refresh_job_builds_the_marts_but_never_exports():
    job = build_definitions(Settings()).resolve_job_def("segments_refresh")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert "marts/user_metrics" in keys and "raw/events" in keys
    assert "exports/audience_files" not in keys
    assert not any(key.startswith("segments/") for key in keys)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("dagster")
    generate(
        GeneratorConfig(out=root / "landing", users=200, days=4, seed=3, start=date(2026, 1, 1))
    )
    settings = Settings(
        landing_dir=root / "landing",
        warehouse=root / "warehouse.duckdb",
        exports_dir=root / "exports",
        as_of=AS_OF,
    )
    run_pipeline(settings)
    return root, settings


def test_partitioned_backfill_of_two_days_restores_exactly_the_full_refresh(built, tmp_path):
    root, settings = built
    reference = tmp_path / "reference.duckdb"
    shutil.copy(settings.warehouse, reference)
    damaged = tmp_path / "damaged.duckdb"
    shutil.copy(settings.warehouse, damaged)
    conn = duckdb.connect(str(damaged))
    lost = conn.execute(
        "delete from intermediate.int_events_enriched "
        "where occurred_at >= '2026-01-02' and occurred_at < '2026-01-04'"
    ).fetchone()[0]
    conn.execute(
        "update intermediate.int_events_enriched set order_key = 'wrong' "
        "where occurred_at >= '2026-01-01' and occurred_at < '2026-01-02'"
    )
    conn.close()
    assert lost > 0 and differences(damaged, reference, "intermediate.int_events_enriched")

    result = dg.materialize(
        [event_models],
        resources=build_resources(settings.with_overrides(warehouse=damaged)),
        tags={
            "dagster/asset_partition_range_start": "2026-01-02",
            "dagster/asset_partition_range_end": "2026-01-03",
        },
    )
    assert result.success
    # Days 2 and 3 are restored; day 1, outside the backfill, keeps its damage.
    conn = duckdb.connect(str(damaged), read_only=True)
    wrong = conn.execute(
        "select count(*) from intermediate.int_events_enriched where order_key = 'wrong'"
    ).fetchone()[0]
    conn.close()
    assert wrong > 0
    result = dg.materialize(
        [event_models],
        resources=build_resources(settings.with_overrides(warehouse=damaged)),
        tags={
            "dagster/asset_partition_range_start": "2026-01-01",
            "dagster/asset_partition_range_end": "2026-01-01",
        },
    )
    assert result.success
    assert differences(damaged, reference, "intermediate.int_events_enriched") == 0


def sensor_settings(root: Path, warehouse: Path) -> PipelineSettings:
    return PipelineSettings(landing_dir=str(root), warehouse=str(warehouse))


def test_sensor_requests_a_run_for_a_new_file_and_none_for_an_old_one(built):
    root, settings = built
    resources = {"settings": sensor_settings(settings.landing_dir, settings.warehouse)}
    context = dg.build_sensor_context(resources=resources)
    assert isinstance(new_landing_files(context), dg.SkipReason)  # all ingested

    new_file = write_events(
        settings.landing_dir,
        "late.csv",
        [event("n1", "page_view", "2026-01-04T00:00:00Z", user_id="u")],
    )
    try:
        request = new_landing_files(dg.build_sensor_context(resources=resources))
        again = new_landing_files(dg.build_sensor_context(resources=resources))
    finally:
        new_file.unlink()
    assert isinstance(request, dg.RunRequest)
    assert request.tags["segments/new_files"] == "1"
    assert again.run_key == request.run_key  # the same files never start a second run


def test_schedules_compute_as_of_their_scheduled_time():
    hour = datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    request = hourly_refresh(dg.build_schedule_context(scheduled_execution_time=hour))
    assert request.tags[AS_OF_TAG] == "2026-03-01T14:05:00+00:00"
    daily = daily_audiences(
        dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    )
    assert daily.tags[AS_OF_TAG] == "2026-03-01T00:00:00+00:00"
    weekly = weekly_cluster_refit(
        dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 2, 0, 15, tzinfo=UTC))
    )
    assert weekly.tags == {AS_OF_TAG: "2026-03-02T00:00:00+00:00", REFIT_CLUSTERS_TAG: "true"}


def test_a_run_tagged_to_refit_the_clusters_sets_the_refit_var():
    class Run:
        tags = {AS_OF_TAG: "2026-03-02T00:00:00+00:00", REFIT_CLUSTERS_TAG: "true"}

    class Context:
        run = Run()

    resolved = run_settings(Context(), PipelineSettings(dbt_vars_json='{"segments__x": 1}'))
    assert resolved.dbt_vars == {"segments__x": 1, "segments__refit_clusters": True}
    Run.tags = {AS_OF_TAG: "2026-03-02T00:00:00+00:00"}
    assert "segments__refit_clusters" not in run_settings(Context(), PipelineSettings()).dbt_vars


def test_dagster_instance_queues_warehouse_runs_one_at_a_time():
    instance = dg.DagsterInstance.from_config(str(PROJECT_ROOT / "dagster_home"))
    limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    assert {"key": "segments/warehouse", "limit": 1} in limits
    jobs = build_definitions(Settings()).resolve_all_job_defs()
    for job in jobs:
        if job.name.startswith("segments_"):
            assert job.tags.get("segments/warehouse") == "duckdb"


def test_run_lock_fails_at_once_or_waits(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from orchestration.core.locking import warehouse_lock\n"
            "with warehouse_lock(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(3)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLockedError, match="another run is using"):
            with warehouse_lock(warehouse):
                pass
        started = time.monotonic()
        with warehouse_lock(warehouse, wait_seconds=30):
            waited = time.monotonic() - started
        assert 0.5 < waited < 30
    finally:
        holder.kill()
        holder.wait()


def test_two_runs_at_once_one_runs_the_other_fails_clearly_and_nothing_breaks(built, tmp_path):
    root, settings = built
    landing = tmp_path / "landing"
    shutil.copytree(settings.landing_dir, landing)
    warehouse = tmp_path / "w.duckdb"
    command = [
        sys.executable,
        "-m",
        "orchestration.cli",
        "run",
        "--landing",
        str(landing),
        "--warehouse",
        str(warehouse),
        "--exports",
        str(tmp_path / "exports"),
        "--as-of",
        "2026-01-05T00:00:00Z",
    ]
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    deadline = time.monotonic() + 60
    while not (lock_path(warehouse).exists() and lock_path(warehouse).read_text()):
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.2)
    second = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0
    assert "another run is using the warehouse" in second.stderr
    # The warehouse is whole: it answers exactly like the undisturbed one.
    for table in ("marts.user_metrics", "marts.segment_memberships"):
        assert differences(warehouse, settings.warehouse, table) == 0
