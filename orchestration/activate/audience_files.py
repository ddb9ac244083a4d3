"""Audience files: one CSV per segment, added/removed deltas against the previous export,
and a manifest, published atomically.

Layout: <exports>/<as_of as YYYYMMDDTHHMMZ>/{<segment>.csv, <segment>.added.csv,
<segment>.removed.csv, manifest.json}, and <exports>/latest.json naming the newest complete
export. Files are written into a hidden temporary folder and renamed into place only when
all are written and read back, so a reader never sees half an export. The same inputs
give byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from orchestration.quality.suites import SuiteResult, load_suites, validate

STAMP_FORMAT = "%Y%m%dT%H%MZ"
_STAMP = re.compile(r"^\d{8}T\d{4}Z$")
# A deliberate second check of the segment_catalog macro's name rule: the name becomes a
# file name here, so a catalog edited by hand cannot write outside the export folder.
_SEGMENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# One row per user per segment file of each export: what the cooldown, the frequency cap
# and the added/removed deltas read back, and the audit of what was sent.
EXPORT_LOG_TABLE = """
create schema if not exists audit;
create table if not exists audit.export_log (
    export_id varchar not null, segment varchar not null, user_id varchar not null,
    entered_at timestamp not null, exported_at timestamp not null
);
"""


def ensure_export_log(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(EXPORT_LOG_TABLE)


class ExportError(RuntimeError):
    """The export could not be written; the previous export stays `latest`."""


def unwritable(folder: Path, error: OSError) -> ExportError:
    """A full disk or a read-only folder, in the file system's words."""
    return ExportError(
        f"could not write into {folder}: {error.strerror or error}; "
        "the previous export stays latest"
    )


@dataclass(frozen=True)
class SegmentSpec:
    """What an export needs of a segment; `address_column` names the channel's clear
    address (None for push, whose address is the user_id)."""

    name: str
    channel: str
    address_column: str | None


