"""Where dbt builds the models: the DuckDB file (the default) or another warehouse, chosen
by `segments run --target NAME` (SEGMENTS_DBT_TARGET), NAME an output of
dbt_project/profiles.yml.

Ingestion always lands in the DuckDB file: its parsing, quarantine, ledger and erasure are
DuckDB's work, and the file stays the landing store whatever the target. With another
target, two copies keep the target and the file in step:

- publish: the tables the models read (PUBLISHED_TABLES) go from the file to the target
  after ingestion and after each export. Each table is compared by partition (ingestion
  batch, export, erasure) and only partitions whose row counts differ are replaced: new
  batches, a rerun export, and the batches erasure deleted rows from. When erasure added
  tombstones, the dbt operation `erase_identities` then deletes the erased people from the
  models the target keeps between runs.
- fetch: after each dbt step, the marts it built come back into the file's `marts`
  schema, where the Great Expectations checks, the export and the report read them. They
  are what an export needs anyway: every audience row is read to be written to a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import duckdb

DUCKDB = "duckdb"
# Targets the pipeline loads and reads itself; other outputs of profiles.yml (Spark,
# BigQuery, Snowflake) run dbt over raw tables loaded as the README describes.
PIPELINE_TARGETS = (DUCKDB, "postgres")
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

    uri = postgres_uri()
    try:
        return adbc_driver_postgresql.dbapi.connect(uri)
    except Exception as error:  # noqa: BLE001 - the driver's errors have no common base
        where = uri.split("@", 1)[-1]
        raise WarehouseError(f"cannot connect to PostgreSQL at {where}: {error}") from error


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


def publish(local: duckdb.DuckDBPyConnection, target: str) -> PublishReport:
    """Brings the target's copies of PUBLISHED_TABLES to the file's rows (see the module's
    docstring). Nothing to do on DuckDB, where the models read the file itself."""
    report = PublishReport()
    if target == DUCKDB:
        return report
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
            wanted = dict(
                local.execute(f"select {key}, count(*) from {table} group by all").fetchall()
            )
            found = _partition_counts(cursor, table, key) if held is not None else {}
            changed = sorted(
                k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k)
            )
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


def fetch(local: duckdb.DuckDBPyConnection, target: str, tables: list[str]) -> dict[str, int]:
    """Copies the target's `marts.<table>` for each of `tables` into the file, replacing the
    file's copy, all in one transaction. Returns the rows of each."""
    if target == DUCKDB or not tables:
        return {}
    remote = _connect_postgres()
    copied = {}
    try:
        cursor = remote.cursor()
        local.execute(f"create schema if not exists {MARTS_SCHEMA}")
        local.execute("begin transaction")
        for table in tables:
            cursor.execute(f"select * from {_quoted(f'{MARTS_SCHEMA}.{table}')}")
            rows = cursor.fetch_arrow_table()
            local.register("fetched_rows", rows)
            local.execute(
                f"create or replace table {MARTS_SCHEMA}.{table} as select * from fetched_rows"
            )
            local.unregister("fetched_rows")
            copied[table] = rows.num_rows
        local.execute("commit")
    finally:
        remote.close()
    return copied
