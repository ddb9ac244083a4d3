"""The same pipeline on other engines gives the same marts. A generated landing goes
through the whole pipeline twice (the erasure requests arrive on the second day) on DuckDB
and, with `--target postgres`, on a real PostgreSQL server: every mart, the copies the
checks and the export read (types included), and every exported file must be the same.
The same goes, with `--target spark`, for one run on a local Spark (dbt-spark in session
mode, local[2])."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.core.targets import publish
from orchestration.core.warehouse import connect
from orchestration.demo.generator import GeneratorConfig, generate
from orchestration.ingest.erasure import IDENTITY_COLUMNS
from orchestration.resources import ensure_warehouse
from tests.conftest import run
from tests.postgres import postgres_server  # noqa: F401 - a fixture

pytestmark = pytest.mark.portability

AS_OF = datetime(2026, 3, 21)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """A generated landing; its erasure requests wait in a folder of their own."""
    root = tmp_path_factory.mktemp("landing")
    generate(
        GeneratorConfig(
            out=root / "landing", users=300, days=20, seed=11, start=date(2026, 3, 1), bad_rate=0.01
        )
    )
    (root / "landing" / "erasure_requests").rename(root / "requests")
    return root / "landing"


@contextmanager
def erasure_requests_landed(landing: Path) -> Iterator[None]:
    shutil.copytree(landing.parent / "requests", landing / "erasure_requests")
    try:
        yield
    finally:
        shutil.rmtree(landing / "erasure_requests")


def erased_ids(landing: Path) -> list[str]:
    return sorted(pd.read_parquet(landing.parent / "requests")["user_id"])


@pytest.fixture(scope="module")
def duckdb_run(landing, tmp_path_factory) -> tuple[Path, float]:
    """The whole pipeline on DuckDB, as of the day before AS_OF and then, with the erasure
    requests landed, as of AS_OF; its warehouse and the time both runs took."""
    warehouse = tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb"
    started = time.monotonic()
    run(landing, warehouse, as_of=AS_OF - timedelta(days=1))
    with erasure_requests_landed(landing):
        run(landing, warehouse, as_of=AS_OF)
    return warehouse, time.monotonic() - started


def settled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in one order and values in one spelling: numbers to 12 significant digits (sums
    of doubles differ in their last bits between engines), whole ones as integers (a client
    reads a nullable integer column as floats), every null as None, timestamps without a
    zone."""

    def number(value):
        if pd.isna(value):
            return None
        value = float(f"{float(value):.12g}")
        return int(value) if value.is_integer() else value

    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind in "fiu":
            frame[column] = values.map(number).astype(object)
        elif values.dtype.kind == "M":
            frame[column] = values.dt.tz_localize(None) if values.dt.tz else values
    frame = frame.astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _learned_models() -> dict[str, dict]:
    """The models of dbt_project/models/learned/ (Python, scikit-learn), built on DuckDB
    only, by unique id."""
    from orchestration.transform.dbt_commands import load_manifest

    return {
        unique_id: node
        for unique_id, node in load_manifest()["nodes"].items()
        if node["resource_type"] == "model" and node["fqn"][1] == "learned"
    }


def duckdb_only() -> set[str]:
    return {node["name"] for node in _learned_models().values()}


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


def assert_marts_equal(
    warehouse: Path,
    found: Callable[[str], pd.DataFrame],
    engine: str,
    tables: list[str] | None = None,
) -> int:
    """Every mart DuckDB built (or those of `tables`), against the same table on `engine`.
    Returns the rows."""
    expected = marts_of_duckdb(warehouse)
    assert len(expected) >= 10
    # The learned marts are dbt Python models, built on DuckDB only.
    expected = {table: rows for table, rows in expected.items() if table not in duckdb_only()}
    if tables is not None:
        expected = {table: expected[table] for table in tables}
    # Rows of the segments that read the learned marts: empty off DuckDB.
    only = duckdb_only_segments()

    def portable(frame: pd.DataFrame) -> pd.DataFrame:
        if "segment" not in frame.columns:
            return frame
        return frame[~frame["segment"].isin(only)].reset_index(drop=True)

    expected = {table: portable(rows) for table, rows in expected.items()}
    for table, rows in expected.items():
        other = portable(found(table))
        assert list(other.columns) == list(rows.columns), table
        assert len(other) == len(rows), table
        pd.testing.assert_frame_equal(settled(other), settled(rows), obj=f"{engine} marts.{table}")
    return sum(len(rows) for rows in expected.values())


