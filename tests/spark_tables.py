"""Tables in and out of a local Spark warehouse, for the portability test. Run as its own
process (`python -m tests.spark_tables load|dump ...`): Spark's embedded metastore admits
one process at a time, and dbt opens it in a process of its own between the two steps.

    load WAREHOUSE SPARK_DIR   the raw and audit tables of a DuckDB warehouse into Spark
    dump SPARK_DIR OUT_DIR     every table of Spark's `marts` database as OUT_DIR/<t>.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path

SPARK_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "INTEGER": "int",
    "DOUBLE": "double",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "DATE": "date",
}


def environment(spark_dir: Path) -> dict[str, str]:
    """What the dbt profile's spark output reads: the same warehouse and metastore."""
    return {
        "SEGMENTS_SPARK_WAREHOUSE": str(spark_dir / "warehouse"),
        "SEGMENTS_SPARK_METASTORE": str(spark_dir / "metastore"),
        "SEGMENTS_SPARK_MASTER": "local[2]",
    }


def session(spark_dir: Path):
    from pyspark.sql import SparkSession

    settings = environment(spark_dir)
    return (
        SparkSession.builder.master(settings["SEGMENTS_SPARK_MASTER"])
        .enableHiveSupport()
        .config("spark.sql.warehouse.dir", settings["SEGMENTS_SPARK_WAREHOUSE"])
        .config("spark.sql.session.timeZone", "UTC")
        .config(
            "javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={settings['SEGMENTS_SPARK_METASTORE']};create=true",
        )
        .getOrCreate()
    )


def ingested_tables(source) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The raw and audit tables of a DuckDB warehouse: (schema, table, [(column, type)])."""
    rows = source.execute(
        "select table_schema, table_name, list((column_name, data_type) order by ordinal_position) "
        "from information_schema.columns join information_schema.tables "
        "using (table_catalog, table_schema, table_name) "
        "where table_schema in ('raw', 'audit') and table_type = 'BASE TABLE' "
        "group by all order by all"
    ).fetchall()
    return [
        (schema, table, [tuple(column) for column in columns]) for schema, table, columns in rows
    ]


def load(warehouse: Path, spark_dir: Path) -> None:
    import duckdb

    source = duckdb.connect(str(warehouse), read_only=True)
    spark = session(spark_dir)
    try:
        for schema, table, columns in ingested_tables(source):
            ddl = ", ".join(f"`{name}` {SPARK_TYPES[kind]}" for name, kind in columns)
            rows = source.execute(f"select * from {schema}.{table}").fetchall()
            spark.sql(f"create database if not exists {schema}")
            spark.createDataFrame(rows, schema=ddl).write.mode("overwrite").saveAsTable(
                f"{schema}.{table}"
            )
    finally:
        spark.stop()
        source.close()


def dump(spark_dir: Path, out_dir: Path) -> None:
    spark = session(spark_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for row in spark.sql("show tables in marts").collect():
            spark.table(f"marts.{row.tableName}").toPandas().to_parquet(
                out_dir / f"{row.tableName}.parquet"
            )
    finally:
        spark.stop()


if __name__ == "__main__":
    command, first, second = sys.argv[1:]
    {"load": load, "dump": dump}[command](Path(first), Path(second))
