"""What has landed: the entities' folders, which files are complete and new, and each
file's content hash (kept with its size, times and inode so an unchanged file is not read
again to be hashed)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.core.settings import SettingsError
from orchestration.core.warehouse import connect, first_line

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
                yield (path, entity, first_line(entry))
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
                yield (path, entity, first_line(error))


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
