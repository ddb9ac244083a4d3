"""The same dbt models on other engines give the same marts. A generated landing goes
through the whole pipeline on DuckDB; the raw and audit tables it ingested are copied into
a real PostgreSQL server and into a local Spark warehouse (dbt-spark in session mode,
local[2]), the models are built there in the pipeline's order, and every mart is compared
row for row with DuckDB's."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.assets.dbt import AUDIENCE_TAG, EVENT_LEVEL, MEASUREMENT_TAG
from orchestration.generator import GeneratorConfig, generate
from orchestration.settings import PROJECT_ROOT
from tests import spark_tables
from tests.conftest import run
from tests.postgres import postgres_server  # noqa: F401 - a fixture

pytestmark = pytest.mark.portability

AS_OF = datetime(2026, 3, 21)
DBT = str(Path(sys.executable).parent / "dbt")
# The pipeline's dbt steps, in its order (orchestration/assets/dbt.py).
DBT_STEPS = [
    ["--select", EVENT_LEVEL],
    ["--exclude", AUDIENCE_TAG, EVENT_LEVEL, MEASUREMENT_TAG],
    ["--select", AUDIENCE_TAG],
    ["--select", MEASUREMENT_TAG],
]
POSTGRES_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "DATE": "date",
}


@pytest.fixture(scope="module")
def duckdb_run(tmp_path_factory) -> tuple[Path, float]:
    """The whole pipeline on DuckDB over a generated landing; its warehouse and run time."""
    root = tmp_path_factory.mktemp("portability")
    generate(
        GeneratorConfig(
            out=root / "landing", users=300, days=20, seed=11, start=date(2026, 3, 1), bad_rate=0.01
        )
    )
    started = time.monotonic()
    run(root / "landing", root / "warehouse.duckdb", as_of=AS_OF)
    return root / "warehouse.duckdb", time.monotonic() - started


def copy_ingested_tables(warehouse: Path, target) -> int:
    """Every table of the raw and audit schemas, typed, through COPY. Returns the rows."""
    source = duckdb.connect(str(warehouse), read_only=True)
    cursor, copied = target.cursor(), 0
    try:
        for schema, table, columns in spark_tables.ingested_tables(source):
            definition = ", ".join(f'"{name}" {POSTGRES_TYPES[kind]}' for name, kind in columns)
            cursor.execute(f"create schema if not exists {schema}")
            cursor.execute(f"create table {schema}.{table} ({definition})")
            frame = source.execute(f"select * from {schema}.{table}").df()
            text = io.StringIO()
            frame.to_csv(text, index=False, header=False, na_rep="\\N")
            text.seek(0)
            cursor.copy_expert(f"copy {schema}.{table} from stdin (format csv, null '\\N')", text)
            copied += len(frame)
        target.commit()
    finally:
        source.close()
    return copied


def build_models(environment: dict[str, str], target_path: Path) -> None:
    as_of = {"SEGMENTS_AS_OF": AS_OF.strftime("%Y-%m-%d %H:%M:%S.%f")}
    for step in DBT_STEPS:
        result = subprocess.run(
            [DBT, "build", *step, "--target-path", str(target_path)],
            cwd=PROJECT_ROOT / "dbt_project",
            env={**os.environ, **environment, **as_of},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:]


def settled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order and values in one spelling: floats to 12 significant digits (sums
    of doubles differ in their last bits between engines), timestamps without a zone."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind == "f":
            frame[column] = values.map(lambda v: None if pd.isna(v) else float(f"{v:.12g}"))
        elif values.dtype.kind == "M":
            frame[column] = values.dt.tz_localize(None) if values.dt.tz else values
    frame = frame.astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def marts_of_duckdb(warehouse: Path) -> dict[str, pd.DataFrame]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {table: conn.execute(f"select * from marts.{table}").df() for table in tables}
    finally:
        conn.close()


def assert_marts_equal(warehouse: Path, found: Callable[[str], pd.DataFrame], engine: str) -> int:
    """Every mart DuckDB built, against the same table on `engine`. Returns the rows."""
    expected = marts_of_duckdb(warehouse)
    assert len(expected) >= 10
    for table, rows in expected.items():
        other = found(table)
        assert list(other.columns) == list(rows.columns), table
        assert len(other) == len(rows), table
        pd.testing.assert_frame_equal(settled(other), settled(rows), obj=f"{engine} marts.{table}")
    return sum(len(rows) for rows in expected.values())


def test_the_marts_on_postgres_equal_duckdbs(duckdb_run, postgres_server, tmp_path):  # noqa: F811
    warehouse, duckdb_seconds = duckdb_run
    target = postgres_server.connect()
    try:
        assert copy_ingested_tables(warehouse, target) > 5000
        environment = {**postgres_server.environment(), "SEGMENTS_DBT_TARGET": "postgres"}
        started = time.monotonic()
        build_models(environment, tmp_path / "target")
        seconds = time.monotonic() - started
        rows = assert_marts_equal(
            warehouse,
            lambda table: pd.read_sql_query(f"select * from marts.{table}", target),
            "postgres",
        )
    finally:
        target.close()
    print(
        f"\n{rows:,} mart rows equal; DuckDB pipeline {duckdb_seconds:.1f} s, "
        f"PostgreSQL models {seconds:.1f} s"
    )


def test_the_marts_on_spark_equal_duckdbs(duckdb_run, tmp_path):
    if shutil.which("java") is None:
        if os.environ.get("SEGMENTS_REQUIRE_SPARK"):
            pytest.fail("Spark needs Java 17 or newer, and java is not on the PATH")
        pytest.skip("Spark needs Java 17 or newer, and java is not on the PATH")
    warehouse, duckdb_seconds = duckdb_run
    spark_dir = tmp_path / "spark"
    helper = [sys.executable, "-m", "tests.spark_tables"]
    subprocess.run(
        [*helper, "load", str(warehouse), str(spark_dir)],
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    environment = {**spark_tables.environment(spark_dir), "SEGMENTS_DBT_TARGET": "spark"}
    started = time.monotonic()
    build_models(environment, tmp_path / "target")
    seconds = time.monotonic() - started
    subprocess.run(
        [*helper, "dump", str(spark_dir), str(tmp_path / "marts")],
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    rows = assert_marts_equal(
        warehouse, lambda table: pd.read_parquet(tmp_path / "marts" / f"{table}.parquet"), "spark"
    )
    print(
        f"\n{rows:,} mart rows equal; DuckDB pipeline {duckdb_seconds:.1f} s, "
        f"Spark models {seconds:.1f} s"
    )
