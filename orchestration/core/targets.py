"""Where dbt builds the models: the DuckDB file (the default) or another warehouse, chosen
by `segments run --target NAME` (SEGMENTS_DBT_TARGET), NAME an output of
dbt_project/profiles.yml: postgres or spark.

Ingestion always lands in the DuckDB file: its parsing, quarantine, ledger and erasure are
DuckDB's work, and the file stays the landing store whatever the target. With another
target, two copies keep the target and the file in step:

- publish: the tables the models read (PUBLISHED_TABLES, the dbt sources) go from the file
  to the target after ingestion and after each export, compared by partition (ingestion
  batch, export, erasure) with what the file recorded as published, by rows and checksum:
  new batches, a rerun export, the batches erasure deleted rows from. PostgreSQL receives
  the partitions that differ, through ADBC's bulk copy. Spark reads a stage, a folder of
  Parquet files (one per table, rewritten when any of its partitions differs), as
  external tables its dbt runs register first (the on-run-start hook load_stage). While
  the target has not applied every tombstone, the dbt operation `erase_identities`
  deletes the erased people from the models it keeps between runs.
- fetch: after each dbt step, the marts it built come back into the file's `marts`
  schema, where the Great Expectations checks, the export and the report read them. They
  are what an export needs anyway: every audience row is read to be written to a file.
  PostgreSQL is read through ADBC; Spark writes each mart into the stage as it builds it
  (the post-hook unload_mart).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import duckdb
import pyarrow

from orchestration.core.settings import DUCKDB
from orchestration.core.warehouse import quoted_identifier

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


def check_target(name: str) -> str:
    if name not in PIPELINE_TARGETS:
        raise WarehouseError(
            f"target {name!r} is not one the pipeline runs on (choose from "
            f"{', '.join(PIPELINE_TARGETS)}); for the others, see 'Other warehouses' in the "
            "README"
        )
    return name


def _postgres_settings() -> dict[str, str]:
    """The profile's postgres output, from the same variables and defaults."""
    env = os.environ
    return {
        "host": env.get("SEGMENTS_PG_HOST", "localhost"),
        "port": env.get("SEGMENTS_PG_PORT", "5432"),
        "user": env.get("SEGMENTS_PG_USER", "segments"),
        "password": env.get("SEGMENTS_PG_PASSWORD", ""),
        "dbname": env.get("SEGMENTS_PG_DATABASE", "segments"),
    }


def _connect_postgres():
    import adbc_driver_postgresql.dbapi

    settings = _postgres_settings()
    # Every part a query parameter (a host may be a socket folder or an IPv6 address), so
    # nothing of them is parsed as the URI's own syntax.
    uri = "postgresql://?" + urlencode({k: v for k, v in settings.items() if v})
    try:
        return adbc_driver_postgresql.dbapi.connect(uri)
    except Exception as error:  # noqa: BLE001 - the driver's errors have no common base
        reason = " ".join(str(error).split())
        password = settings["password"]
        if password:
            for spelled in {password, quote(password, safe=""), quote_plus(password)}:
                reason = reason.replace(spelled, "***")
        where = f"host {settings['host']}, port {settings['port']}, database {settings['dbname']}"
        raise WarehouseError(f"cannot connect to PostgreSQL ({where}): {reason}") from error


def _quoted(qualified: str) -> str:
    return quoted_identifier(*qualified.split("."))


def _partition_counts(cursor, table: str, key: str) -> dict:
    """{partition: rows} of a table in PostgreSQL. Its text spells a key as DuckDB's does
    (timestamps too: no trailing zeros in the fraction)."""
    cursor.execute(f"select cast({key} as text), count(*) from {_quoted(table)} group by 1")
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


# What the file published to each target, per partition, and how far the target's models
# were erased: kept in the file, so a change that keeps a partition's row count (a rerun
# export of other users) is published too, and an erasure that failed is tried again.
_RECORD_DDL = """
create table if not exists audit.published_partitions (
    target varchar not null, table_name varchar not null, partition_key varchar not null,
    row_count bigint not null, checksum varchar not null
);
create table if not exists audit.target_erasures (
    target varchar not null, tombstones_erased bigint not null
);
"""


