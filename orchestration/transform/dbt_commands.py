"""The one dbt project shared by the Dagster resource and the @dbt_assets, and the pure
functions that build its command lines."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from orchestration.core.run_record import newest_source_mtime
from orchestration.core.settings import DBT_PROJECT_DIR, Settings
from orchestration.core.targets import SPARK, spark_environment
from orchestration.transform.dbt_runner import InProcessDbtCli

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, so the command works without an
    activated virtual environment."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_cli() -> InProcessDbtCli:
    """The dbt resource: commands run in this process (orchestration/transform/dbt_runner.py).
    dagster-dbt insists on an executable it can find, though none is started."""
    return InProcessDbtCli(project_dir=dbt_project, dbt_executable=dbt_executable())


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """Parses the project when its manifest is missing or older than any model, macro or
    YAML file, so a segment an analyst just added is part of the next run."""
    manifest = project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < newest_source_mtime(
        Path(project.project_dir)
    ):
        dbt = InProcessDbtCli(project_dir=project, dbt_executable=dbt_executable())
        dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return manifest


def load_manifest(project: DbtProject = dbt_project) -> dict:
    return json.loads(Path(ensure_manifest(project)).read_text())


def segment_models(manifest: dict) -> list[dict]:
    """The manifest nodes of segment models: models with `meta.segment`."""
    return sorted(
        (
            node
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model"
            and (node.get("config", {}).get("meta") or {}).get("segment")
        ),
        key=lambda node: node["name"],
    )


AS_OF_VAR = "segments__as_of"
REBUILD_HISTORY_VAR = "segments__rebuild_history"


def dbt_vars(settings: Settings) -> dict[str, object]:
    """The overrides of the project's vars. as_of is not one of them: it travels in the
    environment (dbt_environment), and a var of that name would contradict it."""
    return {key: value for key, value in settings.dbt_vars.items() if key != AS_OF_VAR}


def dbt_build_args(
    settings: Settings, partition_window: tuple[datetime, datetime] | None = None
) -> list[str]:
    """`dbt build` of the models and their data tests with the run's vars; a partition
    window [start, end) makes the event-level models reprocess the events that occurred
    in it. A full refresh keeps the membership history unless the history is to be
    rebuilt too."""
    variables = dbt_vars(settings)
    if partition_window is not None:
        start, end = partition_window
        variables["segments__partition_start"] = start.strftime("%Y-%m-%d %H:%M:%S")
        variables["segments__partition_end"] = end.strftime("%Y-%m-%d %H:%M:%S")
    if settings.rebuild_history:
        variables[REBUILD_HISTORY_VAR] = True
    # The unit tests check the SQL, not the data: tests/test_dbt_unit_tests.py runs them,
    # and a run does not pay for them again.
    args = [
        "build",
        "--vars",
        json.dumps(variables, sort_keys=True),
        "--exclude-resource-type",
        "unit_test",
    ]
    if settings.full_refresh or settings.rebuild_history:
        args.append("--full-refresh")
    return args


def dbt_environment(settings: Settings) -> dict[str, str]:
    """What profiles.yml and the as_of macro read from the environment. as_of is not a var
    because dbt reparses the whole project whenever its vars change (seconds per run)."""
    environment = {
        "SEGMENTS_WAREHOUSE": str(settings.warehouse),
        "SEGMENTS_DBT_TARGET": settings.target,
        "SEGMENTS_AS_OF": settings.as_of_text,
    }
    if settings.target == SPARK:
        environment.update(spark_environment(settings.warehouse))
    return environment


@contextmanager
def environment_variables(values: dict[str, str]) -> Iterator[None]:
    """The process environment with `values` set, as it was again afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dbt_operation(
    dbt: DbtCliResource,
    macro: str,
    environment: dict[str, str],
    arguments: dict[str, object] | None = None,
) -> None:
    """Runs `dbt run-operation MACRO --args ARGUMENTS`; a failure raises with dbt's message."""
    with environment_variables(environment):
        dbt.cli(
            ["run-operation", macro, "--args", json.dumps(arguments or {}, sort_keys=True)],
            target_path=Path(dbt_project.project_dir) / dbt_project.target_path / "operations",
        ).wait()
