"""Where dbt builds the models: the DuckDB file (the default) or another warehouse, chosen
by `segments run --target NAME` (SEGMENTS_DBT_TARGET), NAME an output of
dbt_project/profiles.yml: postgres or spark.

Ingestion always lands in the DuckDB file: its parsing, quarantine, ledger and erasure are
DuckDB's work, and the file stays the landing store whatever the target. With another
target, two copies keep the target and the file in step:

- publish: the tables the models read (PUBLISHED_TABLES, the dbt sources) go from the file
  to the target after ingestion and after each export, compared by partition (ingestion
  batch, export, erasure): new batches, a rerun export, the batches erasure deleted rows
  from. PostgreSQL receives the partitions that differ, through ADBC's bulk copy. Spark
  reads a stage, a folder of Parquet files (one per table, rewritten when any of its
  partitions differs), as external tables its dbt runs register first (the
  on-run-start hook load_stage). When erasure added tombstones, the dbt operation
  `erase_identities` then deletes the erased people from the models the target keeps
  between runs.
- fetch: after each dbt step, the marts it built come back into the file's `marts`
  schema, where the Great Expectations checks, the export and the report read them. They
  are what an export needs anyway: every audience row is read to be written to a file.
  PostgreSQL is read through ADBC; Spark writes each mart into the stage as it builds it
  (the post-hook unload_mart).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import duckdb

DUCKDB = "duckdb"
POSTGRES = "postgres"
SPARK = "spark"
# Targets the pipeline loads and reads itself; the other outputs of profiles.yml
# (BigQuery, Snowflake) run dbt over raw tables loaded as the README describes.
PIPELINE_TARGETS = (DUCKDB, POSTGRES, SPARK)
# The file's tables the models read, with the column whose value partitions each.
PUBLISHED_TABLES = {
    "raw.events": "_batch_id",
    "raw.customers": "_batch_id",
    "audit.export_log": "export_id",
    "audit.erased_identities": "erased_at",
}
MARTS_SCHEMA = "marts"


class WarehouseError(RuntimeError):
    """A target that cannot be used or reached; the message is shown as it is."""


@dataclass
class PublishReport:
    partitions_replaced: dict[str, int] = field(default_factory=dict)
    rows_copied: dict[str, int] = field(default_factory=dict)

    @property
    def erased_identities_changed(self) -> bool:
        return self.partitions_replaced.get("audit.erased_identities", 0) > 0


def check_target(name: str) -> str:
    if name not in PIPELINE_TARGETS:
        raise WarehouseError(
            f"target {name!r} is not one the pipeline runs on (choose from "
            f"{', '.join(PIPELINE_TARGETS)}); for the others, see 'Other warehouses' in the "
            "README"
        )
    return name


def postgres_uri(env: dict[str, str] | None = None) -> str:
    """The PostgreSQL of the profile's postgres output, from the same variables. A host that
    is a path is a Unix socket folder."""
    env = os.environ if env is None else env
    host = env.get("SEGMENTS_PG_HOST", "localhost")
    params = {"port": env.get("SEGMENTS_PG_PORT", "5432")}
    if host.startswith("/"):
        params["host"] = host
        host = ""
    user = quote(env.get("SEGMENTS_PG_USER", "segments"), safe="")
    password = env.get("SEGMENTS_PG_PASSWORD", "")
    credentials = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    database = quote(env.get("SEGMENTS_PG_DATABASE", "segments"), safe="")
    return f"postgresql://{credentials}{host}/{database}?{urlencode(params)}"


def _connect_postgres():
    import adbc_driver_postgresql.dbapi

    try:
        return adbc_driver_postgresql.dbapi.connect(postgres_uri())
    except Exception as error:  # noqa: BLE001 - the driver's errors have no common base
        env = os.environ
        where = (
            f"host {env.get('SEGMENTS_PG_HOST', 'localhost')}, "
            f"port {env.get('SEGMENTS_PG_PORT', '5432')}, "
            f"database {env.get('SEGMENTS_PG_DATABASE', 'segments')}"
        )
        reason = " ".join(str(error).split())
        raise WarehouseError(f"cannot connect to PostgreSQL ({where}): {reason}") from error


def _quoted(qualified: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in qualified.split("."))


def _partition_counts(cursor, table: str, key: str) -> dict:
    cursor.execute(f"select {key}, count(*) from {_quoted(table)} group by {key}")
    return dict(cursor.fetchall())


def _target_columns(cursor, table: str) -> list[str] | None:
    schema, name = table.split(".")
    cursor.execute(
        "select column_name from information_schema.columns "
        "where table_schema = $1 and table_name = $2 order by ordinal_position",
        (schema, name),
    )
    columns = [column for (column,) in cursor.fetchall()]
    return columns or None


def _changed(wanted: dict, found: dict) -> list:
    return sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))


def _local_partitions(local: duckdb.DuckDBPyConnection, table: str, key: str) -> dict:
    return dict(local.execute(f"select {key}, count(*) from {table} group by all").fetchall())


def _publish_postgres(local: duckdb.DuckDBPyConnection) -> PublishReport:
    report = PublishReport()
    remote = _connect_postgres()
    try:
        cursor = remote.cursor()
        for table, key in PUBLISHED_TABLES.items():
            schema, name = table.split(".")
            columns = [row[0] for row in local.execute(f"describe {table}").fetchall()]
            held = _target_columns(cursor, table)
            if held is not None and held != columns:
                # The file's table changed shape (a new version's column): copy it whole.
                cursor.execute(f"drop table {_quoted(table)}")
                held = None
            found = _partition_counts(cursor, table, key) if held is not None else {}
            changed = _changed(_local_partitions(local, table, key), found)
            if not changed and held is not None:
                continue
            cursor.execute(f"create schema if not exists {_quoted(schema)}")
            if held is not None:
                keys = local.execute(
                    "select unnest($changed) as k", {"changed": changed}
                ).to_arrow_table()
                cursor.adbc_ingest("changed_keys", keys, mode="replace", temporary=True)
                cursor.execute(
                    f"delete from {_quoted(table)} where {key} in (select k from changed_keys)"
                )
            rows = local.execute(
                f"select * from {table} where {key} in (select unnest($changed))",
                {"changed": changed},
            ).to_arrow_table()
            cursor.adbc_ingest(name, rows, mode="create_append", db_schema_name=schema)
            report.partitions_replaced[table] = len(changed)
            report.rows_copied[table] = rows.num_rows
        remote.commit()
    finally:
        remote.close()
    return report


def readable_marts(asset_paths) -> list[str]:
    """The tables the checks, the export and the report may read, of the models with these
    asset keys (<schema>/<name>): the marts schema's, but for intermediate models (int_)
    that live there beside the audiences they feed."""
    return sorted(
        path[-1]
        for path in asset_paths
        if path[0] == MARTS_SCHEMA and not path[-1].startswith("int_")
    )


def _replace_mart(local: duckdb.DuckDBPyConnection, table: str, source: str) -> int:
    """marts.<table> from a relation DuckDB reads, timestamps naive UTC as in the file."""
    columns = local.execute(f"describe select * from {source}").fetchall()
    select = ", ".join(
        f'cast("{name}" as timestamp) as "{name}"'
        if kind == "TIMESTAMP WITH TIME ZONE"
        else f'"{name}"'
        for name, kind, *_ in columns
    )
    local.execute(
        f"create or replace table {MARTS_SCHEMA}.{table} as select {select} from {source}"
    )
    # fetchall, not fetchone: DuckDB refuses to unregister the fetched rows while a result
    # on the connection is still unfinished.
    (count,) = local.execute(f"select count(*) from {MARTS_SCHEMA}.{table}").fetchall()
    return count[0]


def _fetch_postgres(local: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, int]:
    remote = _connect_postgres()
    copied = {}
    try:
        cursor = remote.cursor()
        for table in tables:
            cursor.execute(f"select * from {_quoted(f'{MARTS_SCHEMA}.{table}')}")
            local.register("fetched_rows", cursor.fetch_arrow_table())
            copied[table] = _replace_mart(local, table, "fetched_rows")
            local.unregister("fetched_rows")
    finally:
        remote.close()
    return copied


def spark_stage(environment: dict[str, str]) -> Path:
    return Path(environment["SEGMENTS_SPARK_STAGE"])


def spark_environment(warehouse: Path) -> dict[str, str]:
    """Where a local Spark keeps its tables, metastore and stage: beside the DuckDB file,
    unless SEGMENTS_SPARK_WAREHOUSE, _METASTORE or _STAGE say otherwise."""
    home = Path(f"{warehouse}.spark")
    defaults = {
        "SEGMENTS_SPARK_WAREHOUSE": home / "warehouse",
        "SEGMENTS_SPARK_METASTORE": home / "metastore",
        "SEGMENTS_SPARK_STAGE": home / "stage",
    }
    return {name: os.environ.get(name) or str(path) for name, path in defaults.items()}


def _publish_spark(local: duckdb.DuckDBPyConnection, stage: Path) -> PublishReport:
    """Each table whose partitions changed, whole, as <stage>/<schema>/<table>/data.parquet;
    <stage>/<schema>/<table>.json records the partitions written. Timestamps are written
    as UTC instants, which Spark reads as its timestamps."""
    report = PublishReport()
    for table, key in PUBLISHED_TABLES.items():
        folder = stage.joinpath(*table.split("."))
        record = folder.with_suffix(".json")
        wanted = {str(k): n for k, n in _local_partitions(local, table, key).items()}
        try:
            found = json.loads(record.read_text())
        except (OSError, ValueError):
            found = None
        if found is not None and folder.is_dir() and not _changed(wanted, found):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        columns = local.execute(f"describe {table}").fetchall()
        select = ", ".join(
            f'cast("{name}" as timestamptz) as "{name}"' if kind == "TIMESTAMP" else f'"{name}"'
            for name, kind, *_ in columns
        )
        target = str(folder / "data.parquet").replace("'", "''")
        local.execute(f"copy (select {select} from {table}) to '{target}' (format parquet)")
        record.write_text(json.dumps(wanted, sort_keys=True))
        report.partitions_replaced[table] = len(_changed(wanted, found or {}))
        report.rows_copied[table] = sum(wanted.values())
    return report


def _fetch_spark(
    local: duckdb.DuckDBPyConnection, tables: list[str], stage: Path
) -> dict[str, int]:
    copied = {}
    for table in tables:
        files = str(stage / MARTS_SCHEMA / table / "*.parquet").replace("'", "''")
        copied[table] = _replace_mart(local, table, f"read_parquet('{files}')")
    return copied


def publish(
    local: duckdb.DuckDBPyConnection, target: str, environment: dict[str, str]
) -> PublishReport:
    """Brings the target's copies of PUBLISHED_TABLES to the file's rows (see the module's
    docstring). Nothing to do on DuckDB, where the models read the file itself.
    `environment` is the dbt run's (orchestration.dbt_project.dbt_environment)."""
    if target == POSTGRES:
        return _publish_postgres(local)
    if target == SPARK:
        return _publish_spark(local, spark_stage(environment))
    return PublishReport()


def fetch(
    local: duckdb.DuckDBPyConnection, target: str, tables: list[str], environment: dict[str, str]
) -> dict[str, int]:
    """Copies the target's `marts.<table>` for each of `tables` into the file, replacing the
    file's copies in one transaction. Returns the rows of each."""
    if target == DUCKDB or not tables:
        return {}
    local.execute(f"create schema if not exists {MARTS_SCHEMA}")
    local.execute("begin transaction")
    try:
        if target == SPARK:
            copied = _fetch_spark(local, tables, spark_stage(environment))
        else:
            copied = _fetch_postgres(local, tables)
    except BaseException:
        local.execute("rollback")
        raise
    local.execute("commit")
    return copied