def _local_partitions(local: duckdb.DuckDBPyConnection, table: str, key: str) -> dict:
    """{partition: (rows, checksum of its rows)} of a table of the file."""
    rows = local.execute(
        f"select cast({key} as varchar), count(*), cast(sum(hash(t)) as varchar) "
        f"from {table} as t group by all"
    ).fetchall()
    return {partition: (count, checksum) for partition, count, checksum in rows}


def _recorded_partitions(local: duckdb.DuckDBPyConnection, target: str, table: str) -> dict:
    rows = local.execute(
        "select partition_key, row_count, checksum from audit.published_partitions "
        "where target = $target and table_name = $table",
        {"target": target, "table": table},
    ).fetchall()
    return {partition: (count, checksum) for partition, count, checksum in rows}


def _record_partitions(
    local: duckdb.DuckDBPyConnection, target: str, table: str, partitions: dict
) -> None:
    local.execute("begin transaction")
    local.execute(
        "delete from audit.published_partitions where target = $target and table_name = $table",
        {"target": target, "table": table},
    )
    if partitions:
        local.executemany(
            "insert into audit.published_partitions values ($1, $2, $3, $4, $5)",
            [[target, table, k, count, checksum] for k, (count, checksum) in partitions.items()],
        )
    local.execute("commit")


def _changed(wanted: dict, recorded: dict, found_counts: dict | None = None) -> list[str]:
    """Partitions of the file that differ from what was recorded as published, or, when
    the target's own counts are known, from what it holds (a target restored or emptied)."""
    changed = {k for k in wanted.keys() | recorded.keys() if wanted.get(k) != recorded.get(k)}
    if found_counts is not None:
        counts = {k: count for k, (count, _) in wanted.items()}
        changed |= {k for k in counts.keys() | found_counts.keys()
                    if counts.get(k) != found_counts.get(k)}  # fmt: skip
    return sorted(changed)


def erasure_pending(local: duckdb.DuckDBPyConnection, target: str) -> int:
    """The tombstones in the file when the target's models hold people erased since their
    last erase_identities run, else 0."""
    if target == DUCKDB:
        return 0
    local.execute(_RECORD_DDL)
    (tombstones,) = local.execute("select count(*) from audit.erased_identities").fetchall()[0]
    erased = local.execute(
        "select max(tombstones_erased) from audit.target_erasures where target = $target",
        {"target": target},
    ).fetchall()[0][0]
    return tombstones if tombstones > (erased or 0) else 0


def record_erasure(local: duckdb.DuckDBPyConnection, target: str, tombstones: int) -> None:
    local.execute("begin transaction")
    local.execute("delete from audit.target_erasures where target = $target", {"target": target})
    local.execute("insert into audit.target_erasures values ($1, $2)", [target, tombstones])
    local.execute("commit")


