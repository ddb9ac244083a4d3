"""`--full-refresh` rebuilds what events determine and keeps what they cannot: after four
daily runs, a full refresh (with and without --force) leaves the membership history,
today's memberships with their entered_at, every other mart (to the last digit) and the
export's files exactly as they were.
Only `--rebuild-history` discards the history, and says so. Whole runs (seven): marked
`reliability`, run by `make reliability`."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main
from orchestration.demo.generator import GeneratorConfig, generate

pytestmark = pytest.mark.reliability

DAILY_AS_OF = ["2026-06-27", "2026-06-28", "2026-06-29", "2026-06-30"]
LAST = f"{DAILY_AS_OF[-1]}T00:00:00Z"


def segments_run(base: Path, landing: Path, as_of: str, *flags: str) -> None:
    code = main(
        ["run", "--landing", str(landing), "--warehouse", str(base / "warehouse.duckdb"),
         "--exports", str(base / "exports"), "--as-of", as_of, *flags]
    )  # fmt: skip
    assert code == 0


def state(base: Path) -> dict[str, list[tuple]]:
    """Every mart and the export log, row for row and digit for digit."""
    conn = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        marts = [
            name
            for (name,) in conn.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        tables = {
            name: conn.execute(f"select * from marts.{name} order by all").fetchall()
            for name in marts
        }
        return {
            **tables,
            "history": tables["segment_membership_history"],
            "memberships": tables["segment_memberships"],
            "export_log": conn.execute("select * from audit.export_log order by all").fetchall(),
        }
    finally:
        conn.close()


def export_of(base: Path, as_of: str) -> dict[str, str]:
    """The audience files of one export (members, added, removed) by sha256."""
    folder = base / "exports" / (as_of[:10].replace("-", "") + "T0000Z")
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.glob("*.csv"))
    }


@pytest.fixture(scope="module")
def daily(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    """Four daily runs, and what they left: the state and the last export."""
    root = tmp_path_factory.mktemp("full-refresh")
    landing = root / "landing"
    generate(GeneratorConfig(out=landing, users=250, days=30, seed=11, start=date(2026, 6, 1)))
    base = root / "warehouse"
    for day in DAILY_AS_OF:
        segments_run(base, landing, f"{day}T00:00:00Z")
    return base, landing, state(base), export_of(base, LAST)


def test_four_daily_runs_leave_closed_stays_to_protect(daily):
    _, _, before, files = daily
    closed = [row for row in before["history"] if row[3] is not None]
    assert closed, "the landing should give stays that ended between the daily runs"
    entered = {row[2] for row in before["memberships"]}
    assert len(entered) > 1, "members entered on different days"
    assert any(name.endswith(".removed.csv") for name in files)


@pytest.mark.parametrize("flags", [["--full-refresh"], ["--full-refresh", "--force"]])
def test_full_refresh_keeps_history_memberships_and_export_files(daily, flags):
    base, landing, before, files = daily
    segments_run(base, landing, LAST, *flags)
    assert state(base) == before
    assert export_of(base, LAST) == files


def test_rebuild_history_discards_the_history_and_says_so(daily, capsys):
    base, landing, before, _ = daily
    segments_run(base, landing, LAST, "--rebuild-history")
    warning = capsys.readouterr().err
    assert f"discards the {len(before['history']):,} recorded stays" in warning
    after = state(base)
    assert all(row[3] is None for row in after["history"]), "no closed stay survives"
    assert {row[2] for row in after["memberships"]} == {datetime(2026, 6, 30)}
    earlier = [row for row in before["export_log"] if row[0] < "20260630"]
    assert earlier and [row for row in after["export_log"] if row[0] < "20260630"] == earlier, (
        "the log of earlier exports is kept"
    )
