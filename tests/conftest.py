"""Shared builders: tiny landing zones written from Python rows, a pipeline run into a
temporary warehouse, and the dbt project built empty once per session."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pytest

from orchestration.core.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings
from orchestration.ingest.landing_files import ENTITY_COLUMNS, SETTLE_VARIABLE
from orchestration.pipeline import run_pipeline

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

# Every test writes its landing files whole before it runs the pipeline (commands it starts
# inherit this too); tests of the settle time set their own.
os.environ[SETTLE_VARIABLE] = "0"

AS_OF = datetime(2026, 3, 1)
EVENT_COLUMNS = ENTITY_COLUMNS["events"]


def at(delta: timedelta, base: datetime = AS_OF) -> str:
    """An ISO 8601 UTC timestamp `delta` after as_of (negative: before)."""
    return (base + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(event_id: str, event_type: str, occurred_at: str, **fields) -> dict:
    row = {column: None for column in EVENT_COLUMNS}
    row.update(event_id=event_id, event_type=event_type, occurred_at=occurred_at, **fields)
    return row


def write_rows(path: Path, rows: Iterable[dict], columns: Iterable[str] | None = None) -> Path:
    """Writes rows as CSV, JSON Lines or Parquet by the file's suffix (.gz compresses)."""
    rows = list(rows)
    frame = pd.DataFrame(rows, columns=list(columns) if columns else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        frame.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None)
    elif name.endswith(".parquet"):
        frame.astype("string").to_parquet(path, index=False)
    elif name.endswith(".jsonl"):
        text = "".join(json.dumps(row) + "\n" for row in rows)
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    else:
        raise ValueError(path)
    return path


def write_events(landing: Path, name: str, rows: Iterable[dict]) -> Path:
    return write_rows(landing / "events" / name, rows, EVENT_COLUMNS)


def run(landing: Path, warehouse: Path, as_of: datetime = AS_OF, **options) -> None:
    settings = Settings(
        landing_dir=landing,
        warehouse=warehouse,
        exports_dir=warehouse.parent / "exports",
        as_of=as_of,
        **options,
    )
    run_pipeline(settings)


def query(warehouse: Path, sql: str, params: dict | None = None) -> list[tuple]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute(sql, params or {}).fetchall()
    finally:
        conn.close()


def row_of(warehouse: Path, table: str, key: str, value: str) -> dict:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        frame = conn.execute(f"select * from {table} where {key} = $v", {"v": value}).df()
    finally:
        conn.close()
    assert len(frame) == 1, f"expected one row in {table} for {key}={value}, got {len(frame)}"
    return frame.iloc[0].to_dict()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    (path / "events").mkdir(parents=True)
    return path


def project_copy(tmp_path: Path) -> Path:
    """A copy of the dbt project (with the seeds it reads), for a test that changes it."""
    root = tmp_path / "project"
    shutil.copytree(
        PROJECT_ROOT / "dbt_project",
        root / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    shutil.copytree(PROJECT_ROOT / "seeds", root / "seeds")
    return root / "dbt_project"


EMPTY_BUILD = ["--resource-type", "model", "--resource-type", "seed"]


@dataclass(frozen=True)
class EmptyWarehouse:
    """A DuckDB file in which every model and seed of the project exists with no rows, and
    the dbt target folder that built it."""

    path: Path
    target: Path
    environment: dict[str, str]

    def dbt(self, args: list[str]) -> dbtRunnerResult:
        """Runs dbt in this process against this warehouse."""
        from dbt.cli.main import dbtRunner

        from orchestration.transform.dbt_commands import environment_variables

        with environment_variables(self.environment):
            return dbtRunner().invoke(
                [
                    *args,
                    "--project-dir",
                    str(DBT_PROJECT_DIR),
                    "--profiles-dir",
                    str(DBT_PROJECT_DIR),
                    "--target-path",
                    str(self.target),
                    "--quiet",
                ]
            )


@pytest.fixture(scope="session")
def empty_warehouse(tmp_path_factory) -> EmptyWarehouse:
    """The project built empty (`dbt build --empty`: every model, no rows), once per
    session: dbt unit tests read their parents' column types from it, and the model docs
    check reads the columns each model produces from it."""
    # Imported here: orchestration.assets.dbt parses the project, which most tests never need.
    from orchestration.assets.dbt import SEGMENT_UNION_MODEL
    from orchestration.resources import ensure_warehouse

    root = tmp_path_factory.mktemp("empty_warehouse")
    path = root / "unit.duckdb"
    conn = duckdb.connect(str(path))
    ensure_warehouse(conn)
    conn.close()
    built = EmptyWarehouse(
        path=path,
        target=root / "target",
        environment={"SEGMENTS_WAREHOUSE": str(path), "SEGMENTS_AS_OF": "2026-01-10 00:00:00"},
    )
    # The segment union reads the segment models without ref() (see assets/dbt.py): they
    # are built first.
    for selection in (
        ["--exclude", f"{SEGMENT_UNION_MODEL}+"],
        ["--select", f"{SEGMENT_UNION_MODEL}+"],
    ):
        result = built.dbt(["build", "--empty", *EMPTY_BUILD, *selection])
        assert result.success, f"dbt build --empty failed: {result.exception}"
    return built


def compile_model(tmp_path: Path, model: str, variables: dict) -> tuple[bool, str]:
    """`dbt compile` of one model with these vars, in a warehouse of its own: (True, the
    compiled code) or (False, dbt's error)."""
    from dbt.cli.main import dbtRunner

    from orchestration.transform.dbt_commands import environment_variables

    target = tmp_path / "target"
    with environment_variables({"SEGMENTS_WAREHOUSE": str(tmp_path / "w.duckdb")}):
        result = dbtRunner().invoke(
            [
                "compile",
                "--select",
                model,
                "--vars",
                json.dumps(variables),
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(target),
                "--quiet",
            ]
        )
    if not result.success:
        return False, str(result.exception)
    return True, next(path for path in target.rglob(f"{model}.*") if path.is_file()).read_text()