def _publish_postgres(local: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> PublishReport:
    report = PublishReport()
    remote = _connect_postgres()
    try:
        cursor = remote.cursor()
        published = {}
        for table, key in tables.items():
            schema, name = table.split(".")
            columns = [row[0] for row in local.execute(f"describe {table}").fetchall()]
            held = _target_columns(cursor, table)
            if held is not None and held != columns:
                raise WarehouseError(
                    f"{table} in PostgreSQL has other columns than the landing store's "
                    f"({', '.join(columns)}): drop it there (with cascade) and run again "
                    "with --full-refresh"
                )
            wanted = _local_partitions(local, table, key)
            found = _partition_counts(cursor, table, key) if held is not None else {}
            changed = _changed(wanted, _recorded_partitions(local, POSTGRES, table), found)
            if not changed and held is not None:
                continue
            cursor.execute(f"create schema if not exists {_quoted(schema)}")
            rows = local.execute(
                f"select * from {table} where cast({key} as varchar) in (select unnest($k))",
                {"k": changed},
            ).to_arrow_table()
            if held is not None:
                keys = pyarrow.table({"k": pyarrow.array(changed, pyarrow.string())})
                cursor.adbc_ingest("changed_keys", keys, mode="replace", temporary=True)
                cursor.execute(
                    f"delete from {_quoted(table)} "
                    f"where cast({key} as text) in (select k from changed_keys)"
                )
            cursor.adbc_ingest(name, rows, mode="create_append", db_schema_name=schema)
            published[table] = wanted
            report.partitions_replaced[table] = len(changed)
            report.rows_copied[table] = rows.num_rows
        remote.commit()
    finally:
        remote.close()
    for table, partitions in published.items():
        _record_partitions(local, POSTGRES, table, partitions)
    return report


def readable_marts(asset_paths) -> list[str]:
    """The tables the checks, the export and the report may read, of the models with these
    asset keys (<schema>/<name>): those of the marts schema."""
    return sorted(path[-1] for path in asset_paths if path[0] == MARTS_SCHEMA)


def _columns_cast(
    local: duckdb.DuckDBPyConnection,
    source: str,
    kind: str,
    cast_to: str,
    by_name: dict[str, str] | None = None,
) -> str:
    """The select list of every column of `source`, those of type `kind` cast to `cast_to`
    (how timestamps cross between the file, naive UTC, and Parquet or Spark, UTC
    instants) and those named in `by_name` to the type given there."""
    by_name = by_name or {}
    columns = local.execute(f"describe select * from {source}").fetchall()

    def column(name: str, column_kind: str) -> str:
        to = by_name.get(name) or (cast_to if column_kind == kind else None)
        quoted = quoted_identifier(name)
        return f"cast({quoted} as {to}) as {quoted}" if to else quoted

    return ", ".join(column(name, column_kind) for name, column_kind, *_ in columns)


def _replace_mart(
    local: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    types: dict[str, str] | None = None,
) -> int:
    """marts.<table> from a relation DuckDB reads, timestamps naive UTC as in the file and
    the columns in `types` cast to theirs."""
    select = _columns_cast(local, source, "TIMESTAMP WITH TIME ZONE", "timestamp", types)
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
            # ADBC reads NUMERIC as text: money comes back as the decimal it was built as.
            cursor.execute(
                "select column_name, numeric_precision, numeric_scale "
                "from information_schema.columns where table_schema = $1 and table_name = $2 "
                "and data_type = 'numeric' and numeric_precision is not null",
                (MARTS_SCHEMA, table),
            )
            decimals = {
                name: f"decimal({precision}, {scale})"
                for name, precision, scale in cursor.fetchall()
            }
            cursor.execute(f"select * from {_quoted(f'{MARTS_SCHEMA}.{table}')}")
            local.register("fetched_rows", cursor.fetch_arrow_table())
            copied[table] = _replace_mart(local, table, "fetched_rows", decimals)
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


def _publish_spark(
    local: duckdb.DuckDBPyConnection, tables: dict[str, str], stage: Path
) -> PublishReport:
    """Each table with a changed partition, whole, as <stage>/<schema>/<table>/data.parquet.
    Timestamps are written as UTC instants, which Spark reads as its timestamps."""
    report = PublishReport()
    for table, key in tables.items():
        folder = stage.joinpath(*table.split("."))
        wanted = _local_partitions(local, table, key)
        recorded = _recorded_partitions(local, SPARK, table)
        changed = _changed(wanted, recorded)
        if (folder / "data.parquet").exists() and not changed:
            continue
        # Forgotten first: a write that dies half way is written again next time.
        _record_partitions(local, SPARK, table, {})
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        select = _columns_cast(local, table, "TIMESTAMP", "timestamptz")
        target = str(folder / "data.parquet").replace("'", "''")
        local.execute(f"copy (select {select} from {table}) to '{target}' (format parquet)")
        _record_partitions(local, SPARK, table, wanted)
        report.partitions_replaced[table] = len(changed)
        report.rows_copied[table] = sum(count for count, _ in wanted.values())
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
    local: duckdb.DuckDBPyConnection,
    target: str,
    environment: dict[str, str],
    tables: tuple[str, ...] = tuple(PUBLISHED_TABLES),
) -> PublishReport:
    """Brings the target's copies of `tables` (of PUBLISHED_TABLES) to the file's rows (see
    the module's docstring). Nothing to do on DuckDB, where the models read the file
    itself. `environment` is the dbt run's (`dbt_commands.dbt_environment`)."""
    if target == DUCKDB:
        return PublishReport()
    local.execute(_RECORD_DDL)
    keyed = {table: PUBLISHED_TABLES[table] for table in tables}
    if target == POSTGRES:
        return _publish_postgres(local, keyed)
    return _publish_spark(local, keyed, spark_stage(environment))


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
