"""Landing zone to warehouse: each file once, every row accounted for.

New files (keyed by path and content hash) of one run form a batch, read in two passes:

1. Decide, in autocommit mode into temp tables: one SQL query per entity classifies each
   row (a typed quarantine reason, or none), and only what the next steps need is kept:
   the reason, the event_id of a candidate event, the raw row of a bad JSON line. Then the
   duplicates among candidates are found. An unreadable file is rejected here, alone.
2. Write, in one transaction: the files are read again and their accepted rows go
   straight into the raw tables, typed and in file and row order, with the quarantine
   and the reconciliation; then the erasures the batch asks for or touches are applied
   (orchestration/ingest/erasure.py). A run that dies leaves the warehouse as it was.

Reading a file twice costs less than keeping copies of every row between the steps: as
text staging tables, such copies took 8 GB for 10M events. Parquet files that share a
schema are read together in one multi-file read. `audit.ingestion_reconciliation` is
also the ledger of ingested files: rows_landed = rows_accepted + rows_quarantined +
rows_duplicate.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from orchestration.core.warehouse import first_line
from orchestration.ingest.erasure import ErasureReport, apply_erasures, ensure_erasure_tables
from orchestration.ingest.file_readers import (
    Columns,
    Source,
    describe,
    file_error,
    local_source,
    source_for,
    tabular_reader,
)
from orchestration.ingest.landing_files import (
    ENTITIES,
    LandedFile,
    WaitingFile,
    already_ingested,
    discover,
    known_hashes,
    record_hashes,
    settle_seconds,
)
from orchestration.ingest.row_rules import ACCEPTED_COLUMNS, DECIDED_KEY, classified

# The tables ingestion writes: the accepted rows, the quarantine and the ledger of files.
LANDING_TABLES = """
create schema if not exists raw;
create schema if not exists audit;
create table if not exists raw.events (
    event_id varchar not null, event_type varchar not null, occurred_at timestamp not null,
    user_id varchar, anonymous_id varchar, session_id varchar, product_id varchar,
    category varchar, price double, revenue double, quantity bigint, order_id varchar,
    duration_seconds double, properties varchar,
    _source_file varchar not null, _source_row bigint not null,
    _batch_id bigint not null, _ingested_at timestamp not null
);
create table if not exists raw.customers (
    customer_id varchar not null, email varchar, phone varchar, signed_up_at timestamp,
    country varchar, consent_email boolean not null, consent_sms boolean not null,
    consent_push boolean not null,
    _source_file varchar not null, _source_row bigint not null,
    _batch_id bigint not null, _ingested_at timestamp not null
);
create table if not exists raw.erasure_requests (
    user_id varchar not null, requested_at timestamp not null,
    _source_file varchar not null, _source_row bigint not null,
    _batch_id bigint not null, _ingested_at timestamp not null
);
create table if not exists audit.quarantined_events (
    entity varchar not null, source_file varchar not null, source_row bigint not null,
    reason varchar not null, raw_row varchar, _batch_id bigint not null,
    _ingested_at timestamp not null
);
create table if not exists audit.ingestion_reconciliation (
    source_file varchar not null, entity varchar not null, file_sha256 varchar not null,
    status varchar not null, error varchar, rows_landed bigint not null,
    rows_accepted bigint not null, rows_quarantined bigint not null,
    rows_duplicate bigint not null, _batch_id bigint not null, _ingested_at timestamp not null
);
create table if not exists audit.landing_file_hashes (
    source_file varchar not null, size bigint not null, modified_ns bigint not null,
    changed_ns bigint not null, inode bigint not null, file_sha256 varchar not null
);
"""


@dataclass
class IngestionReport:
    batch_id: int
    files_ingested: int = 0
    files_skipped: int = 0
    files_waiting: list[str] = field(default_factory=list)
    files_rejected: list[tuple[str, str]] = field(default_factory=list)
    rows_landed: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_by_entity: dict[str, int] = field(default_factory=dict)
    erasure: ErasureReport = field(default_factory=ErasureReport)


def ensure_landing_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(LANDING_TABLES)
    ensure_erasure_tables(conn)


# Events are de-duplicated on event_id: the first row ingested wins, against this batch
# (file order, then row order) and every earlier batch. Only candidates (rows with no
# reason) take part. Ids repeated within the batch are found by grouping on their 64-bit
# hash, a fixed-width key that groups several times faster than text, then ranked by
# their exact value (a hash collision only adds candidates). Ids of earlier batches are
# found by a semi-join that DuckDB builds on this batch's ids and probes with a scan of
# raw.events, rather than building a hash table of every id ever ingested.
_DUPLICATES_SQL = """
    create or replace temp table duplicate_events as
    with repeated as (
        select file_seq, source_row, event_id from decided_events
        where reason is null and hash(event_id) in (
            select hash(event_id) from decided_events where reason is null
            group by hash(event_id) having count(*) > 1)
    ),
    ranked as (
        select file_seq, source_row,
            row_number() over (partition by event_id order by file_seq, source_row) as arrival
        from repeated
    )
    select file_seq, source_row from ranked where arrival > 1
    union
    select file_seq, source_row from decided_events as decided
    where decided.reason is null
        and exists (select 1 from raw.events where raw.events.event_id = decided.event_id)
