"""Finding a new file among many: a landing zone of 10,000 files, all ingested, then one
more lands. Measures how long ingestion takes to find it (listing, states, hashes and the
check against what was ingested) and to ingest the batch it makes.

    python -m bench.discovery --work DIR [--files 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.core.warehouse import connect
from orchestration.ingest.batch_load import ingest
from orchestration.ingest.landing_files import (
    SETTLE_VARIABLE,
    LandedFile,
    already_ingested,
    discover,
    known_hashes,
)


def _write_file(folder: Path, number: int) -> None:
    table = pa.table(
        {
            "event_id": [f"e{number:08d}"],
            "event_type": ["page_view"],
            "occurred_at": ["2026-03-01T00:00:00Z"],
            "user_id": [f"u{number % 1000:04d}"],
        }
    )
    pq.write_table(table, folder / f"events-{number:08d}.parquet")


def find_new(landing: Path, conn) -> tuple[float, int]:
    """The seconds ingestion spends finding the files it has not ingested, and how many."""
    started = time.perf_counter()
    seen = already_ingested(conn)
    new = [
        found
        for found in discover(landing, 0, known_hashes(conn))
        if isinstance(found, LandedFile) and found.key not in seen
    ]
    return time.perf_counter() - started, len(new)


def run(work: Path, files: int, repeats: int) -> dict:
    # The files are complete when written: no settle time to wait out.
    os.environ[SETTLE_VARIABLE] = "0"
    shutil.rmtree(work, ignore_errors=True)
    events = work / "landing" / "events"
    events.mkdir(parents=True)
    for number in range(files):
        _write_file(events, number)
    conn = connect(work / "warehouse.duckdb")
    now = datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    ingest(conn, work / "landing", now)
    first = time.perf_counter() - started
    finding, ingesting = [], []
    for number in range(files, files + repeats):
        _write_file(events, number)
        seconds, found = find_new(work / "landing", conn)
        assert found == 1, f"found {found} new files, not 1"
        finding.append(seconds)
        started = time.perf_counter()
        report = ingest(conn, work / "landing", now)
        ingesting.append(time.perf_counter() - started)
        assert report.files_ingested == 1
    conn.close()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "files": files,
        "first_ingestion_seconds": round(first, 2),
        "finding_seconds": round(statistics.median(finding), 3),
        "ingesting_seconds": round(statistics.median(ingesting), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery", description=__doc__)
    parser.add_argument("--work", type=Path, required=True, help="a folder to build it in")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    text = json.dumps(run(args.work, args.files, args.repeats), indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
