"""Landing zone to warehouse: each file once, every row accounted for.

New files (keyed by path and content hash) of one run form a batch. Their rows are
staged as text, classified by one SQL query (accepted, quarantined with a typed reason,
or a duplicate of an event already ingested), and written in one transaction, so a run
that dies leaves the warehouse as it was. `audit.ingestion_reconciliation` is also the
ledger of ingested files: rows_landed = rows_accepted + rows_quarantined + rows_duplicate.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

ENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": (
        "event_id",
        "event_type",
        "occurred_at",
        "user_id",
        "anonymous_id",
        "session_id",
        "product_id",
        "category",
        "price",
        "revenue",
        "quantity",
        "order_id",
        "duration_seconds",
        "properties",
    ),
    "customers": (
        "customer_id",
        "email",
        "phone",
        "signed_up_at",
        "country",
        "consent_email",
        "consent_sms",
        "consent_push",
    ),
    "erasure_requests": ("user_id", "requested_at"),
}
ENTITIES = tuple(ENTITY_COLUMNS)
FORMATS = ("csv", "parquet", "jsonl")
# A JSON Lines file is read as one text column per line; this separator never occurs in text.
_LINE_SEPARATOR = "chr(30)"
# DuckDB evaluates both sides of AND, and json_type fails on invalid JSON: guard it in a CASE.
_IS_JSON_OBJECT = "coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false)"

QUARANTINE_REASONS = (
    "malformed_row",
    "missing_event_id",
    "missing_event_type",
    "unparseable_timestamp",
    "missing_identity",
    "invalid_number",
    "negative_amount",
    "malformed_properties",
    "future_timestamp",
    "missing_customer_id",
    "missing_user_id",
)

WAREHOUSE_DDL = """
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
create table if not exists audit.export_log (
    export_id varchar not null, segment varchar not null, user_id varchar not null,
    entered_at timestamp not null, exported_at timestamp not null
);
create table if not exists audit.ingestion_reconciliation (
    source_file varchar not null, entity varchar not null, file_sha256 varchar not null,
    status varchar not null, error varchar, rows_landed bigint not null,
    rows_accepted bigint not null, rows_quarantined bigint not null,
    rows_duplicate bigint not null, _batch_id bigint not null, _ingested_at timestamp not null
);
"""


@dataclass(frozen=True)
class LandedFile:
    path: Path
    entity: str
    file_format: str | None  # None: not a format we read
    gzipped: bool
    sha256: str

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.path), self.sha256)


@dataclass
class IngestionReport:
    batch_id: int
    files_ingested: int = 0
    files_skipped: int = 0
    files_rejected: list[tuple[str, str]] = field(default_factory=list)
    rows_landed: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_by_entity: dict[str, int] = field(default_factory=dict)


def connect(warehouse: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection in UTC, the one time zone the warehouse speaks."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(warehouse), read_only=read_only)
    except duckdb.IOException as error:
        raise WarehouseBusyError(
            f"warehouse {warehouse} is in use by another process ({_first_line(error)})"
        ) from error
    conn.execute("set TimeZone = 'UTC'")
    return conn


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB file: DuckDB allows one writer per file."""


def ensure_warehouse(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(WAREHOUSE_DDL)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _file_format(name: str) -> tuple[str | None, bool]:
    lowered = name.lower()
    gzipped = lowered.endswith(".gz")
    if gzipped:
        lowered = lowered[:-3]
    suffix = lowered.rsplit(".", 1)[-1] if "." in lowered else ""
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl", gzipped
    return (suffix if suffix in FORMATS else None), gzipped


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def discover(landing_dir: Path) -> Iterator[LandedFile | tuple[Path, str, str]]:
    """Every file under landing/<entity>/, in a stable order. Yields a LandedFile, or
    (path, entity, error) for a file that cannot even be hashed."""
    root = landing_dir.resolve()
    for entity in ENTITIES:
        folder = landing_dir / entity
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if not p.is_dir()):
            if any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue  # hidden files: editors' swap files, partial uploads
            file_format, gzipped = _file_format(path.name)
            try:
                if not path.resolve().is_relative_to(root):
                    raise PermissionError("links outside the landing zone are not read")
                yield LandedFile(path, entity, file_format, gzipped, _sha256(path))
            except OSError as error:
                yield (path, entity, _first_line(error))


def _select_columns(entity: str, available: list[str], source_alias: str) -> str:
    """Canonical columns as trimmed text (NULL when absent or blank), matching names
    case-insensitively."""
    by_name = {name.strip().lower(): name for name in available}
    selected = []
    for column in ENTITY_COLUMNS[entity]:
        original = by_name.get(column)
        if original is None:
            selected.append(f"cast(null as varchar) as {column}")
        else:
            quoted = '"' + original.replace('"', '""') + '"'
            selected.append(
                f"nullif(trim(cast({source_alias}.{quoted} as varchar)), '') as {column}"
            )
    return ", ".join(selected)


