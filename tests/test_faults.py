"""Faults: a run killed with SIGKILL at several points. The next run finishes, and its
marts and exports equal those of a run that was never interrupted; no reader ever sees a
partial export; no file is ingested twice. Slow (whole pipeline runs in subprocesses):
marked `reliability`, run by `make reliability`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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


def run_command(
    base: Path, landing: Path, as_of: str = AS_OF, exports: Path | None = None
) -> list[str]:
    return [
        SEGMENTS,
        "run",
        "--landing",
        str(landing),
        "--warehouse",
        str(base / "warehouse.duckdb"),
        "--exports",
        str(exports or base / "exports"),
        "--as-of",
        as_of,
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
                conn.execute(f"select * from marts.{table}").fetchall(),
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
    assert_finished_by_the_next_run(tmp_path, landing, uninterrupted)


# The `segments run` command in a process that kills itself with SIGKILL right after the
# export has written its fifth file: strictly between two export files.
KILLED_BETWEEN_EXPORT_FILES = """
import os, signal, sys
import orchestration.assets.exports as asset
from orchestration.cli import main

written = []
export_audiences = asset.export_audiences

def write_then_die(path, data):
    path.write_bytes(data)
    written.append(path.name)
    if len(written) == 5:
        print("killed after", written, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

asset.export_audiences = lambda *args, **kwargs: export_audiences(
    *args, **kwargs, write_file=write_then_die
)
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_between_two_export_files_is_finished_by_the_next_one(
    tmp_path, landing, uninterrupted
):
    # A script file, not `python -c`: pyspark, when installed, takes a main module without
    # a file for its own doctests and exits on import.
    script = tmp_path / "killed_between_export_files.py"
    script.write_text(KILLED_BETWEEN_EXPORT_FILES)
    killed = subprocess.run(
        [sys.executable, str(script), *run_command(tmp_path, landing)[1:]],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "killed after" in killed.stdout
    # The five files were written, in the hidden folder only: no export is published.
    hidden = [p for p in (tmp_path / "exports").iterdir() if p.name.startswith(".tmp-")]
    assert len(hidden) == 1 and len(list(hidden[0].iterdir())) == 5
    assert not (tmp_path / "exports" / "latest.json").exists()
    assert_finished_by_the_next_run(tmp_path, landing, uninterrupted)


def assert_finished_by_the_next_run(base: Path, landing: Path, uninterrupted: Path) -> None:
    assert_only_complete_exports_are_visible(base)
    rerun = subprocess.run(run_command(base, landing), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert_only_complete_exports_are_visible(base)
    assert not list((base / "exports").glob(".tmp-*"))  # a dead run's folder is removed
    assert ingested_files(base) == ingested_files(uninterrupted)
    assert marts(base) == marts(uninterrupted)
    assert export_files(base) == export_files(uninterrupted)


def test_the_same_as_of_twice_changes_nothing(tmp_path, landing, uninterrupted):
    command = run_command(tmp_path, landing)
    subprocess.run(command, check=True, capture_output=True)
    first = export_files(tmp_path), marts(tmp_path)
    subprocess.run([*command, "--force"], check=True, capture_output=True)
    assert (export_files(tmp_path), marts(tmp_path)) == first
    assert first[0] == export_files(uninterrupted)


NEXT_DAY = "2026-01-16T00:00:00Z"


def copy_of_uninterrupted(uninterrupted: Path, base: Path, exports: Path) -> None:
    """A warehouse and exports folder as the uninterrupted run left them."""
    shutil.copy(uninterrupted / "warehouse.duckdb", base / "warehouse.duckdb")
    shutil.copytree(uninterrupted / "exports", exports, dirs_exist_ok=True)


def assert_failed_and_latest_kept(run: subprocess.CompletedProcess, exports: Path, why: str):
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    # --verbose shows Dagster's log above it; the last line is the command's one-line error.
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("segments run: error:") and why in error, run.stderr[-2000:]
    assert json.loads((exports / "latest.json").read_text())["export_id"] == "20260115T0000Z"
    assert not (exports / "20260116T0000Z").exists()
    assert not list(exports.glob(".tmp-*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB file system of its own (tmpfs), which the test can fill."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_fails_the_run_clearly_and_keeps_the_previous_export(
    tmp_path, landing, uninterrupted, small_disk
):
    exports = small_disk / "exports"
    copy_of_uninterrupted(uninterrupted, tmp_path, exports)
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as out:  # fill the disk to its last byte
        for size in (65536, 4096, 1):
            try:
                while out.write(b"\0" * size):
                    pass
            except OSError:
                pass
    command = run_command(tmp_path, landing, NEXT_DAY, exports)
    full = subprocess.run(command, capture_output=True, text=True)
    assert_failed_and_latest_kept(full, exports, "No space left on device")
    assert f"could not write into {exports}" in full.stderr

    filler.unlink()  # room again: the same run now succeeds
    subprocess.run(command, check=True, capture_output=True)
    assert json.loads((exports / "latest.json").read_text())["export_id"] == "20260116T0000Z"


def test_an_unwritable_export_folder_fails_the_run_clearly_and_keeps_the_previous_export(
    tmp_path, landing, uninterrupted
):
    exports = tmp_path / "exports"
    copy_of_uninterrupted(uninterrupted, tmp_path, exports)
    # Read-only for root too: the immutable attribute (file permissions do not bind root).
    locked = subprocess.run(["chattr", "+i", str(exports)], capture_output=True, text=True)
    if locked.returncode != 0:
        if os.geteuid() == 0:
            pytest.skip(f"cannot make a folder read-only for root here: {locked.stderr.strip()}")
        exports.chmod(0o555)
    try:
        run = subprocess.run(
            run_command(tmp_path, landing, NEXT_DAY, exports), capture_output=True, text=True
        )
    finally:
        subprocess.run(["chattr", "-i", str(exports)], capture_output=True)
        exports.chmod(0o755)
    assert_failed_and_latest_kept(
        run, exports, f"could not write into {exports}: Operation not permitted"
    )
