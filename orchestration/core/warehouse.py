"""The DuckDB warehouse file: how every part of the pipeline opens it."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from orchestration.core.settings import SettingsError

# DuckDB would take up to 80% of the machine's memory. Ingestion honours the setting the
# dbt profile reads; its default leaves room for the Python process within 8 GB.
MEMORY_LIMIT_VARIABLE = "SEGMENTS_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "6GB"


def connect(warehouse: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection in UTC, the one time zone the warehouse speaks, within the memory
    limit: what does not fit (a large batch, a big join) spills to <warehouse>.tmp."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(warehouse), read_only=read_only)
    except duckdb.IOException as error:
        raise WarehouseBusyError(
            f"warehouse {warehouse} is in use by another process ({first_line(error)})"
        ) from error
    conn.execute("set TimeZone = 'UTC'")
    memory_limit = os.environ.get(MEMORY_LIMIT_VARIABLE, DEFAULT_MEMORY_LIMIT)
    try:
        conn.execute(f"set memory_limit = {sql_text(memory_limit)}")
    except duckdb.Error as error:
        conn.close()
        raise SettingsError(
            f"{MEMORY_LIMIT_VARIABLE}={memory_limit!r} is not a memory size such as 6GB"
        ) from error
    conn.execute(f"set temp_directory = {sql_text(str(warehouse) + '.tmp')}")
    # DuckDB sizes its thread pool from the machine's cores; a process pinned to fewer
    # (taskset, a container's cpuset) would only oversubscribe them.
    conn.execute(f"set threads = {_usable_cores()}")
    return conn


def quoted_identifier(*parts: str) -> str:
    """schema.table (or any dotted name) quoted for SQL, whatever its characters."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB file: DuckDB allows one writer per file."""


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
