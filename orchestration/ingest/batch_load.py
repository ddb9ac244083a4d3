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

import gzip
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.core.settings import SettingsError
from orchestration.ingest.erasure import ErasureReport, apply_erasures

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
# The longest line a CSV or JSON Lines file may have (DuckDB's default is 2 MB): a row
# with a large properties object is still a row. A longer line rejects its file.
MAX_LINE_BYTES = 64 * 1024 * 1024
# The largest amount (price, revenue, price x quantity) a row may carry: money is
# numeric(28, 4) in the models, and this leaves ten digits for sums. A larger one is an
# invalid_number.
MAX_AMOUNT = 10**14
# DuckDB evaluates both sides of AND, and json_type fails on invalid JSON: guard it in a CASE.
_IS_JSON_OBJECT = "coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false)"

# A landing file is read only once it is complete. Producers that write in place are given
# this long (seconds, SEGMENTS_LANDING_SETTLE_SECONDS) without a change to the file before
# it is read; producers that write under a temporary name and rename are read at once.
SETTLE_VARIABLE = "SEGMENTS_LANDING_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 60.0
# Names of files (or folders) still being written or not meant to be read: uploads and
# downloads in progress, hidden files, and the _SUCCESS markers and _temporary folders of
# Spark and Hadoop writers.
_IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".crdownload")
_NEVER_READ_PREFIXES = (".", "_")

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
create table if not exists audit.erased_identities (
    identity_sha256 varchar not null, erased_at timestamp not null
);
create table if not exists audit.erasure_log (
    request_file varchar not null, request_row bigint not null, requested_at timestamp not null,
    applied_at timestamp not null, _batch_id bigint not null
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


# What identifies a file's content without reading it: its size, modification and change
# times and inode. Writing to a file always moves its change time, which no tool can set
# back, so an unchanged state means unchanged bytes.
FileState = tuple[int, int, int, int]


def file_state(path: Path) -> FileState:
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


@dataclass(frozen=True)
class LandedFile:
    path: Path
    entity: str
    file_format: str | None  # None: not a format we read
    gzipped: bool
    sha256: str
    state: FileState | None = None
    hashed_now: bool = True  # False: its hash came from an earlier run's record

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.path), self.sha256)


@dataclass(frozen=True)
class WaitingFile:
    """A landing file changed less than the settle time ago: read by a later run."""

    path: Path
    entity: str
    seconds_since_change: float


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
            f"warehouse {warehouse} is in use by another process ({_first_line(error)})"
        ) from error
    conn.execute("set TimeZone = 'UTC'")
    memory_limit = os.environ.get(MEMORY_LIMIT_VARIABLE, DEFAULT_MEMORY_LIMIT)
    try:
        conn.execute(f"set memory_limit = {_sql_text(memory_limit)}")
    except duckdb.Error as error:
        conn.close()
        raise SettingsError(
            f"{MEMORY_LIMIT_VARIABLE}={memory_limit!r} is not a memory size such as 6GB"
        ) from error
    conn.execute(f"set temp_directory = {_sql_text(str(warehouse) + '.tmp')}")
    # DuckDB sizes its thread pool from the machine's cores; a process pinned to fewer
    # (taskset, a container's cpuset) would only oversubscribe them.
    conn.execute(f"set threads = {_usable_cores()}")
    return conn


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class WarehouseBusyError(RuntimeError):
    """Another process holds the DuckDB file: DuckDB allows one writer per file."""