def postgres_tables(target) -> dict[str, list[str]]:
    """Every table of the models' and the pipeline's schemas, with its columns."""
    frame = pd.read_sql_query(
        "select table_schema || '.' || table_name as name, column_name from "
        "information_schema.columns where table_schema not in ('pg_catalog', "
        "'information_schema') order by 1",
        target,
    )
    return frame.groupby("name")["column_name"].apply(list).to_dict()


def rows_of_erased(target, ids: list[str]) -> dict[str, int]:
    """Per Postgres table, the rows that hold one of `ids` in an identity column."""
    found = {}
    cursor = target.cursor()
    for table, columns in postgres_tables(target).items():
        held = [column for column in columns if column in IDENTITY_COLUMNS]
        if held:
            where = " or ".join(f"{column} = any(%(ids)s)" for column in held)
            cursor.execute(f"select count(*) from {table} where {where}", {"ids": ids})
            (count,) = cursor.fetchone()
            if count:
                found[table] = count
    return found


def duckdb_only_segments() -> set[str]:
    """The segments of models built on DuckDB only: those that read a learned mart."""
    from orchestration.transform.dbt_commands import load_manifest, segment_models

    learned = set(_learned_models())
    return {
        node["config"]["meta"]["segment"].get("name", node["name"])
        for node in segment_models(load_manifest())
        if learned & set(node["depends_on"]["nodes"])
    }


def exported_files(exports: Path) -> dict[str, str]:
    """Each audience file of the newest export by sha256, and what its manifest says of the
    files and segments (the rest records when and where it was written); but for the
    segments built on DuckDB only."""
    folder = exports / json.loads((exports / "latest.json").read_text())["export_id"]
    only = duckdb_only_segments()

    def portable(name: str) -> bool:
        return name.split(".")[0] not in only

    files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.glob("*.csv"))
        if portable(path.name)
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    files["manifest.json"] = json.dumps(
        {
            "files": {k: v for k, v in manifest["files"].items() if portable(k)},
            "segments": {k: v for k, v in manifest["segments"].items() if portable(k)},
        },
        sort_keys=True,
    )
    return files


def column_types(warehouse: Path, schema: str) -> dict[str, list[tuple[str, str]]]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = $schema order by table_name, ordinal_position",
            {"schema": schema},
        ).fetchall()
    finally:
        conn.close()
    types: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        types.setdefault(table, []).append((column, kind))
    return types


def test_the_whole_pipeline_on_postgres_equals_duckdb(
    landing,
    duckdb_run,
    postgres_server,  # noqa: F811 - the fixture
    tmp_path,
    monkeypatch,
):
    warehouse, duckdb_seconds = duckdb_run
    for name, value in postgres_server.environment().items():
        monkeypatch.setenv(name, value)
    local = tmp_path / "postgres" / "warehouse.duckdb"
    local.parent.mkdir()
    target = postgres_server.connect()
    try:
        started = time.monotonic()
        run(landing, local, as_of=AS_OF - timedelta(days=1), target="postgres")
        ids = erased_ids(landing)
        # The people whose erasure lands on the second day are in the target's models.
        assert "intermediate.int_events_stitched" in rows_of_erased(target, ids)
        target.rollback()
        with erasure_requests_landed(landing):
            run(landing, local, as_of=AS_OF, target="postgres")
        seconds = time.monotonic() - started
        assert rows_of_erased(target, ids) == {}
        rows = assert_marts_equal(
            warehouse,
            lambda table: pd.read_sql_query(f"select * from marts.{table}", target),
            "postgres",
        )
    finally:
        target.close()
    # What the checks, the export and the report read: the marts, fetched into the file.
    fetched, built = column_types(local, "marts"), column_types(warehouse, "marts")
    assert set(fetched) == set(built) - duckdb_only()
    assert fetched == {table: built[table] for table in fetched}
    assert_marts_equal(
        warehouse,
        marts_of_duckdb(local).__getitem__,
        "the fetched",
        tables=sorted(fetched),
    )
    assert exported_files(local.parent / "exports") == exported_files(warehouse.parent / "exports")
    print(
        f"\n{rows:,} mart rows and every exported file equal; DuckDB pipeline "
        f"{duckdb_seconds:.1f} s, PostgreSQL pipeline {seconds:.1f} s (two runs each)"
    )