def _json_columns(entity: str) -> str:
    selected = []
    for column in ENTITY_COLUMNS[entity]:
        selected.append(
            f"case when {_IS_JSON_OBJECT} then "
            f"nullif(trim(json_extract_string(line, '$.\"{column}\"')), '') end as {column}"
        )
    return ", ".join(selected)


def _local_source(landed: LandedFile, file_seq: int, workdir: Path) -> str:
    """The path DuckDB reads: a gzipped Parquet file is unpacked first."""
    if landed.file_format == "parquet" and landed.gzipped:
        unpacked = workdir / f"{file_seq}.parquet"
        if not unpacked.exists():
            with gzip.open(landed.path, "rb") as packed, unpacked.open("wb") as out:
                shutil.copyfileobj(packed, out)
        return str(unpacked)
    return str(landed.path)


def _tabular_reader(
    conn: duckdb.DuckDBPyConnection, landed: LandedFile, source: str
) -> tuple[str, str, list[str], str]:
    """For a CSV or Parquet file: the reader, its 1-based row number, its columns, and
    the expression of a row as a JSON object."""
    if landed.file_format == "csv":
        reader = "read_csv($source, all_varchar = true, header = true, hive_partitioning = false)"
        row_number = "row_number() over ()"
    else:
        reader = "read_parquet($source, file_row_number = true, hive_partitioning = false)"
        row_number = "src.file_row_number + 1"
    described = conn.execute(f"describe select * from {reader}", {"source": source}).fetchall()
    available = [row[0] for row in described if row[0] != "file_row_number"]
    if landed.file_format == "csv":
        raw_row = "to_json(src)"
    else:
        quoted = ['"' + name.replace('"', '""') + '"' for name in available]
        raw_row = "to_json(struct_pack(" + ", ".join(f"{q} := src.{q}" for q in quoted) + "))"
    return reader, row_number, available, raw_row


def _stage_file(
    conn: duckdb.DuckDBPyConnection, landed: LandedFile, file_seq: int, workdir: Path
) -> int:
    """Appends the file's rows to the staging table of its entity; returns rows landed.
    A JSON line is kept as its raw row; for CSV and Parquet the raw row is built later,
    only for the rows that are quarantined (_fill_raw_rows)."""
    path = landed.path
    if landed.file_format is None:
        raise ValueError(f"unsupported file type {path.name!r} (expected .csv, .parquet, .jsonl)")
    source = _local_source(landed, file_seq, workdir)
    staging = f"landed_{landed.entity}"
    prefix = f"{file_seq} as file_seq, $path as source_file"
    if landed.file_format == "jsonl":
        reader = (
            f"read_csv($source, columns = {{'line': 'VARCHAR'}}, header = false, "
            f"delim = {_LINE_SEPARATOR}, quote = '', escape = '', auto_detect = false)"
        )
        query = (
            f"insert into {staging} select {prefix}, row_number() over () as source_row, "
            f"line as raw_row, {_IS_JSON_OBJECT} as is_readable, "
            f"{_json_columns(landed.entity)} from {reader} where trim(line) <> ''"
        )
    else:
        reader, row_number, available, _raw_row = _tabular_reader(conn, landed, source)
        query = (
            f"insert into {staging} select {prefix}, {row_number} as source_row, "
            f"null as raw_row, true as is_readable, "
            f"{_select_columns(landed.entity, available, 'src')} from {reader} as src"
        )
    # An INSERT answers with the number of rows it inserted.
    return conn.execute(query, {"source": source, "path": str(path)}).fetchone()[0]


def _fill_raw_rows(
    conn: duckdb.DuckDBPyConnection, staged: list[tuple[int, LandedFile]], workdir: Path
) -> None:
    """Reads again the CSV and Parquet files that have quarantined rows and keeps those
    rows whole: the cost of the raw row is paid only for bad rows."""
    for entity in ENTITIES:
        bad_files = {
            file_seq
            for (file_seq,) in conn.execute(
                f"select distinct file_seq from decided_{entity} "
                "where reason is not null and raw_row is null"
            ).fetchall()
        }
        for file_seq, landed in staged:
            if file_seq not in bad_files:
                continue
            source = _local_source(landed, file_seq, workdir)
            reader, row_number, _available, raw_row = _tabular_reader(conn, landed, source)
            conn.execute(
                f"""
                update decided_{entity} as decided set raw_row = file_rows.raw_row
                from (select {row_number} as source_row, {raw_row} as raw_row
                      from {reader} as src) as file_rows
                where decided.file_seq = $file_seq and decided.reason is not null
                    and decided.source_row = file_rows.source_row
                """,
                {"source": source, "file_seq": file_seq},
            )


