"""A landing file is read only once it is complete: names of files still being written are
never read, and a file changed within the settle time waits for a later run."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from orchestration.cli import main
from orchestration.core.settings import SettingsError
from orchestration.core.warehouse import connect
from orchestration.ingest.batch_load import ingest
from orchestration.ingest.landing_files import (
    SETTLE_VARIABLE,
    LandedFile,
    WaitingFile,
    pending_files,
    settle_seconds,
)
from tests.conftest import AS_OF, at, event, write_events

SETTLE = 60


@pytest.fixture
def settling(monkeypatch) -> None:
    monkeypatch.setenv(SETTLE_VARIABLE, str(SETTLE))


def age(path: Path, seconds: float) -> None:
    """As if the file was last written `seconds` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def rows(start: int, count: int) -> list[dict]:
    return [
        event(f"e{n}", "page_view", "2026-03-01T00:00:00Z", user_id=f"u{n}")
        for n in range(start, start + count)
    ]


def test_a_file_grown_in_two_steps_is_ingested_once_whole(tmp_path, landing, settling):
    path = write_events(landing, "day.csv", rows(0, 40))
    whole = path.read_bytes()
    # The first run meets the file half written, its last line torn.
    path.write_bytes(whole[: len(whole) // 2])
    conn = connect(tmp_path / "warehouse.duckdb")
    first = ingest(conn, landing, AS_OF)
    assert first.files_waiting == [str(path)]
    assert (first.files_ingested, first.rows_landed) == (0, 0)

    path.write_bytes(whole)
    age(path, SETTLE + 1)
    second = ingest(conn, landing, AS_OF)
    assert (second.files_ingested, second.rows_accepted, second.rows_quarantined) == (1, 40, 0)
    assert second.files_waiting == []
    third = ingest(conn, landing, AS_OF)
    assert (third.files_ingested, third.files_skipped) == (0, 1)
    assert conn.execute("select count(*) from raw.events").fetchone()[0] == 40
    assert conn.execute("select count(*) from audit.quarantined_events").fetchone()[0] == 0
    assert conn.execute("select count(*) from audit.ingestion_reconciliation").fetchone()[0] == 1


def test_a_file_unchanged_for_the_settle_time_is_read(tmp_path, landing, settling):
    path = write_events(landing, "day.csv", rows(0, 3))
    age(path, SETTLE + 1)
    report = ingest(connect(tmp_path / "warehouse.duckdb"), landing, AS_OF)
    assert (report.files_ingested, report.rows_accepted, report.files_waiting) == (1, 3, [])


@pytest.mark.parametrize(
    "name",
    [
        "day.csv.part",
        "day.csv.tmp",
        "day.csv.crdownload",
        "DAY.CSV.PART",
        ".day.csv",
        "_day.csv",
        "_SUCCESS",
        "_temporary/0/part-0000.csv",
        ".uploads/day.csv",
    ],
)
def test_names_of_files_being_written_are_never_read(tmp_path, landing, name):
    path = write_events(landing, "day.csv", rows(0, 2))
    path.rename(landing / "events" / "staged.csv")
    target = landing / "events" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    (landing / "events" / "staged.csv").rename(target)
    write_events(landing, "complete.csv", rows(10, 1))
    conn = connect(tmp_path / "warehouse.duckdb")
    report = ingest(conn, landing, AS_OF)
    assert (report.files_ingested, report.rows_landed, report.files_rejected) == (1, 1, [])
    assert conn.execute("select source_file from audit.ingestion_reconciliation").fetchall() == [
        (str(landing / "events" / "complete.csv"),)
    ]


def test_pending_files_tell_complete_from_waiting(tmp_path, landing, settling):
    old = write_events(landing, "old.csv", rows(0, 1))
    age(old, SETTLE + 1)
    write_events(landing, "new.csv", rows(1, 1))
    pending = pending_files(landing, tmp_path / "warehouse.duckdb")
    assert [(type(found), found.path.name) for found in pending] == [
        (WaitingFile, "new.csv"),
        (LandedFile, "old.csv"),
    ]


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_settle_time_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(SETTLE_VARIABLE, value)
    with pytest.raises(SettingsError, match=f"{SETTLE_VARIABLE}=.* is not a number of seconds"):
        settle_seconds()


def test_settle_time_defaults_to_a_minute(monkeypatch):
    monkeypatch.delenv(SETTLE_VARIABLE)
    assert settle_seconds() == 60


def test_a_run_that_left_a_file_waiting_is_not_answered_from_its_record(
    tmp_path, landing, settling, capsys
):
    write_events(
        landing, "settled.csv", [event("c1", "add_to_cart", at(timedelta(hours=-48)), user_id="u1")]
    )
    age(landing / "events" / "settled.csv", SETTLE + 1)
    write_events(landing, "uploading.csv", rows(0, 1))
    warehouse = tmp_path / "warehouse.duckdb"
    command = ["run", "--landing", str(landing), "--warehouse", str(warehouse),
               "--exports", str(tmp_path / "exports"), "--as-of", at(timedelta(0))]  # fmt: skip
    assert main(command) == 0
    assert "1 files still being written (read by a later run)" in capsys.readouterr().out
    assert not Path(f"{warehouse}.last-run.json").exists()
