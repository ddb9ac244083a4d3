"""The per-run dbt target folders: where they are, how many are kept, and how a new run
starts from the previous run's saved parse."""

import os
from pathlib import Path

from orchestration.assets.dbt import (
    KEEP_RUN_TARGETS,
    PARTIAL_PARSE,
    _prune_run_targets,
    _seed_partial_parse,
    run_target_path,
)
from orchestration.dbt_project import dbt_project


def make_run(runs: Path, name: str, mtime: float, parse: bytes | None = None) -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    if parse is not None:
        (folder / PARTIAL_PARSE).write_bytes(parse)
        os.utime(folder / PARTIAL_PARSE, (mtime, mtime))
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


def test_a_new_run_starts_from_the_newest_saved_parse(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "old", 1_000_000, b"old parse")
    make_run(runs, "newer", 2_000_000, b"newer parse")
    make_run(runs, "newest-without-parse", 3_000_000)
    current = runs / "current"
    _seed_partial_parse(current)
    assert (current / PARTIAL_PARSE).read_bytes() == b"newer parse"


def test_a_runs_own_saved_parse_is_not_replaced(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "earlier", 1_000_000, b"earlier parse")
    current = make_run(runs, "current", 2_000_000, b"own parse")
    _seed_partial_parse(current)
    assert (current / PARTIAL_PARSE).read_bytes() == b"own parse"