def ensure_warehouse(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(WAREHOUSE_DDL)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _file_error(error: BaseException) -> str:
    """Why a file was rejected, in one line. DuckDB's CSV errors say where on their first
    line and why further down ("... This file is not utf-8 encoded."); the line between
    them quotes the row, which may hold personal data, and is left out."""
    head = _first_line(error)
    if head.startswith("Invalid Input Error: CSV Error"):
        lines = [line.strip() for line in str(error).strip().splitlines()]
        why = next(
            (
                line
                for line in lines[1:]
                if line and not line.startswith(("Original Line", "Possible Solution"))
            ),
            None,
        )
        if why and "=" not in why:
            return f"{head}: {why}"
    return head


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


def settle_seconds() -> float:
    """How long a landing file must stay unchanged before it is read."""
    text = os.environ.get(SETTLE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_SETTLE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise SettingsError(f"{SETTLE_VARIABLE}={text!r} is not a number of seconds (0 or more)")
    return seconds


def never_read(relative: Path) -> bool:
    """A name that marks a file as incomplete or not data: a part of its path starts with
    `.` or `_`, or its name ends in .tmp, .part or .crdownload."""
    return any(part.startswith(_NEVER_READ_PREFIXES) for part in relative.parts) or (
        relative.name.lower().endswith(_IN_PROGRESS_SUFFIXES)
    )


def known_hashes(conn: duckdb.DuckDBPyConnection) -> dict[str, tuple[FileState, str]]:
    """The hash of each landing file an earlier run read, with the file's state then."""
    rows = conn.execute(
        "select source_file, size, modified_ns, changed_ns, inode, file_sha256 "
        "from audit.landing_file_hashes"
    ).fetchall()
    return {
        path: ((size, mtime, ctime, inode), sha) for path, size, mtime, ctime, inode, sha in rows
    }


def record_hashes(conn: duckdb.DuckDBPyConnection, files: list[LandedFile]) -> None:
    """Keeps the hash of each file read now, so a later run need not read it again."""
    fresh = [landed for landed in files if landed.hashed_now and landed.state is not None]
    if not fresh:
        return
    hashed_now = pd.DataFrame(
        [(str(landed.path), *landed.state, landed.sha256) for landed in fresh],
        columns=["source_file", "size", "modified_ns", "changed_ns", "inode", "file_sha256"],
    )
    conn.register("hashed_now", hashed_now)
    try:
        conn.execute(
            "delete from audit.landing_file_hashes where source_file in "
            "(select source_file from hashed_now)"
        )
        conn.execute("insert into audit.landing_file_hashes select * from hashed_now")
    finally:
        conn.unregister("hashed_now")


def discover(
    landing_dir: Path,
    settle: float | None = None,
    known: dict[str, tuple[FileState, str]] | None = None,
) -> Iterator[LandedFile | WaitingFile | tuple[Path, str, str]]:
    """Every complete file under landing/<entity>/, in a stable order. Yields a
    LandedFile; a WaitingFile for one changed within the last `settle` seconds (default:
    settle_seconds()), which is not hashed; or (path, entity, error) for a file that
    cannot even be hashed. A file `known` (known_hashes) in the state it is in now is not
    read again: its hash is the one recorded."""
    settle = settle_seconds() if settle is None else settle
    known = known or {}
    root = landing_dir.resolve()
    for entity in ENTITIES:
        folder = landing_dir / entity
        if not folder.is_dir():
            if folder.exists():
                yield (folder, entity, f"{entity} should be a folder of files, not a file")
            continue
        # A folder that is a link out of the landing zone holds nothing readable.
        folder_inside = folder.resolve().is_relative_to(root)
        for parts, entry in _files_under(folder):
            path = folder.joinpath(*parts)
            if never_read(Path(*parts)):
                continue
            if isinstance(entry, OSError):
                yield (path, entity, _first_line(entry))
                continue
            file_format, gzipped = _file_format(entry.name)
            try:
                if not folder_inside or (
                    entry.is_symlink() and not path.resolve().is_relative_to(root)
                ):
                    raise PermissionError("links outside the landing zone are not read")
                state = file_state(path)
                if settle > 0:
                    age = time.time() - state[1] / 1e9
                    if age < settle:
                        yield WaitingFile(path, entity, max(age, 0.0))
                        continue
                recorded = known.get(str(path))
                if recorded is not None and recorded[0] == state:
                    yield LandedFile(
                        path, entity, file_format, gzipped, recorded[1], state, hashed_now=False
                    )
                else:
                    yield LandedFile(path, entity, file_format, gzipped, _sha256(path), state)
            except OSError as error:
                yield (path, entity, _first_line(error))


def _files_under(folder: Path) -> list[tuple[tuple[str, ...], os.DirEntry | OSError]]:
    """The files under a folder (links to files too, not links to folders, which are not
    followed), as the parts of their path below it, in the order of those parts; a
    folder that cannot be listed comes as its error."""
    found: list[tuple[tuple[str, ...], os.DirEntry | OSError]] = []
    pending: list[tuple[tuple[str, ...], str]] = [((), str(folder))]
    while pending:
        parts, directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    here = (*parts, entry.name)
                    if entry.is_dir():
                        if not entry.is_symlink():
                            pending.append((here, entry.path))
                        continue
                    found.append((here, entry))
        except OSError as error:
            found.append((parts, error))
    return sorted(found, key=lambda item: item[0])


# A CSV or Parquet file's columns: (name, DuckDB type) pairs.
Columns = tuple[tuple[str, str], ...]

# Parquet types that the classification reads exactly as it would read their text, so the
# text round trip (slow, and at 10M rows a large part of ingestion) is skipped: a double
# prints as its shortest round-trip text, an integer as its digits, a microsecond
# timestamp as its instant. Any other type is read as text, as CSV is: TIMESTAMP_NS
# prints nanoseconds that the text path truncates, FLOAT and DECIMAL print digits that
# parse to another double.
_NUMBER_TYPES = ("DOUBLE", "BIGINT", "INTEGER", "SMALLINT", "TINYINT")
_TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
_KEEPS_TYPE: dict[str, tuple[str, ...]] = {
    **{c: _NUMBER_TYPES for c in ("price", "revenue", "quantity", "duration_seconds")},
    **{c: _TIMESTAMP_TYPES for c in ("occurred_at", "signed_up_at", "requested_at")},
}


def _select_columns(entity: str, described: Columns) -> str:
    """Canonical columns, matching names case-insensitively: as trimmed text (NULL when
    absent or blank), except the Parquet columns that can stay typed (_KEEPS_TYPE)."""
    by_name = {name.strip().lower(): (name, column_type) for name, column_type in described}
    selected = []
    for column in ENTITY_COLUMNS[entity]:
        if column not in by_name:
            selected.append(f"cast(null as varchar) as {column}")
            continue
        original, column_type = by_name[column]
        quoted = "src." + '"' + original.replace('"', '""') + '"'
        if column_type in _KEEPS_TYPE.get(column, ()):
            selected.append(f"{quoted} as {column}")
        else:
            selected.append(f"nullif(trim(cast({quoted} as varchar)), '') as {column}")
    return ", ".join(selected)


def _json_columns(entity: str) -> str:
    """The entity's columns of a JSON line (NULL when absent or blank), from `fields`: all
    of them extracted in one call, which parses the line once rather than once a column."""
    return ", ".join(
        f"nullif(trim(fields[{index}]), '') as {column}"
        for index, column in enumerate(ENTITY_COLUMNS[entity], start=1)
    )


def _json_fields(entity: str) -> str:
    paths = ", ".join(f"'$.\"{column}\"'" for column in ENTITY_COLUMNS[entity])
    return f"case when {_IS_JSON_OBJECT} then json_extract_string(line, [{paths}]) end"


def _local_source(landed: LandedFile, file_seq: int, workdir: Path) -> str:
    """The path DuckDB reads: a gzipped Parquet file is unpacked first."""
    if landed.file_format == "parquet" and landed.gzipped:
        unpacked = workdir / f"{file_seq}.parquet"
        if not unpacked.exists():
            with gzip.open(landed.path, "rb") as packed, unpacked.open("wb") as out:
                shutil.copyfileobj(packed, out)
        return str(unpacked)
    return str(landed.path)


def _tabular_reader(file_format: str) -> tuple[str, str]:
    """For a CSV or Parquet file ($source): the reader and its 1-based row number."""
    if file_format == "csv":
        return (
            "read_csv($source, all_varchar = true, header = true, hive_partitioning = false, "
            f"max_line_size = {MAX_LINE_BYTES})",
            "row_number() over ()",
        )
    return (
        "read_parquet($source, file_row_number = true, hive_partitioning = false)",
        "src.file_row_number + 1",
    )


def _describe(conn: duckdb.DuckDBPyConnection, file_format: str, source: str) -> Columns:
    """A CSV or Parquet file's columns as (name, type) pairs; reading them is the first
    check that the file is what its name says."""
    reader, _row_number = _tabular_reader(file_format)
    described = conn.execute(f"describe select * from {reader}", {"source": source}).fetchall()
    return tuple((row[0], row[1]) for row in described if row[0] != "file_row_number")


@dataclass(frozen=True)
class _Source:
    """One read of new landed rows of one entity: the Parquet files that share a schema
    (a single multi-file read), or one CSV or JSON Lines file. `relation` is a SELECT of
    file_seq, source_file, source_row, raw_row, is_readable and the entity's columns."""

    entity: str
    files: tuple[tuple[int, LandedFile, str], ...]  # (file_seq, file, path DuckDB reads)
    described: Columns
    relation: str
    params: dict[str, object]

    def one_by_one(self) -> list[_Source]:
        return [_source(self.entity, [member], self.described) for member in self.files]


def _source(entity: str, members: list[tuple[int, LandedFile, str]], described: Columns) -> _Source:
    file_format = members[0][1].file_format
    first_seq, first_file, first_path = members[0]
    # A single file's number and name are constants; in a multi-file read, file_index (the
    # position of a row's file in the list) picks them.
    if len(members) == 1:
        file_seq, source_file = str(first_seq), "$source_file"
        params: dict[str, object] = {"source": first_path, "source_file": str(first_file.path)}
    else:
        position = "cast(src.file_index as bigint) + 1"
        file_seq, source_file = f"($file_seqs)[{position}]", f"($source_files)[{position}]"
        params = {
            "source": [path for _seq, _file, path in members],
            "file_seqs": [seq for seq, _file, _path in members],
            "source_files": [str(landed.path) for _seq, landed, _path in members],
        }
    prefix = f"{file_seq} as file_seq, {source_file} as source_file"
    if file_format == "jsonl":
        reader = (
            f"read_csv($source, columns = {{'line': 'VARCHAR'}}, header = false, "
            f"delim = {_LINE_SEPARATOR}, quote = '', escape = '', auto_detect = false, "
            f"max_line_size = {MAX_LINE_BYTES})"
        )
        relation = (
            f"select {prefix}, source_row, line as raw_row, is_readable, "
            f"{_json_columns(entity)} from (select row_number() over () as source_row, line, "
            f"{_IS_JSON_OBJECT} as is_readable, {_json_fields(entity)} as fields "
            f"from {reader} where trim(line) <> '')"
        )
    else:
        # Parquet's file_row_number numbers rows within each file, however the read is
        # shared out between threads.
        reader, row_number = _tabular_reader(file_format)
        relation = (
            f"select {prefix}, {row_number} as source_row, cast(null as varchar) as raw_row, "
            f"true as is_readable, {_select_columns(entity, described)} from {reader} as src"
        )
    return _Source(entity, tuple(members), described, relation, params)


# Each entity's rows are classified by one query over a source (`landed`): the first
# failing rule names the reason; rows with no reason are accepted unless duplicates.
# A timestamp is parsed as an instant (no offset means UTC) and stored as naive UTC.
# timezone('UTC', t) does that through ICU, row by row; for a finite instant its epoch
# microseconds read as a timestamp are the same value, several times faster.
def _utc(instant: str) -> str:
    """Naive UTC, or null for 'infinity' and '-infinity', which DuckDB reads as
    timestamps but name no instant."""
    return f"case when isfinite({instant}) then make_timestamp(epoch_us({instant})) end"


# ISO 8601 forms that DuckDB's cast does not read, tried only where the cast fails: the
# basic format (20260105T100000Z, 20260105T1000+0100), a comma before the fraction,
# lowercase t and z, hour-only times, ordinal dates (2026-005). strptime reads fields of
# any width ("2026-05" would become 5 January), so a value must first have one of these
# shapes exactly. Week dates (2026-W02-1) stay unparseable.
_OFFSET = r"([+-]\d{2}(:?\d{2})?)?"
_ISO_SHAPES = "|".join(
    (
        rf"\d{{8}}(T\d{{2}}(\d{{2}}(\d{{2}}(\.\d+)?)?)?{_OFFSET})?",
        rf"\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}{_OFFSET}",
        rf"\d{{4}}-\d{{3}}(T\d{{2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?{_OFFSET})?",
    )
)
_ISO_FORMATS = (
    "%Y%m%dT%H%M%S.%f%z", "%Y%m%dT%H%M%S%z", "%Y%m%dT%H%M%z", "%Y%m%dT%H%z",
    "%Y%m%dT%H%M%S.%f", "%Y%m%dT%H%M%S", "%Y%m%dT%H%M", "%Y%m%dT%H", "%Y%m%d",
    "%Y-%m-%dT%H%z", "%Y-%m-%dT%H",
    "%Y-%jT%H:%M:%S.%f%z", "%Y-%jT%H:%M:%S%z", "%Y-%jT%H:%M%z", "%Y-%jT%H:%M:%S.%f",
    "%Y-%jT%H:%M:%S", "%Y-%jT%H:%M", "%Y-%j",
)  # fmt: skip


def _instant(text: str) -> str:
    """The timestamptz a landed value stands for, or null. CASE, not COALESCE: DuckDB
    evaluates a CASE branch only for the rows that reach it, so well-formed values pay
    for one cast."""
    direct = f"try_cast({text} as timestamptz)"
    normal = f"regexp_replace(replace(upper(cast({text} as varchar)), ',', '.'), 'Z$', '+00:00')"
    formats = "[" + ", ".join(f"'{form}'" for form in _ISO_FORMATS) + "]"
    return (
        f"case when {direct} is not null then {direct} "
        f"when regexp_full_match({normal}, '{_ISO_SHAPES}') "
        f"then try_strptime({normal}, {formats}) "
        f"else try_cast({normal} as timestamptz) end"
    )


_CLASSIFY_SQL = {
    "events": f"""
        parsed as (
            select *,
                {_instant("occurred_at")} as occurred_at_instant,
                try_cast(price as double) as price_value,
                try_cast(revenue as double) as revenue_value,
                try_cast(quantity as double) as quantity_value,
                try_cast(duration_seconds as double) as duration_value
            from landed
        ),
        timed as (select *, {_utc("occurred_at_instant")} as occurred_at_utc from parsed)
        select *,
            case
                when not is_readable then 'malformed_row'
                when event_id is null then 'missing_event_id'
                when event_type is null then 'missing_event_type'
                when occurred_at_utc is null then 'unparseable_timestamp'
                when user_id is null and anonymous_id is null then 'missing_identity'
                when (price is not null and not coalesce(
                        isfinite(price_value) and price_value < {MAX_AMOUNT}, false))
                  or (revenue is not null and not coalesce(
                        isfinite(revenue_value) and revenue_value < {MAX_AMOUNT}, false))
                  or coalesce(price_value * quantity_value >= {MAX_AMOUNT}, false)
                  or (quantity is not null and not coalesce(
                        isfinite(quantity_value) and quantity_value = floor(quantity_value)
                        and try_cast(quantity_value as bigint) is not null, false))
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
        from timed
    """,
    "customers": f"""
        parsed as (
            select *, {_instant("signed_up_at")} as signed_up_at_instant
            from landed
        ),
        timed as (select *, {_utc("signed_up_at_instant")} as signed_up_at_utc from parsed)
        select *,
            case
                when not is_readable then 'malformed_row'
                when customer_id is null then 'missing_customer_id'
                when signed_up_at is not null and signed_up_at_utc is null
                    then 'unparseable_timestamp'
            end as reason
        from timed
    """,
    "erasure_requests": f"""
        parsed as (
            select *, {_instant("requested_at")} as requested_at_instant
            from landed
        ),
        timed as (select *, {_utc("requested_at_instant")} as requested_at_utc from parsed)
        select *,
            case
                when not is_readable then 'malformed_row'
                when user_id is null then 'missing_user_id'
                when requested_at is not null and requested_at_utc is null
                    then 'unparseable_timestamp'
            end as reason
        from timed
    """,
}


def _classified(source: _Source) -> str:
    return f"with landed as ({source.relation}), {_CLASSIFY_SQL[source.entity]}"


# Pass 1 keeps, per landed row, what the later steps need: its reason, the event_id of an
# event that may be accepted (for de-duplication), and the raw row of a bad JSON line.
# The raw row of a bad CSV or Parquet row is built later, for those rows only.
_DECIDED_KEY = {"events": "event_id"}

_CONSENT = "coalesce(lower({0}) in ('true', 't', '1', 'yes', 'y'), false)"

# Pass 2: the typed values of accepted rows, in the column order of their raw table.
_ACCEPTED_COLUMNS = {
    "events": """
        event_id, event_type, occurred_at_utc, user_id, anonymous_id, session_id,
        product_id, category, price_value, revenue_value, cast(quantity_value as bigint),
        order_id, duration_value,
        case when properties is not null then cast(json(properties) as varchar) end
    """,
    "customers": f"""
        customer_id, email, phone, signed_up_at_utc, country,
        {_CONSENT.format("consent_email")}, {_CONSENT.format("consent_sms")},
        {_CONSENT.format("consent_push")}
    """,
    "erasure_requests": "user_id, coalesce(requested_at_utc, $ingested_at)",
}

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
        key = f", {_DECIDED_KEY[entity]} varchar" if entity in _DECIDED_KEY else ""
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
) -> list[_Source]:
    """The reads of one entity's new files, in batch order: Parquet files grouped by schema
    (same column names and types), one read per group; every CSV and JSON Lines file on its
    own (each CSV file has its own dialect, and read_csv numbers no rows within a file)."""
    sources: list[_Source] = []
    parquet_groups: dict[object, tuple[Columns, list[tuple[int, LandedFile, str]]]] = {}
    for file_seq, landed in files:
        try:
            if landed.file_format is None:
                raise ValueError(
                    f"unsupported file type {landed.path.name!r} (expected .csv, .parquet, .jsonl)"
                )
            path = _local_source(landed, file_seq, workdir)
            described = (
                () if landed.file_format == "jsonl" else _describe(conn, landed.file_format, path)
            )
        except _NOT_THE_FILES_FAULT:
            raise
        except _READ_ERRORS as error:
            reject(landed, error)
            continue
        if landed.file_format != "parquet":
            sources.append(_source(entity, [(file_seq, landed, path)], described))
            continue
        group: object = described
        if any(name.lower() == "file_index" for name, _type in described):
            group = file_seq  # such a column would hide the reader's file_index: read alone
        parquet_groups.setdefault(group, (described, []))[1].append((file_seq, landed, path))
    for described, members in parquet_groups.values():
        sources.append(_source(entity, members, described))
    return sorted(sources, key=lambda source: source.files[0][0])


def _decide(
    conn: duckdb.DuckDBPyConnection,
    source: _Source,
    ingested_at: datetime,
    reject: Callable[[LandedFile, BaseException], None],
    progress: Callable[[str], None],
) -> list[_Source]:
    """Pass 1 over one source: its rows' reasons (and the event_ids of candidates) into
    decided_<entity>. In autocommit mode a failed read leaves no rows behind: a failed
    multi-file read is retried file by file, so that only the bad file is rejected.
    Returns the sources that were read."""
    key = _DECIDED_KEY.get(source.entity)
    sql = (
        f"insert into decided_{source.entity} select file_seq, source_row, reason, "
        f"case when reason is not null then raw_row end"
        + (f", case when reason is null then {key} end" if key else "")
        + f" from ({_classified(source)})"
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
            f"re-reading {len(source.files)} {source.entity} files one by one: {_first_line(error)}"
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


def _fill_raw_rows(conn: duckdb.DuckDBPyConnection, sources: list[_Source]) -> None:
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
            reader, row_number = _tabular_reader(landed.file_format)
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
    conn: duckdb.DuckDBPyConnection, source: _Source, params: dict[str, object]
) -> int:
    """Pass 2 over one source: its accepted rows, typed, straight into the raw table in
    file and row order (the order of the read). Returns the rows written."""
    sql = (
        f"insert into raw.{source.entity} select {_ACCEPTED_COLUMNS[source.entity]}, "
        f"source_file, source_row, $batch_id, $ingested_at "
        f"from ({_classified(source)}) where reason is null"
    )
    if source.entity == "events":
        sql += f" and {_NOT_DUPLICATE}"
    return _execute(conn, sql, {**source.params, **params}).fetchone()[0]


def _write_batch(
    conn: duckdb.DuckDBPyConnection, sources: list[_Source], params: dict[str, object]
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


def already_ingested(conn: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    rows = conn.execute(
        "select source_file, file_sha256 from audit.ingestion_reconciliation"
    ).fetchall()
    return {(path, sha) for path, sha in rows}


def pending_files(landing_dir: Path, warehouse: Path) -> list[LandedFile | WaitingFile]:
    """Files under the landing zone not yet ingested (for sensors and dry runs): complete
    ones, and those still within the settle time."""
    seen: set[tuple[str, str]] = set()
    known: dict[str, tuple[FileState, str]] = {}
    if warehouse.exists():
        conn = connect(warehouse, read_only=True)
        try:
            tables = {
                name
                for (name,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = 'audit'"
                ).fetchall()
            }
            if "ingestion_reconciliation" in tables:
                seen = already_ingested(conn)
            if "landing_file_hashes" in tables:
                known = known_hashes(conn)
        finally:
            conn.close()
    return [
        found
        for found in discover(landing_dir, known=known)
        if isinstance(found, WaitingFile)
        or (isinstance(found, LandedFile) and found.key not in seen)
    ]


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
        reason = _file_error(error)
        rejected.append((landed.path, landed.entity, landed.sha256, reason))
        progress(f"rejected {landed.path.name}: {reason}")

    _create_scratch(conn)
    try:
        with tempfile.TemporaryDirectory(prefix="segments-ingest-") as workdir:
            # Pass 1 reads and decides in autocommit mode, into temp tables: in DuckDB a
            # failed statement aborts the enclosing transaction, and one unreadable file
            # must not sink the batch. Only the writes (pass 2) share one transaction.
            sources: list[_Source] = []
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