# One query per entity turns staged text rows into (reason, typed columns). The first
# failing rule names the reason; rows with no reason are candidates for acceptance.
_CLASSIFY_SQL = {
    "events": """
        create or replace temp view classified_events as
        with parsed as (
            select *,
                timezone('UTC', try_cast(occurred_at as timestamptz)) as occurred_at_utc,
                try_cast(price as double) as price_value,
                try_cast(revenue as double) as revenue_value,
                try_cast(quantity as double) as quantity_value,
                try_cast(duration_seconds as double) as duration_value
            from landed_events
        )
        select *,
            case
                when not is_readable then 'malformed_row'
                when event_id is null then 'missing_event_id'
                when event_type is null then 'missing_event_type'
                when occurred_at_utc is null then 'unparseable_timestamp'
                when user_id is null and anonymous_id is null then 'missing_identity'
                when (price is not null and not coalesce(isfinite(price_value), false))
                  or (revenue is not null and not coalesce(isfinite(revenue_value), false))
                  or (quantity is not null and not coalesce(
                        isfinite(quantity_value) and quantity_value = floor(quantity_value), false))
                  or (duration_seconds is not null
                        and not coalesce(isfinite(duration_value), false))
                    then 'invalid_number'
                when price_value < 0 or revenue_value < 0 or quantity_value < 0
                    then 'negative_amount'
                when properties is not null and not (
                    coalesce(json_valid(properties), false)
                    and json_type(case when json_valid(properties) then properties end)
                        = 'OBJECT')
                    then 'malformed_properties'
                when occurred_at_utc > $ingested_at + interval 1 day then 'future_timestamp'
            end as reason
        from parsed
    """,
    "customers": """
        create or replace temp view classified_customers as
        with parsed as (
            select *, timezone('UTC', try_cast(signed_up_at as timestamptz)) as signed_up_at_utc
            from landed_customers
        )
        select *,
            case
                when not is_readable then 'malformed_row'
                when customer_id is null then 'missing_customer_id'
                when signed_up_at is not null and signed_up_at_utc is null
                    then 'unparseable_timestamp'
            end as reason
        from parsed
    """,
    "erasure_requests": """
        create or replace temp view classified_erasure_requests as
        with parsed as (
            select *, timezone('UTC', try_cast(requested_at as timestamptz)) as requested_at_utc
            from landed_erasure_requests
        )
        select *,
            case
                when not is_readable then 'malformed_row'
                when user_id is null then 'missing_user_id'
                when requested_at is not null and requested_at_utc is null
                    then 'unparseable_timestamp'
            end as reason
        from parsed
    """,
}

_CONSENT = "coalesce(lower({0}) in ('true', 't', '1', 'yes', 'y'), false)"

# Accepted rows, typed. Events are de-duplicated on event_id: the first row ingested wins,
# against this batch (file order, then row order) and every earlier batch. Each entry is
# two statements: deciding (a temp table), then inserting the accepted rows.
_ACCEPT_SQL = {
    "events": """
        create or replace temp table decided_events as
        select *,
            reason is null
              and row_number() over (
                    partition by reason is null, event_id order by file_seq, source_row) = 1
              and coalesce(event_id not in (select event_id from raw.events), false) as is_accepted
        from classified_events;
        insert into raw.events
        select event_id, event_type, occurred_at_utc, user_id, anonymous_id, session_id,
            product_id, category, price_value, revenue_value, cast(quantity_value as bigint),
            order_id, duration_value,
            case when properties is not null then cast(json(properties) as varchar) end,
            source_file, source_row, $batch_id, $ingested_at
        from decided_events where is_accepted
        order by file_seq, source_row
    """,
    "customers": """
        create or replace temp table decided_customers as
        select *, reason is null as is_accepted from classified_customers;
        insert into raw.customers
        select customer_id, email, phone, signed_up_at_utc, country,
            {consent_email}, {consent_sms}, {consent_push},
            source_file, source_row, $batch_id, $ingested_at
        from decided_customers where is_accepted
        order by file_seq, source_row
    """.format(
        consent_email=_CONSENT.format("consent_email"),
        consent_sms=_CONSENT.format("consent_sms"),
        consent_push=_CONSENT.format("consent_push"),
    ),
    "erasure_requests": """
        create or replace temp table decided_erasure_requests as
        select *, reason is null as is_accepted from classified_erasure_requests;
        insert into raw.erasure_requests
        select user_id, coalesce(requested_at_utc, $ingested_at),
            source_file, source_row, $batch_id, $ingested_at
        from decided_erasure_requests where is_accepted
        order by file_seq, source_row
    """,
}