"""

_READ_ERRORS = (duckdb.Error, OSError, ValueError, EOFError)
# Errors that are no file's fault: the run stops (and can be retried) rather than record
# readable files as rejected, which would keep them out of every later run.
_NOT_THE_FILES_FAULT = (duckdb.OutOfMemoryException, duckdb.InterruptException)


def _execute(
    conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]
) -> duckdb.DuckDBPyConnection:
    """Executes with the parameters the statement names: DuckDB rejects unused ones."""
    named = set(re.findall(r"\$(\w+)", sql))
    return conn.execute(sql, {k: v for k, v in params.items() if k in named})


def _create_scratch(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        "create or replace temp table landed_files (file_seq integer, entity varchar, "
        "source_file varchar, file_sha256 varchar)"
    )
    for entity in ENTITIES:
        key = f", {DECIDED_KEY[entity]} varchar" if entity in DECIDED_KEY else ""
        conn.execute(
            f"create or replace temp table decided_{entity} (file_seq integer, "
            f"source_row bigint, reason varchar, raw_row varchar{key})"
        )


def _drop_decided(conn: duckdb.DuckDBPyConnection) -> None:
    for entity in ENTITIES:
        conn.execute(f"drop table if exists decided_{entity}")


def _drop_scratch(conn: duckdb.DuckDBPyConnection) -> None:
    """Frees what pass 1 kept and the duplicate mask."""
    _drop_decided(conn)
    for table in ("landed_files", "file_counts", "duplicate_events", "quarantined_rows"):
        conn.execute(f"drop table if exists {table}")
    conn.execute("reset variable duplicate_events")


def _plan_sources(
    conn: duckdb.DuckDBPyConnection,
    entity: str,
    files: list[tuple[int, LandedFile]],
    workdir: Path,
    reject: Callable[[LandedFile, BaseException], None],
) -> list[Source]:
    """The reads of one entity's new files, in batch order: Parquet files grouped by schema
    (same column names and types), one read per group; every CSV and JSON Lines file on its
    own (each CSV file has its own dialect, and read_csv numbers no rows within a file)."""
    sources: list[Source] = []
    parquet_groups: dict[object, tuple[Columns, list[tuple[int, LandedFile, str]]]] = {}
    for file_seq, landed in files:
        try:
            if landed.file_format is None:
                raise ValueError(
                    f"unsupported file type {landed.path.name!r} (expected .csv, .parquet, .jsonl)"
                )
            path = local_source(landed, file_seq, workdir)
            described = (
                () if landed.file_format == "jsonl" else describe(conn, landed.file_format, path)
            )
        except _NOT_THE_FILES_FAULT:
            raise
        except _READ_ERRORS as error:
            reject(landed, error)
            continue
        if landed.file_format != "parquet":
            sources.append(source_for(entity, [(file_seq, landed, path)], described))
            continue
        group: object = described
        if any(name.lower() == "file_index" for name, _type in described):
            group = file_seq  # such a column would hide the reader's file_index: read alone
        parquet_groups.setdefault(group, (described, []))[1].append((file_seq, landed, path))
    for described, members in parquet_groups.values():
        sources.append(source_for(entity, members, described))
    return sorted(sources, key=lambda source: source.files[0][0])


def _decide(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
    ingested_at: datetime,
    reject: Callable[[LandedFile, BaseException], None],
    progress: Callable[[str], None],
) -> list[Source]:
    """Pass 1 over one source: its rows' reasons (and the event_ids of candidates) into
    decided_<entity>. In autocommit mode a failed read leaves no rows behind: a failed
    multi-file read is retried file by file, so that only the bad file is rejected.
    Returns the sources that were read."""
    key = DECIDED_KEY.get(source.entity)
    sql = (
        f"insert into decided_{source.entity} select file_seq, source_row, reason, "
        f"case when reason is not null then raw_row end"
        + (f", case when reason is null then {key} end" if key else "")
        + f" from ({classified(source)})"
    )
    try:
        # An INSERT answers with the number of rows it inserted.
        rows = _execute(conn, sql, {**source.params, "ingested_at": ingested_at}).fetchone()[0]
    except _NOT_THE_FILES_FAULT:
        raise
    except _READ_ERRORS as error:
        if len(source.files) == 1:
            reject(source.files[0][1], error)
            return []
        progress(
            f"re-reading {len(source.files)} {source.entity} files one by one: {first_line(error)}"
        )
        return [
            read
            for single in source.one_by_one()
            for read in _decide(conn, single, ingested_at, reject, progress)
        ]
    conn.executemany(
        "insert into landed_files values (?, ?, ?, ?)",
        [(seq, landed.entity, str(landed.path), landed.sha256) for seq, landed, _ in source.files],
    )
    names = (
        f"{source.files[0][1].path.name}"
        if len(source.files) == 1
        else f"{len(source.files)} {source.files[0][1].file_format} files"
    )
    progress(f"read {source.entity}/{names}: {rows:,} rows")
    return [source]


def _fill_raw_rows(conn: duckdb.DuckDBPyConnection, sources: list[Source]) -> None:
    """Reads again the CSV and Parquet files that have quarantined rows and keeps those
    rows whole: the cost of the raw row is paid only for bad rows."""
    bad_files = {
        file_seq
        for (file_seq,) in conn.execute(
            "select distinct file_seq from quarantined_rows where raw_row is null"
        ).fetchall()
    }
    for source in sources:
        for file_seq, landed, path in source.files:
            if file_seq not in bad_files:
                continue
            reader, row_number = tabular_reader(landed.file_format)
            if landed.file_format == "csv":
                raw_row = "to_json(src)"
            else:
                quoted = ['"' + name.replace('"', '""') + '"' for name, _ in source.described]
                pairs = ", ".join(f"{q} := src.{q}" for q in quoted)
                raw_row = f"to_json(struct_pack({pairs}))"
            conn.execute(
                f"""
                update quarantined_rows as bad set raw_row = file_rows.raw_row
                from (select {row_number} as source_row, {raw_row} as raw_row
                      from {reader} as src) as file_rows
                where bad.file_seq = $file_seq and bad.source_row = file_rows.source_row
                """,
                {"source": path, "file_seq": file_seq},
            )


# Per ingested file: rows landed, quarantined and duplicate (the rest were accepted), and
# its row offset among the batch's rows of its entity, in file order.
_FILE_COUNTS_SQL = """
    create or replace temp table file_counts as
    with decided as (
        select file_seq, count(*) as landed, count(reason) as quarantined
        from decided_events group by file_seq
        union all
        select file_seq, count(*), count(reason) from decided_customers group by file_seq
        union all
        select file_seq, count(*), count(reason) from decided_erasure_requests group by file_seq
    ),
    duplicates as (select file_seq, count(*) as duplicate from duplicate_events group by file_seq),
    counted as (
        select file_seq, entity, coalesce(landed, 0) as landed,
            coalesce(quarantined, 0) as quarantined, coalesce(duplicate, 0) as duplicate
        from landed_files left join decided using (file_seq) left join duplicates using (file_seq)
    )
    select *, landed - quarantined - duplicate as accepted,
        sum(landed) over (partition by entity order by file_seq) - landed as row_offset
    from counted
