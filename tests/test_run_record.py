"""A rerun with nothing new is answered from the last run's record, and only then."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from orchestration.cli import main
from orchestration.core import run_record
from orchestration.core.settings import Settings

AS_OF = datetime(2026, 4, 1)


@pytest.fixture
def recorded(tmp_path) -> Settings:
    """A warehouse as a finished run left it, with its record."""
    (tmp_path / "landing" / "events").mkdir(parents=True)
    (tmp_path / "landing" / "events" / "day1.csv").write_text("event_id\n1\n")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text("{}")
    settings = Settings(
        landing_dir=tmp_path / "landing",
        warehouse=tmp_path / "warehouse.duckdb",
        exports_dir=tmp_path,
        as_of=AS_OF,
    )
    settings.warehouse.write_bytes(b"warehouse")
    run_record.record(settings, str(tmp_path / "export"), "the last summary")
    return settings


def test_nothing_changed_returns_the_last_summary(recorded):
    assert run_record.unchanged_since_last_run(recorded) == "the last summary"


def _touch_later(path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize(
    "change",
    [
        "new_landing_file",
        "changed_landing_file",
        "removed_landing_file",
        "warehouse_written",
        "export_replaced",
        "other_as_of",
        "other_vars",
        "full_refresh",
        "no_record",
    ],
)
def test_any_change_runs_again(recorded, change):
    settings = recorded
    events = settings.landing_dir / "events"
    if change == "new_landing_file":
        (events / "day2.csv").write_text("event_id\n2\n")
    elif change == "changed_landing_file":
        _touch_later(events / "day1.csv")
    elif change == "removed_landing_file":
        (events / "day1.csv").unlink()
    elif change == "warehouse_written":
        _touch_later(settings.warehouse)
    elif change == "export_replaced":
        (settings.exports_dir / "export" / "manifest.json").write_text('{"other": 1}')
    elif change == "other_as_of":
        settings = settings.with_overrides(as_of=datetime(2026, 4, 2))
    elif change == "other_vars":
        settings = settings.with_overrides(dbt_vars={"segments__new_visitor_days": 3})
    elif change == "full_refresh":
        settings = settings.with_overrides(full_refresh=True)
    elif change == "no_record":
        run_record.forget(settings)
    assert run_record.unchanged_since_last_run(settings) is None


def test_the_command_prints_the_record_without_running(recorded, capsys):
    args = [
        "run",
        "--landing",
        str(recorded.landing_dir),
        "--warehouse",
        str(recorded.warehouse),
        "--exports",
        str(recorded.exports_dir),
        "--as-of",
        "2026-04-01T00:00:00Z",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "nothing new since the last run" in out and "the last summary" in out
    # The fake warehouse was not opened: a run would have failed on it.
    assert recorded.warehouse.read_bytes() == b"warehouse"
