"""How DuckDB reads a landed file of each format: one SELECT per source of the canonical
columns as text (typed where Parquet already has the type), with each row's file and row
number, and the raw line of a JSON Lines file."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.core.warehouse import first_line
from orchestration.ingest.landing_files import ENTITY_COLUMNS, LandedFile

# A JSON Lines file is read as one text column per line; this separator never occurs in text.
_LINE_SEPARATOR = "chr(30)"
# The longest line a CSV or JSON Lines file may have (DuckDB's default is 2 MB): a row
# with a large properties object is still a row. A longer line rejects its file.
MAX_LINE_BYTES = 64 * 1024 * 1024
# DuckDB evaluates both sides of AND, and json_type fails on invalid JSON: guard it in a CASE.
_IS_JSON_OBJECT = "coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false)"


def file_error(error: BaseException) -> str:
    """Why a file was rejected, in one line. DuckDB's CSV errors say where on their first
    line and why further down ("... This file is not utf-8 encoded."); the line between
    them quotes the row, which may hold personal data, and is left out."""
    head = first_line(error)
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


def local_source(landed: LandedFile, file_seq: int, workdir: Path) -> str:
    """The path DuckDB reads: a gzipped Parquet file is unpacked first."""
    if landed.file_format == "parquet" and landed.gzipped:
        unpacked = workdir / f"{file_seq}.parquet"
        if not unpacked.exists():
            with gzip.open(landed.path, "rb") as packed, unpacked.open("wb") as out:
                shutil.copyfileobj(packed, out)
        return str(unpacked)
    return str(landed.path)


def tabular_reader(file_format: str) -> tuple[str, str]:
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


def describe(conn: duckdb.DuckDBPyConnection, file_format: str, source: str) -> Columns:
    """A CSV or Parquet file's columns as (name, type) pairs; reading them is the first
    check that the file is what its name says."""
    reader, _row_number = tabular_reader(file_format)
    described = conn.execute(f"describe select * from {reader}", {"source": source}).fetchall()
    return tuple((row[0], row[1]) for row in described if row[0] != "file_row_number")


@dataclass(frozen=True)
class Source:
    """One read of new landed rows of one entity: the Parquet files that share a schema
    (a single multi-file read), or one CSV or JSON Lines file. `relation` is a SELECT of
    file_seq, source_file, source_row, raw_row, is_readable and the entity's columns."""

    entity: str
    files: tuple[tuple[int, LandedFile, str], ...]  # (file_seq, file, path DuckDB reads)
    described: Columns
    relation: str
    params: dict[str, object]

    def one_by_one(self) -> list[Source]:
        return [source_for(self.entity, [member], self.described) for member in self.files]


def source_for(
    entity: str, members: list[tuple[int, LandedFile, str]], described: Columns
) -> Source:
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
        reader, row_number = tabular_reader(file_format)
        relation = (
            f"select {prefix}, {row_number} as source_row, cast(null as varchar) as raw_row, "
            f"true as is_readable, {_select_columns(entity, described)} from {reader} as src"
        )
    return Source(entity, tuple(members), described, relation, params)
