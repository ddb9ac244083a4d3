"""Where dbt keeps its files, and when the project is parsed: once per run's vars and
environment in this process, partially from the warehouse's previous parse in the next."""

import os
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner

from orchestration.assets.dbt import KEEP_RUN_TARGETS, _prune_run_targets, run_target_path
from orchestration.transform import dbt_runner
from orchestration.transform.dbt_commands import dbt_cli, dbt_project
from orchestration.transform.dbt_runner import parse_folder, parse_key


def make_run(runs: Path, name: str, mtime: float) -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    os.utime(folder, (mtime, mtime))
    return folder


def test_run_targets_live_in_the_dbt_projects_target_folder():
    target = run_target_path("abc")
    assert target == Path(dbt_project.project_dir) / dbt_project.target_path / "runs" / "abc"
    assert target.is_absolute()


def test_pruning_keeps_the_newest_runs(tmp_path):
    runs = tmp_path / "runs"
    for index in range(KEEP_RUN_TARGETS + 3):
        make_run(runs, f"run{index}", 1_000_000 + index)
    current = runs / "current"
    _prune_run_targets(current)
    kept = sorted(path.name for path in runs.iterdir())
    newest = [f"run{index}" for index in range(3 + 1, KEEP_RUN_TARGETS + 3)]
    assert kept == sorted(newest)


def test_each_warehouse_keeps_its_own_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DBT_TARGET", "duckdb")
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", "/a/warehouse.duckdb")
    first = parse_folder(tmp_path)
    assert parse_folder(tmp_path) == first
    assert first.parent == tmp_path / "parses"
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", "/b/warehouse.duckdb")
    assert parse_folder(tmp_path) != first
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", "/a/warehouse.duckdb")
    monkeypatch.setenv("SEGMENTS_DBT_TARGET", "postgres")
    assert parse_folder(tmp_path) != first


def test_a_parse_is_valid_for_its_vars_environment_and_files(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    model = project / "models" / "a.sql"
    model.write_text("select 1")
    (project / "dbt_project.yml").write_text("name: p")
    monkeypatch.setenv("SEGMENTS_AS_OF", "2026-01-01 00:00:00")
    key = parse_key(project, "{}")
    assert parse_key(project, "{}") == key
    assert parse_key(project, '{"segments__x": 1}') != key
    monkeypatch.setenv("SEGMENTS_AS_OF", "2026-01-02 00:00:00")
    assert parse_key(project, "{}") != key
    monkeypatch.setenv("SEGMENTS_AS_OF", "2026-01-01 00:00:00")
    os.utime(model, (model.stat().st_mtime + 10, model.stat().st_mtime + 10))
    assert parse_key(project, "{}") != key


@pytest.fixture
def parses(monkeypatch):
    """The dbt commands this process runs, by their first word."""
    invoked: list[str] = []
    original = dbtRunner.invoke

    def spy(self, args, **kwargs):
        invoked.append(args[0])
        return original(self, args, **kwargs)

    monkeypatch.setattr(dbtRunner, "invoke", spy)
    monkeypatch.setattr(dbt_runner, "_parsed", {})
    return invoked


def test_commands_with_the_same_vars_share_one_parse(tmp_path, monkeypatch, parses):
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    dbt = dbt_cli()
    target = tmp_path / "target"
    for _ in range(2):
        dbt.cli(["ls", "--vars", "{}", "--select", "user_metrics"], target_path=target).wait()
    assert parses == ["parse", "ls", "ls"]
    dbt.cli(["ls", "--vars", '{"segments__x": 1}'], target_path=target).wait()
    assert parses == ["parse", "ls", "ls", "parse", "ls"]


def test_a_failing_command_raises_with_dbts_error(tmp_path, monkeypatch, parses):
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    dbt = dbt_cli()
    with pytest.raises(dbt_runner.DbtCommandError, match="Errors parsed from dbt logs"):
        dbt.cli(["run-operation", "no_such_macro"], target_path=tmp_path / "target").wait()


def test_a_model_compiled_again_from_the_kept_parse_still_inlines_its_ephemeral_models(
    tmp_path, monkeypatch, parses
):
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SEGMENTS_AS_OF", "2026-03-01 00:00:00")
    dbt = dbt_cli()
    compiled = tmp_path / "target" / "compiled" / "behavioral_segments" / "models" / "intermediate"
    for _ in range(2):
        dbt.cli(
            ["compile", "--vars", "{}", "--select", "int_events_enriched"],
            target_path=tmp_path / "target",
        ).wait()
        sql = (compiled / "int_events_enriched.sql").read_text()
        assert "__dbt__cte__stg_raw__events as (" in sql
    assert parses == ["parse", "compile", "compile"]


@pytest.mark.parametrize(
    ("user_ids", "failing"),
    [(["a", "b", None, None], []), (["a", "b", "b", None], [("b", 2)])],
    ids=["unique", "duplicated"],
)
def test_the_unique_test_on_duckdb_fails_exactly_the_values_held_twice(
    tmp_path, monkeypatch, user_ids, failing
):
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(warehouse))
    dbt_cli().cli(
        ["compile", "--vars", "{}", "--select", "unique_user_metrics_user_id"],
        target_path=tmp_path / "target",
    ).wait()
    (compiled,) = (tmp_path / "target" / "compiled").rglob("unique_user_metrics_user_id.sql")
    sql = compiled.read_text()
    assert "distinct hash(user_id)" in sql
    conn = duckdb.connect(str(warehouse))
    conn.execute("create schema if not exists marts")
    conn.execute(
        "create table marts.user_metrics as select unnest($1::varchar[]) as user_id", [user_ids]
    )
    assert conn.execute(sql).fetchall() == failing
