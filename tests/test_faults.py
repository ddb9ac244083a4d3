"""Faults: a run killed with SIGKILL at several points. The next run finishes, and its
marts and exports equal those of a run that was never interrupted; no reader ever sees a
partial export; no file is ingested twice. Slow (whole pipeline runs in subprocesses):
marked `reliability`, run by `make reliability`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.reliability

SEGMENTS = str(Path(sys.executable).parent / "segments")
AS_OF = "2026-01-15T00:00:00Z"


def run_command(base: Path, landing: Path) -> list[str]:
    return [
        SEGMENTS,
        "run",
        "--landing",
        str(landing),
        "--warehouse",
        str(base / "warehouse.duckdb"),
        "--exports",
        str(base / "exports"),
        "--as-of",
        AS_OF,
        "--verbose",
    ]


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faults") / "landing"
    subprocess.run(
        [SEGMENTS, "generate", "--out", str(folder), "--users", "400", "--days", "14",
         "--seed", "7", "--bad-rate", "0.01"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, landing) -> Path:
    base = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(run_command(base, landing), check=True, capture_output=True)
    return base


def _settled(value):
    # DuckDB sums doubles in parallel, in an order that varies from run to run: sums of
    # amounts differ in their last bits (707.56 or 707.5600000000001) between two runs
    # that were never interrupted. Twelve significant digits keep every real difference.
    return float(f"{value:.12g}") if isinstance(value, float) else value


def marts(base: Path) -> dict[str, list[tuple]]:
    conn = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {
            table: sorted(
                (
                    tuple(map(_settled, row))
                    for row in conn.execute(f"select * from marts.{table}").fetchall()
                ),
                key=repr,
            )
            for table in tables
        }
    finally:
        conn.close()


def ingested_files(base: Path) -> list[tuple]:
    conn = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(
            "select source_file, status, rows_landed, rows_accepted, rows_quarantined, "
            "rows_duplicate from audit.ingestion_reconciliation order by 1"
        ).fetchall()
    finally:
        conn.close()


def export_files(base: Path) -> dict[str, str]:
    """The published exports: every file of every non-hidden folder, by sha256."""
    root = base / "exports"
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.parts[len(root.parts)] not in ("validation",)
        and path.name != "report.html"
    }


def assert_only_complete_exports_are_visible(base: Path) -> None:
    root = base / "exports"
    if not root.exists():
        return
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder.name != "validation":
            manifest = json.loads((folder / "manifest.json").read_text())
            for name in manifest["files"]:
                assert (folder / name).exists()
    latest = root / "latest.json"
    if latest.exists():
        assert (root / json.loads(latest.read_text())["export_id"] / "manifest.json").exists()


def kill_when(base: Path, landing: Path, seen: Callable[[str], bool], delay: float = 0) -> None:
    """Starts a run and kills its whole process tree with SIGKILL at the first output line
    for which `seen` is true."""
    process = subprocess.Popen(
        run_command(base, landing),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        for line in process.stdout:
            if seen(line):
                time.sleep(delay)
                os.killpg(process.pid, signal.SIGKILL)
                return
        pytest.fail("the run ended before the point where it was to be killed")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


KILL_POINTS = {
    "during_ingestion": (lambda line: "landing_files - read events" in line, 0),
    "in_the_middle_of_the_dbt_models": (
        lambda line: "OK created sql table model intermediate.int_cart_episodes" in line,
        0,
    ),
    # After the audience models come the validation suites, then the export: two delays
    # land the kill in the first and, on this machine, in the second.
    "during_validation": (lambda line: "audience_models - Finished dbt command" in line, 0.3),
    "during_the_export": (lambda line: "audience_models - Finished dbt command" in line, 3.0),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_run_is_finished_by_the_next_one(tmp_path, landing, uninterrupted, point):
    seen, delay = KILL_POINTS[point]
    kill_when(tmp_path, landing, seen, delay)
    assert_only_complete_exports_are_visible(tmp_path)

    rerun = subprocess.run(run_command(tmp_path, landing), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert_only_complete_exports_are_visible(tmp_path)
    assert ingested_files(tmp_path) == ingested_files(uninterrupted)
    assert marts(tmp_path) == marts(uninterrupted)
    assert export_files(tmp_path) == export_files(uninterrupted)


def test_the_same_as_of_twice_changes_nothing(tmp_path, landing, uninterrupted):
    command = run_command(tmp_path, landing)
    subprocess.run(command, check=True, capture_output=True)
    first = export_files(tmp_path), marts(tmp_path)
    subprocess.run([*command, "--force"], check=True, capture_output=True)
    assert (export_files(tmp_path), marts(tmp_path)) == first
    assert first[0] == export_files(uninterrupted)