"""


# Of the decided rows, pass 2 needs only the quarantined ones (with the counts and the
# duplicates): they are kept apart, and the decided tables (a row per landed row, at 100M
# events several gigabytes) are dropped before the writes need the memory.
_QUARANTINED_SQL = """
    create or replace temp table quarantined_rows as
    select 'events' as entity, file_seq, source_row, reason, raw_row
    from decided_events where reason is not null
    union all
    select 'customers', file_seq, source_row, reason, raw_row
    from decided_customers where reason is not null
    union all
    select 'erasure_requests', file_seq, source_row, reason, raw_row
    from decided_erasure_requests where reason is not null
"""


# Pass 2 drops duplicate events with a filter, not a join: DuckDB inserts rows in the
# order it reads them only from a query without a join (an anti-join interleaves rows of
# different files), and sorting the batch back into order spills gigabytes at 100M rows.
# Rows in file order keep each row group to about one file (one day of events), so the
# zone maps on occurred_at stay tight for the incremental models. The filter is a bit
# mask over the batch's event rows in file and row order (bit k set: row k is a
# duplicate), each events file starting at its row offset; get_bit takes a 32-bit
# position, enough for 2^31 events a batch.
def _mask_duplicates(conn: duckdb.DuckDBPyConnection, file_count: int) -> list[int]:
    """Sets the variable duplicate_events to the mask; returns the row offset of each
    file, indexed by file_seq (1-based, as SQL lists are)."""
    offsets = dict(
        conn.execute(
            "select file_seq, row_offset from file_counts where entity = 'events'"
        ).fetchall()
    )
    (rows,) = conn.execute(
        "select coalesce(sum(landed), 0) from file_counts where entity = 'events'"
    ).fetchone()
    conn.execute(
        "set variable duplicate_events = (select bitstring_agg("
        f"cast(row_offset + source_row as bigint), 1, {max(rows, 1)}) "
        "from duplicate_events join file_counts using (file_seq))"
    )
    return [offsets.get(file_seq, 0) for file_seq in range(1, file_count + 1)]


_NOT_DUPLICATE = (
    "coalesce(get_bit(getvariable('duplicate_events'), "
    "cast(($row_offsets)[cast(file_seq as bigint)] + source_row - 1 as integer)), 0) = 0"
)


def _write_accepted(
    conn: duckdb.DuckDBPyConnection, source: Source, params: dict[str, object]
) -> int:
    """Pass 2 over one source: its accepted rows, typed, straight into the raw table in
    file and row order (the order of the read). Returns the rows written."""
    sql = (
        f"insert into raw.{source.entity} select {ACCEPTED_COLUMNS[source.entity]}, "
        f"source_file, source_row, $batch_id, $ingested_at "
        f"from ({classified(source)}) where reason is null"
    )
    if source.entity == "events":
        sql += f" and {_NOT_DUPLICATE}"
    return _execute(conn, sql, {**source.params, **params}).fetchone()[0]


def _write_batch(
    conn: duckdb.DuckDBPyConnection, sources: list[Source], params: dict[str, object]
) -> None:
    """Pass 2, inside the transaction: accepted rows, quarantined rows and the
    reconciliation of every file that was read."""
    accepted = dict(conn.execute("select file_seq, accepted from file_counts").fetchall())
    for source in sources:
        written = _write_accepted(conn, source, params)
        # The files are read again: they must give what pass 1 decided, or the
        # reconciliation would not add up.
        if written != sum(accepted[file_seq] for file_seq, _, _ in source.files):
            names = ", ".join(landed.path.name for _, landed, _ in source.files)
            raise RuntimeError(f"landing files changed while being ingested: {names}")
    _execute(
        conn,
        """
        insert into audit.quarantined_events
        select bad.entity, landed_files.source_file, bad.source_row, bad.reason, bad.raw_row,
            $batch_id, $ingested_at
        from quarantined_rows as bad join landed_files using (file_seq)
        order by bad.file_seq, bad.source_row
        """,
        params,
    )
    _execute(
        conn,
        """
        insert into audit.ingestion_reconciliation
        select source_file, landed_files.entity, file_sha256, 'ingested', null, landed,
            accepted, quarantined, duplicate, $batch_id, $ingested_at
        from landed_files join file_counts using (file_seq) order by file_seq
        """,
        params,
    )


def ingest(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    ingested_at: datetime,
    progress: Callable[[str], None] = lambda _message: None,
) -> IngestionReport:
    """Ingests every new file under landing_dir in one transaction."""
    ensure_landing_tables(conn)
    batch_id = conn.execute(
        "select coalesce(max(_batch_id), 0) + 1 from audit.ingestion_reconciliation"
    ).fetchone()[0]
    report = IngestionReport(batch_id=batch_id)
    params = {"batch_id": batch_id, "ingested_at": ingested_at}
    seen = already_ingested(conn)

    new_files: list[tuple[int, LandedFile]] = []
    found_files: list[LandedFile] = []
    rejected: list[tuple[Path, str, str, str]] = []
    settle = settle_seconds()
    for found in discover(landing_dir, settle, known_hashes(conn)):
        if isinstance(found, WaitingFile):
            report.files_waiting.append(str(found.path))
            progress(
                f"waiting for {found.path.name}: changed {found.seconds_since_change:.0f} s "
                f"ago, read once unchanged for {settle:.0f} s"
            )
            continue
        if isinstance(found, tuple):
            path, entity, error = found
            rejected.append((path, entity, "", error))
            continue
        found_files.append(found)
        if found.key in seen:
            report.files_skipped += 1
            continue
        seen.add(found.key)
        new_files.append((len(new_files) + 1, found))

    def reject(landed: LandedFile, error: BaseException) -> None:
        reason = file_error(error)
        rejected.append((landed.path, landed.entity, landed.sha256, reason))
        progress(f"rejected {landed.path.name}: {reason}")

    _create_scratch(conn)
    try:
        with tempfile.TemporaryDirectory(prefix="segments-ingest-") as workdir:
            # Pass 1 reads and decides in autocommit mode, into temp tables: in DuckDB a
            # failed statement aborts the enclosing transaction, and one unreadable file
            # must not sink the batch. Only the writes (pass 2) share one transaction.
            sources: list[Source] = []
            for entity in ENTITIES:
                files = [(file_seq, f) for file_seq, f in new_files if f.entity == entity]
                for source in _plan_sources(conn, entity, files, Path(workdir), reject):
                    sources.extend(_decide(conn, source, ingested_at, reject, progress))
            conn.execute(_DUPLICATES_SQL)
            conn.execute(_FILE_COUNTS_SQL)
            conn.execute(_QUARANTINED_SQL)
            _drop_decided(conn)
            _fill_raw_rows(conn, sources)
            row_offsets = _mask_duplicates(conn, len(new_files))

            conn.execute("begin transaction")
            try:
                _write_batch(conn, sources, {**params, "row_offsets": row_offsets})
                for path, entity, sha, error in rejected:
                    conn.execute(
                        "insert into audit.ingestion_reconciliation values ($path, $entity, "
                        "$sha, 'rejected', $error, 0, 0, 0, 0, $batch_id, $ingested_at)",
                        {**params, "path": str(path), "entity": entity, "sha": sha, "error": error},
                    )
                    report.files_rejected.append((str(path), error))
                report.erasure = apply_erasures(conn, batch_id, ingested_at)
                record_hashes(conn, found_files)
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise
    finally:
        _drop_scratch(conn)

    report.files_ingested = sum(len(source.files) for source in sources)
    if report.erasure.identities:
        progress(
            f"erased {report.erasure.identities:,} identities "
            f"({report.erasure.requests:,} new requests): "
            f"{report.erasure.total_rows_removed:,} rows removed from "
            f"{len(report.erasure.rows_removed)} tables"
        )
    totals = conn.execute(
        """
        select coalesce(sum(rows_landed), 0), coalesce(sum(rows_accepted), 0),
            coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_duplicate), 0)
        from audit.ingestion_reconciliation where _batch_id = $batch_id
        """,
        {"batch_id": batch_id},
    ).fetchone()
    (report.rows_landed, report.rows_accepted, report.rows_quarantined, report.rows_duplicate) = (
        totals
    )
    report.quarantined_by_reason = dict(
        conn.execute(
            "select reason, count(*) from audit.quarantined_events where _batch_id = $batch_id "
            "group by reason order by reason",
            {"batch_id": batch_id},
        ).fetchall()
    )
    report.accepted_by_entity = dict(
        conn.execute(
            "select entity, sum(rows_accepted) from audit.ingestion_reconciliation "
            "where _batch_id = $batch_id group by entity order by entity",
            {"batch_id": batch_id},
        ).fetchall()
    )
    return report
