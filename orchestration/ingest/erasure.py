"""Erasure: once a request is ingested, the person's data is gone from the whole warehouse.

Erasure runs inside ingestion's transaction, right after a batch is written, so no run
(of dbt, a check or an export) ever reads a warehouse that holds an erased person's rows.
It deletes, from every table of every schema (raw, audit, and each model dbt built), the
rows that carry an erased identity in a column of IDENTITY_COLUMNS, and the quarantined
raw rows that quote one of them or their email address. The identities are the requested
user_id and every anonymous_id ever seen with it (the visitor's pre-login events).

The request rows go too. What stays is what a suppression list needs and nothing more:
`audit.erased_identities` keeps the sha256 of each erased identity, so rows of that
person landed later are erased on arrival, and `audit.erasure_log` records each request
(its file, row, requested_at and when it was applied), without the identity itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from orchestration.core.warehouse import quoted_identifier

# Columns whose value is a person's identity, wherever a table holds them.
IDENTITY_COLUMNS = ("user_id", "anonymous_id", "customer_id", "event_user_id")

# Tables of raw rows landed this batch, with the identity columns they carry.
_LANDED_IDENTITIES = {
    "raw.events": ("user_id", "anonymous_id"),
    "raw.customers": ("customer_id",),
    "raw.erasure_requests": ("user_id",),
}
_QUARANTINED_IDENTITY_FIELDS = ("user_id", "anonymous_id", "customer_id")


# What erasure keeps: the hashes of erased identities (so later files are erased on
# arrival) and one row per request applied.
ERASURE_TABLES = """
create schema if not exists audit;
create table if not exists audit.erased_identities (
    identity_sha256 varchar not null, erased_at timestamp not null
);
create table if not exists audit.erasure_log (
    request_file varchar not null, request_row bigint not null, requested_at timestamp not null,
    applied_at timestamp not null, _batch_id bigint not null
);
"""


def ensure_erasure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(ERASURE_TABLES)


@dataclass
class ErasureReport:
    requests: int = 0
    identities: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows_removed(self) -> int:
        return sum(self.rows_removed.values())


def _collect_identities(conn: duckdb.DuckDBPyConnection, batch_id: int) -> None:
    """Fills the temp table erased_now with every identity this batch erases: the user_ids
    requested in it, the identities of its rows that were erased before (late arrivals),
    and the anonymous_ids ever seen with any of them. Late arrivals are looked for only
    once someone has been erased: hashing every id of a large batch is not free."""
    (anyone_erased,) = conn.execute(
        "select exists (select 1 from audit.erased_identities)"
    ).fetchone()
    landed = " union ".join(
        f"select {column} as identity from {table} "
        f"where _batch_id = $batch_id and {column} is not null"
        for table, columns in _LANDED_IDENTITIES.items()
        for column in columns
    )
    quarantined = " union ".join(
        # A malformed line is quarantined as it came: read it as JSON only where it is.
        f"select case when json_valid(raw_row) then json_extract_string(raw_row, '$.{name}') "
        f"end as identity from audit.quarantined_events where _batch_id = $batch_id"
        for name in _QUARANTINED_IDENTITY_FIELDS
    )
    conn.execute(
        f"""
        create or replace temp table erased_now as
        with candidates as (
            select distinct identity from ({landed} union {quarantined}) as found
            where identity is not null
        ),
        requested as (
            select user_id as identity from raw.erasure_requests where _batch_id = $batch_id
            union
            select identity from candidates
            where $anyone_erased
                and sha256(identity) in (select identity_sha256 from audit.erased_identities)
        )
        select identity from requested
        union
        select distinct anonymous_id from raw.events
        where anonymous_id is not null and user_id in (select identity from requested)
        """,
        {"batch_id": batch_id, "anyone_erased": anyone_erased},
    )


def _identity_tables(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str]]]:
    """Every base table with an identity column: (schema, table, its identity columns)."""
    names = ", ".join(f"'{column}'" for column in IDENTITY_COLUMNS)
    rows = conn.execute(
        f"""
        select table_schema, table_name, list(column_name order by ordinal_position)
        from information_schema.columns
        join information_schema.tables using (table_catalog, table_schema, table_name)
        where table_type = 'BASE TABLE' and column_name in ({names})
            and table_catalog = current_database()
        group by table_schema, table_name
        order by table_schema, table_name
        """
    ).fetchall()
    return [(schema, table, columns) for schema, table, columns in rows]


def apply_erasures(
    conn: duckdb.DuckDBPyConnection, batch_id: int, applied_at: datetime
) -> ErasureReport:
    """Erases, inside the caller's transaction, every identity the batch `batch_id` asks
    to erase or brings back. Returns what was removed, by table (no identities)."""
    report = ErasureReport()
    params = {"batch_id": batch_id, "applied_at": applied_at}
    _collect_identities(conn, batch_id)
    report.identities = conn.execute("select count(*) from erased_now").fetchone()[0]
    if not report.identities:
        conn.execute("drop table erased_now")
        return report

    report.requests = conn.execute(
        """
        insert into audit.erasure_log
        select _source_file, _source_row, requested_at, $applied_at, $batch_id
        from raw.erasure_requests where _batch_id = $batch_id
        order by _source_file, _source_row
        """,
        params,
    ).fetchone()[0]
    conn.execute(
        """
        insert into audit.erased_identities
        select distinct sha256(identity), $applied_at from erased_now
        where sha256(identity) not in (select identity_sha256 from audit.erased_identities)
        """,
        {"applied_at": applied_at},
    )
    # Quarantined rows are raw text: they go when they quote an erased identity or the
    # email address of an erased customer, as a JSON string.
    conn.execute(
        """
        create or replace temp table erased_texts as
        select to_json(identity) as quoted from erased_now
        union
        select to_json(email) from raw.customers
        where email is not null and customer_id in (select identity from erased_now)
        """
    )
    report.rows_removed["audit.quarantined_events"] = conn.execute(
        """
        delete from audit.quarantined_events as bad
        where exists (select 1 from erased_texts where contains(bad.raw_row, erased_texts.quoted))
        """
    ).fetchone()[0]
    for schema, table, columns in _identity_tables(conn):
        matches = " or ".join(
            f'"{column}" in (select identity from erased_now)' for column in columns
        )
        removed = conn.execute(f"delete from {quoted_identifier(schema, table)} where {matches}")
        report.rows_removed[f"{schema}.{table}"] = removed.fetchone()[0]
    conn.execute("drop table erased_texts")
    conn.execute("drop table erased_now")
    report.rows_removed = {name: n for name, n in report.rows_removed.items() if n}
    return report
