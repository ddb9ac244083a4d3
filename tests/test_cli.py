"""The `segments` command: summaries, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest

from orchestration.cli import main
from orchestration.core.settings import Settings, SettingsError, parse_as_of
from orchestration.pipeline import PipelineError, run_pipeline
from orchestration.transform.dbt_commands import dbt_build_args, dbt_environment
from orchestration.transform.dbt_runner import InProcessDbtCli
from tests.conftest import event, write_events


def test_build_args_pass_overrides_as_vars_and_as_of_in_the_environment():
    settings = Settings(
        as_of=datetime(2026, 3, 1, 12),
        dbt_vars={"segments__x": 4, "segments__as_of": "2020-01-01"},
    )
    args = dbt_build_args(settings)
    assert args[:2] == ["build", "--vars"]
    assert json.loads(args[2]) == {"segments__x": 4}
    assert dbt_environment(settings)["SEGMENTS_AS_OF"] == "2026-03-01 12:00:00.000000"
    assert "--full-refresh" not in args


def test_build_args_full_refresh_keeps_the_history():
    settings = Settings(as_of=datetime(2026, 3, 1), full_refresh=True)
    args = dbt_build_args(settings)
    assert args[-1] == "--full-refresh"
    assert "segments__rebuild_history" not in json.loads(args[2])


def test_build_args_rebuild_history_is_a_full_refresh_that_lifts_the_guard():
    args = dbt_build_args(Settings(as_of=datetime(2026, 3, 1), rebuild_history=True))
    assert json.loads(args[2]) == {"segments__rebuild_history": True}
    assert args[-1] == "--full-refresh"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T00:00:00Z", datetime(2026, 3, 1)),
        ("2026-03-01T02:00:00+02:00", datetime(2026, 3, 1)),
        ("2026-03-01 00:00", datetime(2026, 3, 1)),
    ],
)
def test_as_of_is_read_as_utc(text, expected):
    assert parse_as_of(text) == expected


def test_bad_as_of_is_a_clear_error():
    with pytest.raises(SettingsError, match="not an ISO 8601"):
        parse_as_of("yesterday")


def test_run_on_a_missing_landing_folder_fails_with_one_line(tmp_path, capsys):
    code = main(
        ["run", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb")]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0 and "does not exist" in err


def test_run_on_an_unknown_target_fails_with_one_line(tmp_path, capsys, landing):
    code = main(["run", "--landing", str(landing), "--target", "bigquery",
                 "--warehouse", str(tmp_path / "w.duckdb")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "target 'bigquery' is not one the pipeline runs on (choose from duckdb, " in err
    assert not (tmp_path / "w.duckdb").exists()


def test_run_on_an_unreachable_postgres_fails_with_one_line(tmp_path, capsys, landing, monkeypatch):
    write_events(
        landing, "a.csv", [event("e1", "add_to_cart", "2026-03-01T00:00:00Z", user_id="u")]
    )
    monkeypatch.setenv("SEGMENTS_PG_HOST", str(tmp_path / "no-server"))
    monkeypatch.setenv("SEGMENTS_PG_PASSWORD", "secret-word")
    code = main(["run", "--landing", str(landing), "--target", "postgres",
                 "--warehouse", str(tmp_path / "w.duckdb"), "--as-of", "2026-03-02"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0
    where = f"(host {tmp_path / 'no-server'}, port 5432, database segments)"
    assert f"landing_files failed: cannot connect to PostgreSQL {where}: " in err
    assert "secret-word" not in err


def test_run_while_another_process_holds_the_warehouse_fails_with_one_line(
    tmp_path, capsys, landing
):
    write_events(landing, "a.csv", [event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="u")])
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(
            [
                "run",
                "--landing",
                str(landing),
                "--warehouse",
                str(warehouse),
                "--as-of",
                "2026-03-01T00:00:00Z",
            ]
        )
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().count("\n") == 0
    assert "in use by another process" in err


def one_cart_event(tmp_path, landing, **settings) -> Settings:
    """The settings of a run over a landing of one cart event."""
    write_events(
        landing, "a.csv", [event("e1", "add_to_cart", "2026-03-01T00:00:00Z", user_id="u")]
    )
    return Settings(
        landing_dir=landing,
        warehouse=tmp_path / "w.duckdb",
        exports_dir=tmp_path / "exports",
        as_of=datetime(2026, 3, 2),
        **settings,
    )


def test_dbt_failure_is_reported_with_dbt_s_own_message(tmp_path, landing):
    broken = one_cart_event(
        tmp_path, landing, dbt_vars={"segments__abandonment_window_hours": "not-a-number"}
    )
    with pytest.raises(PipelineError) as failure:
        run_pipeline(broken)
    message = str(failure.value)
    assert "\n" not in message
    # The var is spliced into SQL unquoted, so the database rejects it.
    assert message.startswith("dbt_models failed: model int_cart_episodes: ")
    assert "Error" in message


def test_a_run_whose_dbt_steps_materialize_nothing_fails(tmp_path, landing, monkeypatch):
    """Dagster skips the steps after an asset that was not materialized and calls the run a
    success (a dbt log line it could not read did that once); such a run must fail."""

    class Silent:
        def stream(self):
            return iter(())

    monkeypatch.setattr(InProcessDbtCli, "cli", lambda self, *args, **kwargs: Silent())
    settings = one_cart_event(tmp_path, landing)
    with pytest.raises(PipelineError, match="skipped: an asset before them was not materialized"):
        run_pipeline(settings)
    assert not (tmp_path / "exports" / "latest.json").exists()


def test_run_prints_a_summary_and_exits_zero(tmp_path, capsys, landing):
    write_events(
        landing,
        "a.csv",
        [
            event("e1", "add_to_cart", "2026-02-20T00:00:00Z", user_id="u", price=2),
            event("e1", "add_to_cart", "2026-02-20T00:00:00Z", user_id="u", price=2),
            event("e2", "page_view", "not a time", user_id="u"),
        ],
    )
    code = main(
        [
            "run",
            "--landing",
            str(landing),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--exports",
            str(tmp_path / "exports"),
            "--as-of",
            "2026-03-01T00:00:00Z",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert (tmp_path / "exports" / "20260301T0000Z" / "manifest.json").exists()
    assert "1 accepted, 1 quarantined, 1 duplicates" in out
    assert "users: 1" in out and "abandoned carts: 1" in out


def test_generate_rejects_nonsense_with_one_line(tmp_path, capsys):
    code = main(["generate", "--out", str(tmp_path), "--users", "0", "--days", "3"])
    assert code == 1
    assert "at least 1" in capsys.readouterr().err