def read_thresholds(conn: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """What each segment's thresholds resolved to this run (marts.segment_thresholds), for
    the manifest: a percentile threshold's value changes with the data."""
    rows = conn.execute(
        "select segment, threshold_var, kind, applies_to, threshold_value "
        "from marts.segment_thresholds order by segment, threshold_var, applies_to nulls first"
    ).fetchall()
    thresholds: dict[str, list[dict[str, Any]]] = {}
    for segment, var, kind, applies_to, value in rows:
        entry = {"var": var, "kind": kind, "value": value}
        if applies_to is not None:
            entry["applies_to"] = applies_to
        thresholds.setdefault(segment, []).append(entry)
    return thresholds


def read_segments(conn: duckdb.DuckDBPyConnection) -> list[SegmentSpec]:
    """The project's segments as dbt decided them (marts.segment_settings, from each
    segment model's YAML): the one home of names, channels and their defaults."""
    rows = conn.execute(
        "select segment, channel, address_column from marts.segment_settings order by segment"
    ).fetchall()
    return [SegmentSpec(*row) for row in rows]


@dataclass
class ExportResult:
    export_id: str
    folder: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous_export: str | None = None
    unchanged: bool = False


def stamp(as_of: datetime) -> str:
    return as_of.strftime(STAMP_FORMAT)


def escape_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe; numbers
    and everything else stay as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def unescape_cell(text: str) -> str:
    """The text escape_cell was given, from a cell read back from a file."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_START):
        return text[1:]
    return text


def _erased_identity_hashes(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        digest
        for (digest,) in conn.execute(
            "select identity_sha256 from audit.erased_identities"
        ).fetchall()
    }


def _csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([escape_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")


def _read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        return header, [row for row in reader]


def complete_exports(exports_dir: Path) -> list[str]:
    """Export folders with a manifest, oldest first."""
    if not exports_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in exports_dir.iterdir()
        if p.is_dir() and _STAMP.match(p.name) and (p / "manifest.json").exists()
    )


def _format_time(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_audiences(
    conn: duckdb.DuckDBPyConnection,
    exports_dir: Path,
    as_of: datetime,
    segments: list[SegmentSpec],
    validation: dict[str, Any],
    clear_addresses: bool = False,
    write_file: Callable[[Path, bytes], None] = lambda path, data: path.write_bytes(data),
) -> ExportResult:
    """Writes the export of `as_of` from marts.audience_members and publishes it."""
    export_id = stamp(as_of)
    for spec in segments:
        if not _SEGMENT_NAME.match(spec.name):
            raise ExportError(f"segment name {spec.name!r} is not a safe file name")
    exports_dir.mkdir(parents=True, exist_ok=True)
    final = exports_dir / export_id
    earlier = [name for name in complete_exports(exports_dir) if name < export_id]
    previous = earlier[-1] if earlier else None
    result = ExportResult(export_id=export_id, folder=final, previous_export=previous)

    rows = conn.execute(
        """
        select segment, user_id, email_sha256, channel_address, entered_at
        from marts.audience_members
        where suppression_reason is null
        order by segment, user_id
        """
    ).fetchall()
    # A removed file lists who left a segment; an erased person is not listed anywhere.
    erased = _erased_identity_hashes(conn)
    thresholds = read_thresholds(conn)
    by_segment: dict[str, list[tuple]] = {spec.name: [] for spec in segments}
    for row in rows:
        if row[0] not in by_segment:
            raise ExportError(f"audience_members has rows of unknown segment {row[0]!r}")
        by_segment[row[0]].append(row)

    _remove_abandoned_folders(exports_dir)
    tmp = exports_dir / f".tmp-{export_id}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        written: dict[str, bytes] = {}
        row_counts: dict[str, int] = {}
        for spec in segments:
            header, current = _segment_rows(spec, by_segment[spec.name], clear_addresses)
            previous_rows: list[list[str]] = []
            previous_file = exports_dir / previous / f"{spec.name}.csv" if previous else None
            if previous_file is not None and previous_file.exists():
                previous_header, previous_rows = _read_csv_rows(previous_file)
                if previous_header != header:
                    previous_rows = []  # the layout changed: every row counts as added
            # Earlier files hold escaped cells; escaping is idempotent, so compare escaped ids.
            previous_ids = {row[0] for row in previous_rows}
            current_ids = {escape_cell(row[0]) for row in current}
            added = [row for row in current if escape_cell(row[0]) not in previous_ids]
            removed = [
                row
                for row in previous_rows
                if row[0] not in current_ids
                and hashlib.sha256(unescape_cell(row[0]).encode()).hexdigest() not in erased
            ]
            for suffix, body in (("", current), (".added", added), (".removed", removed)):
                name = f"{spec.name}{suffix}.csv"
                written[name] = _csv_bytes(header, body)
                row_counts[name] = len(body)
                write_file(tmp / name, written[name])
            result.segments[spec.name] = {
                "channel": spec.channel,
                "rows": len(current),
                "added": len(added),
                "removed": len(removed),
                "file": f"{spec.name}.csv",
            }
            if spec.name in thresholds:
                result.segments[spec.name]["thresholds"] = thresholds[spec.name]

        file_check = _check_written_files(tmp, segments, by_segment, as_of)
        result.files = {
            name: {"rows": row_counts[name], "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in sorted(written.items())
        }
        manifest = {
            "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "export_id": export_id,
            "previous_export": previous,
            "address": "clear" if clear_addresses else "email_sha256",
            "files": result.files,
            "segments": result.segments,
            "validation": {**validation, file_check.suite: file_check.to_dict()},
        }
        if not file_check.success:
            raise ExportError(
                f"the written files failed the {file_check.suite} suite: "
                f"{file_check.failed[0]['expectation']}"
            )
        manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        write_file(tmp / "manifest.json", manifest_bytes)
        _publish(tmp, final, manifest_bytes, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    _point_latest(exports_dir, export_id)
    _log_export(conn, export_id, as_of, rows)
    return result


def _segment_rows(
    spec: SegmentSpec, rows: list[tuple], clear_addresses: bool
) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of one segment file: user_id, the hashed email (or, when
    configured, the channel's clear address), segment, entered_at."""
    address = spec.address_column if clear_addresses else "email_sha256"
    if address is None:  # push: the user_id is the address
        header = ["user_id", "segment", "entered_at"]
        body = [
            [user_id, segment, _format_time(entered)]
            for segment, user_id, _sha, _clear, entered in rows
        ]
    else:
        header = ["user_id", address, "segment", "entered_at"]
        body = [
            [user_id, sha if address == "email_sha256" else clear, segment, _format_time(entered)]
            for segment, user_id, sha, clear, entered in rows
        ]
    return header, body


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def _remove_abandoned_folders(exports_dir: Path) -> None:
    """Removes the hidden folders of exports whose process died before publishing them
    (killed, or the machine went down); a live process's folder is left alone."""
    for folder in exports_dir.glob(".tmp-*-*"):
        pid = folder.name.rsplit("-", 1)[1]
        if folder.is_dir() and pid.isdigit() and not _process_is_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _check_written_files(
    folder: Path,
    segments: list[SegmentSpec],
    by_segment: dict[str, list[tuple]],
    as_of: datetime,
) -> SuiteResult:
    """Reads the full files back and validates them with the export_files suite."""
    frames = []
    for spec in segments:
        frame = pd.read_csv(folder / f"{spec.name}.csv", dtype=str, keep_default_na=False)
        frame["email_sha256"] = frame.get("email_sha256", pd.Series([None] * len(frame)))
        frame["pair"] = frame["segment"] + "|" + frame["user_id"]
        frames.append(frame[["user_id", "email_sha256", "pair"]])
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["user_id", "email_sha256", "pair"])
    )
    combined["email_sha256"] = combined["email_sha256"].replace("", None)
    exportable = {
        f"{segment}|{escape_cell(user_id)}"
        for rows in by_segment.values()
        for segment, user_id, *_ in rows
    }
    # A pair outside the memberships is kept in its own column, to be reported by value.
    # The set is not handed to GX as a parameter: GX re-serialises its parameters for
    # every metric it plans, which at a million pairs costs minutes.
    combined["unexportable_pair"] = combined["pair"].where(~combined["pair"].isin(exportable))
    suite = load_suites()["export_files"]
    return validate(
        suite,
        combined,
        {"expected_rows": sum(map(len, by_segment.values())), "as_of": pd.Timestamp(as_of)},
    )