@pytest.fixture(scope="module")
def duckdb_single_run(landing, tmp_path_factory) -> tuple[Path, float]:
    """The whole pipeline on DuckDB once, as of AS_OF with the erasure requests landed."""
    warehouse = tmp_path_factory.mktemp("duckdb-once") / "warehouse.duckdb"
    started = time.monotonic()
    with erasure_requests_landed(landing):
        run(landing, warehouse, as_of=AS_OF)
    return warehouse, time.monotonic() - started


def test_the_whole_pipeline_on_spark_equals_duckdb(
    landing, duckdb_single_run, tmp_path, monkeypatch
):
    """One run: on Spark's Parquet tables the membership history is rebuilt every run and
    holds only that run's stays (README), so a second day would differ by design."""
    if shutil.which("java") is None:
        if os.environ.get("SEGMENTS_REQUIRE_SPARK"):
            pytest.fail("Spark needs Java 17 or newer, and java is not on the PATH")
        pytest.skip("Spark needs Java 17 or newer, and java is not on the PATH")
    warehouse, duckdb_seconds = duckdb_single_run
    monkeypatch.setenv("SEGMENTS_SPARK_MASTER", "local[2]")
    local = tmp_path / "spark" / "warehouse.duckdb"
    local.parent.mkdir()
    started = time.monotonic()
    with erasure_requests_landed(landing):
        run(landing, local, as_of=AS_OF, target="spark")
    seconds = time.monotonic() - started
    fetched, built = column_types(local, "marts"), column_types(warehouse, "marts")
    assert set(fetched) == set(built) - duckdb_only()
    assert fetched == {table: built[table] for table in fetched}
    rows = assert_marts_equal(
        warehouse, marts_of_duckdb(local).__getitem__, "spark", tables=sorted(fetched)
    )
    assert exported_files(local.parent / "exports") == exported_files(warehouse.parent / "exports")
    # What Spark read: the stage's raw tables hold no erased person.
    events = local.parent / "warehouse.duckdb.spark" / "stage" / "raw" / "events"
    conn = duckdb.connect()
    held = conn.execute(
        f"select count(*) filter (where user_id in (select unnest($ids))), count(*) "
        f"from read_parquet('{events}/*.parquet')",
        {"ids": erased_ids(landing)},
    ).fetchone()
    assert held[0] == 0 and held[1] > 5000
    print(
        f"\n{rows:,} mart rows and every exported file equal; DuckDB pipeline "
        f"{duckdb_seconds:.1f} s, Spark pipeline {seconds:.1f} s (one run each)"
    )


def test_publish_replaces_a_partition_whose_rows_changed_but_not_their_count(
    postgres_server,  # noqa: F811 - the fixture
    tmp_path,
    monkeypatch,
):
    """A rerun export of as many users but other ones changes no count: the checksum the
    file records of what it published catches it."""
    admin = postgres_server.connect()
    admin.autocommit = True
    admin.cursor().execute("create database publish_check")
    admin.close()
    for name, value in postgres_server.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SEGMENTS_PG_DATABASE", "publish_check")
    local = connect(tmp_path / "warehouse.duckdb")
    target = postgres_server.connect(database="publish_check")
    try:
        ensure_warehouse(local)
        logged = "insert into audit.export_log values ('20260301T0000Z', 's', $user, $at, $at)"
        at = datetime(2026, 3, 1)
        local.execute(logged, {"user": "first", "at": at})
        publish(local, "postgres", {})
        local.execute("delete from audit.export_log")
        local.execute(logged, {"user": "second", "at": at})
        report = publish(local, "postgres", {})
        assert report.partitions_replaced == {"audit.export_log": 1}
        assert pd.read_sql_query("select user_id from audit.export_log", target)[
            "user_id"
        ].tolist() == ["second"]
        assert publish(local, "postgres", {}).partitions_replaced == {}
    finally:
        target.close()
        local.close()