def _create_staging(conn: duckdb.DuckDBPyConnection) -> None:
    for entity, columns in ENTITY_COLUMNS.items():
        typed = ", ".join(f"{c} varchar" for c in columns)
        conn.execute(
            f"create or replace temp table landed_{entity} (file_seq integer, source_file "
            f"varchar, source_row bigint, raw_row varchar, is_readable boolean, {typed})"
        )


def already_ingested(conn: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    rows = conn.execute(
        "select source_file, file_sha256 from audit.ingestion_reconciliation"
    ).fetchall()
    return {(path, sha) for path, sha in rows}


def pending_files(landing_dir: Path, warehouse: Path) -> list[LandedFile]:
    """Files under the landing zone not yet ingested (for sensors and dry runs)."""
    seen: set[tuple[str, str]] = set()
    if warehouse.exists():
        conn = connect(warehouse, read_only=True)
        try:
            if conn.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = 'audit' and table_name = 'ingestion_reconciliation'"
            ).fetchone()[0]:
                seen = already_ingested(conn)
        finally:
            conn.close()
    return [f for f in discover(landing_dir) if isinstance(f, LandedFile) and f.key not in seen]


def ingest(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    ingested_at: datetime,
    progress: Callable[[str], None] = lambda _message: None,
) -> IngestionReport:
    """Ingests every new file under landing_dir in one transaction."""
    ensure_warehouse(conn)
    batch_id = conn.execute(
        "select coalesce(max(_batch_id), 0) + 1 from audit.ingestion_reconciliation"
    ).fetchone()[0]
    report = IngestionReport(batch_id=batch_id)
    params = {"batch_id": batch_id, "ingested_at": ingested_at}
    seen = already_ingested(conn)

    # Files are staged, classified and decided in autocommit mode into temp tables: in
    # DuckDB a failed statement aborts the enclosing transaction, and one unreadable file
    # must not sink the batch. Only the writes to the warehouse share one transaction.
    _create_staging(conn)
    staged: list[tuple[int, LandedFile]] = []
    rejected: list[tuple[Path, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="segments-ingest-") as workdir:
        for found in discover(landing_dir):
            if isinstance(found, tuple):
                path, entity, error = found
                rejected.append((path, entity, "", error))
                continue
            if found.key in seen:
                report.files_skipped += 1
                continue
            seen.add(found.key)
            file_seq = len(staged) + len(rejected) + 1
            try:
                rows = _stage_file(conn, found, file_seq, Path(workdir))
            except (duckdb.Error, OSError, ValueError, EOFError, gzip.BadGzipFile) as error:
                # A file that fails half-read leaves no rows: drop what it staged.
                conn.execute(f"delete from landed_{found.entity} where file_seq = {file_seq}")
                rejected.append((found.path, found.entity, found.sha256, _first_line(error)))
                progress(f"rejected {found.path.name}: {_first_line(error)}")
                continue
            staged.append((file_seq, found))
            progress(f"read {found.entity}/{found.path.name}: {rows:,} rows")

        inserts = {}
        for entity in ENTITIES:
            # A view takes no parameters: ingested_at is our own datetime, spliced as a literal.
            stamp = ingested_at.strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute(_CLASSIFY_SQL[entity].replace("$ingested_at", f"timestamp '{stamp}'"))
            decide, insert = _ACCEPT_SQL[entity].split(";", 1)
            conn.execute(decide)
            inserts[entity] = insert
        _fill_raw_rows(conn, staged, Path(workdir))

    conn.execute("begin transaction")
    try:
        for entity in ENTITIES:
            conn.execute(inserts[entity], params)
            conn.execute(
                f"""
                insert into audit.quarantined_events
                select '{entity}', source_file, source_row, reason, raw_row, $batch_id,
                    $ingested_at
                from decided_{entity} where reason is not null order by file_seq, source_row
                """,
                params,
            )
        for file_seq, landed in staged:
            conn.execute(
                f"""
                insert into audit.ingestion_reconciliation
                select $path, $entity, $sha, 'ingested', null, count(*),
                    count(*) filter (where is_accepted),
                    count(*) filter (where reason is not null),
                    count(*) filter (where reason is null and not is_accepted),
                    $batch_id, $ingested_at
                from decided_{landed.entity} where file_seq = $file_seq
                """,
                {
                    **params,
                    "path": str(landed.path),
                    "entity": landed.entity,
                    "sha": landed.sha256,
                    "file_seq": file_seq,
                },
            )
        for path, entity, sha, error in rejected:
            conn.execute(
                "insert into audit.ingestion_reconciliation values "
                "($path, $entity, $sha, 'rejected', $error, 0, 0, 0, 0, $batch_id, $ingested_at)",
                {**params, "path": str(path), "entity": entity, "sha": sha, "error": error},
            )
            report.files_rejected.append((str(path), error))
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise

    report.files_ingested = len(staged)
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