def _publish(tmp: Path, final: Path, manifest: bytes, result: ExportResult) -> None:
    if final.exists():
        if (final / "manifest.json").exists() and (
            final / "manifest.json"
        ).read_bytes() == manifest:
            result.unchanged = True  # a rerun with the same inputs: the files are identical
            return
        replaced = final.with_name(f".replaced-{final.name}-{os.getpid()}")
        os.replace(final, replaced)
        os.replace(tmp, final)
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _point_latest(exports_dir: Path, export_id: str) -> None:
    """latest.json names the newest complete export; a backfill never moves it back."""
    newest = complete_exports(exports_dir)[-1]
    latest = {"export_id": newest, "path": newest, "manifest": f"{newest}/manifest.json"}
    path = exports_dir / "latest.json"
    data = (json.dumps(latest, indent=2, sort_keys=True) + "\n").encode()
    if not path.exists() or path.read_bytes() != data:
        write_atomically(path, data)


def _log_export(conn: duckdb.DuckDBPyConnection, export_id: str, as_of: datetime, rows) -> None:
    conn.execute("begin transaction")
    conn.execute("delete from audit.export_log where export_id = $id", {"id": export_id})
    if rows:
        frame = pd.DataFrame(
            [(export_id, r[0], r[1], r[4], as_of) for r in rows],
            columns=["export_id", "segment", "user_id", "entered_at", "exported_at"],
        )
        conn.register("exported_rows", frame)
        conn.execute("insert into audit.export_log select * from exported_rows")
        conn.unregister("exported_rows")
    conn.execute("commit")
