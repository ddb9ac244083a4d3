"""The landing files a real feed sends sooner or later. Each lands beside a good file:
the bad one is rejected with its reason or its rows are quarantined with theirs, the good
one is ingested, nothing raises, and every file's rows reconcile."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from orchestration.core.warehouse import connect
from orchestration.ingest.batch_load import ingest
from tests.conftest import EVENT_COLUMNS, event, write_events

INGESTED_AT = datetime(2026, 3, 2, 12)
GOOD = {"user_id": "u1"}
E1 = event("e1", "page_view", "2026-03-01T10:00:00Z", **GOOD)
E2 = event("e2", "page_view", "2026-03-01T11:00:00Z", category="café", **GOOD)


def csv_text(rows: list[dict], sep: str = ",", columns=EVENT_COLUMNS) -> str:
    cells = [sep.join(columns)]
    cells += [sep.join("" if row.get(c) is None else str(row[c]) for c in columns) for row in rows]
    return "\n".join(cells) + "\n"


def truncated_gzip(events: Path) -> None:
    data = gzip.compress(csv_text([E1, E2] * 500).encode())
    (events / "bad.csv.gz").write_bytes(data[: len(data) // 2])


def corrupt_parquet(events: Path) -> None:
    (events / "bad.parquet").write_bytes(b"PAR1" + os.urandom(200))


def empty_parquet(events: Path) -> None:
    (events / "bad.parquet").write_bytes(b"")


def latin1(events: Path) -> None:
    (events / "bad.csv").write_bytes(csv_text([E1, E2]).encode("latin-1"))


def symlink_out_of_the_landing_zone(events: Path) -> None:
    outside = events.parent.parent / "outside.csv"
    outside.write_text(csv_text([E1]))
    (events / "bad.csv").symlink_to(outside)


def long_line_over_the_limit(events: Path, monkeypatch) -> None:
    monkeypatch.setattr("orchestration.ingest.file_readers.MAX_LINE_BYTES", 1024 * 1024)
    big = {**E2, "properties": json.dumps({"x": "y" * 2_000_000})}
    (events / "bad.jsonl").write_text(json.dumps(E1) + "\n" + json.dumps(big) + "\n")


# (how the bad file is made, the start of its recorded error)
REJECTED: list[tuple[Callable, str]] = [
    (truncated_gzip, "IO Error: Unexpected end of GZIP stream"),
    (corrupt_parquet, "Invalid Input Error"),
    (empty_parquet, "Invalid Input Error"),
    (latin1, "Invalid Input Error: CSV Error on Line: 3: Invalid unicode"),
    (symlink_out_of_the_landing_zone, "links outside the landing zone are not read"),
    (long_line_over_the_limit, "Invalid Input Error: CSV Error on Line: 2: Maximum line size"),
]


def ingest_with_a_good_file(tmp_path: Path, make: Callable, monkeypatch) -> tuple:
    landing = tmp_path / "landing"
    events = landing / "events"
    events.mkdir(parents=True)
    write_events(landing, "good.csv", [event("g1", "page_view", "2026-03-01T09:00:00Z", **GOOD)])
    if "monkeypatch" in make.__code__.co_varnames:
        make(events, monkeypatch)
    else:
        make(events)
    conn = connect(tmp_path / "warehouse.duckdb")
    report = ingest(conn, landing, INGESTED_AT)
    files = {
        Path(file).name: (status, error or "", landed, accepted, quarantined, duplicate)
        for file, status, error, landed, accepted, quarantined, duplicate in conn.execute(
            "select source_file, status, error, rows_landed, rows_accepted, rows_quarantined, "
            "rows_duplicate from audit.ingestion_reconciliation"
        ).fetchall()
    }
    assert files["good.csv"][:1] == ("ingested",)
    assert conn.execute("select count(*) from raw.events where event_id = 'g1'").fetchone() == (1,)
    for _status, _error, landed, accepted, quarantined, duplicate in files.values():
        assert landed == accepted + quarantined + duplicate
    return conn, report, files


@pytest.mark.parametrize(("make", "error"), REJECTED, ids=[m.__name__ for m, _ in REJECTED])
def test_unreadable_file_is_rejected_with_its_reason(tmp_path, monkeypatch, make, error):
    _conn, report, files = ingest_with_a_good_file(tmp_path, make, monkeypatch)
    (bad,) = [name for name in files if name != "good.csv"]
    status, recorded, *_counts = files[bad]
    assert status == "rejected"
    assert recorded.startswith(error)
    assert "e1,page_view" not in recorded  # a rejected row's data stays out of the reason
    assert len(report.files_rejected) == 1


def semicolons(events: Path) -> None:
    (events / "bad.csv").write_text(csv_text([E1, E2], sep=";"))


def byte_order_mark(events: Path) -> None:
    (events / "bad.csv").write_bytes(b"\xef\xbb\xbf" + csv_text([E1, E2]).encode())


def mixed_line_endings(events: Path) -> None:
    header, first, second, _ = csv_text([E1, E2]).split("\n")
    (events / "bad.csv").write_text(header + "\r\n" + first + "\n" + second + "\r\n")


def ten_megabyte_line(events: Path) -> None:
    big = {**E2, "properties": json.dumps({"x": "y" * 10_000_000})}
    (events / "bad.jsonl").write_text(json.dumps(E1) + "\n" + json.dumps(big) + "\n")


def extra_columns(events: Path) -> None:
    columns = [*EVENT_COLUMNS, "campaign"]
    (events / "bad.csv").write_text(csv_text([{**E1, "campaign": "x"}, E2], columns=columns))


def number_as_event_type(events: Path) -> None:
    (events / "bad.jsonl").write_text(
        json.dumps({**E1, "event_type": 123}) + "\n" + json.dumps(E2) + "\n"
    )


# (how the file is made, (event_id, event_type) of the accepted rows)
READ: list[tuple[Callable, set]] = [
    (semicolons, {("e1", "page_view"), ("e2", "page_view")}),
    (byte_order_mark, {("e1", "page_view"), ("e2", "page_view")}),
    (mixed_line_endings, {("e1", "page_view"), ("e2", "page_view")}),
    (ten_megabyte_line, {("e1", "page_view"), ("e2", "page_view")}),
    (extra_columns, {("e1", "page_view"), ("e2", "page_view")}),
    # Any event_type name is kept (DESIGN): a number is its text.
    (number_as_event_type, {("e1", "123"), ("e2", "page_view")}),
]


@pytest.mark.parametrize(("make", "accepted"), READ, ids=[m.__name__ for m, _ in READ])
def test_odd_but_readable_file_is_read_whole(tmp_path, monkeypatch, make, accepted):
    conn, _report, files = ingest_with_a_good_file(tmp_path, make, monkeypatch)
    rows = set(conn.execute("select event_id, event_type from raw.events").fetchall())
    assert rows == accepted | {("g1", "page_view")}
    assert conn.execute("select category from raw.events where event_id = 'e2'").fetchone() == (
        "café",
    )
    assert all(status == "ingested" for status, *_ in files.values())


def missing_column(events: Path) -> None:
    columns = [c for c in EVENT_COLUMNS if c != "occurred_at"]
    (events / "bad.csv").write_text(csv_text([E1, E2], columns=columns))


def wrong_types(events: Path) -> None:
    rows = [
        {**E1, "price": "twelve"},
        {**E2, "quantity": {"a": 1}},
        event("e3", "page_view", 1740823200, **GOOD),  # epoch seconds are not ISO 8601
    ]
    (events / "bad.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def far_past_and_far_future(events: Path) -> None:
    rows = [
        event("e1", "page_view", "0001-01-01T00:00:00Z", **GOOD),
        event("e2", "page_view", "9999-12-31T23:59:59Z", **GOOD),
        event("e3", "page_view", "-infinity", **GOOD),
        event("e4", "page_view", "infinity", **GOOD),
    ]
    (events / "bad.csv").write_text(csv_text(rows))


# (how the file is made, the reason of each quarantined row, the accepted event_ids)
QUARANTINED: list[tuple[Callable, dict, set]] = [
    (missing_column, {"e1": "unparseable_timestamp", "e2": "unparseable_timestamp"}, set()),
    (
        wrong_types,
        {"e1": "invalid_number", "e2": "invalid_number", "e3": "unparseable_timestamp"},
        set(),
    ),
    (
        far_past_and_far_future,
        {"e2": "future_timestamp", "e3": "unparseable_timestamp", "e4": "unparseable_timestamp"},
        {"e1"},
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "reasons", "accepted"), QUARANTINED, ids=[m.__name__ for m, *_ in QUARANTINED]
)
def test_bad_rows_are_quarantined_with_their_reasons(
    tmp_path, monkeypatch, make, reasons, accepted
):
    conn, _report, _files = ingest_with_a_good_file(tmp_path, make, monkeypatch)
    found = dict(
        conn.execute(
            "select coalesce(json_extract_string(raw_row, '$.event_id'), '?'), reason "
            "from audit.quarantined_events"
        ).fetchall()
    )
    assert found == reasons
    rows = {row[0] for row in conn.execute("select event_id from raw.events").fetchall()}
    assert rows == accepted | {"g1"}


def test_empty_files_are_recorded_with_no_rows(tmp_path, monkeypatch):
    def empty(events: Path) -> None:
        (events / "a.csv").write_text("")
        (events / "b.jsonl").write_text("")
        (events / "c.csv").write_text(",".join(EVENT_COLUMNS) + "\n")
        (events / "d.csv.gz").write_bytes(gzip.compress(b""))

    _conn, _report, files = ingest_with_a_good_file(tmp_path, empty, monkeypatch)
    for name in ("a.csv", "b.jsonl", "c.csv", "d.csv.gz"):
        assert files[name][0] == "ingested" and files[name][2] == 0


def test_a_folder_named_like_a_file_is_read_for_the_files_inside(tmp_path, monkeypatch):
    def folder(events: Path) -> None:
        (events / "bad.csv").mkdir()
        (events / "bad.csv" / "inside.csv").write_text(csv_text([E1]))

    _conn, _report, files = ingest_with_a_good_file(tmp_path, folder, monkeypatch)
    assert files["inside.csv"][:1] == ("ingested",)


def test_an_entity_that_is_a_file_not_a_folder_is_rejected(tmp_path):
    landing = tmp_path / "landing"
    write_events(landing, "good.csv", [E1])
    (landing / "customers").write_text("customer_id\nu1\n")
    conn = connect(tmp_path / "warehouse.duckdb")
    report = ingest(conn, landing, INGESTED_AT)
    assert report.files_rejected == [
        (str(landing / "customers"), "customers should be a folder of files, not a file")
    ]
    assert conn.execute("select count(*) from raw.events").fetchone() == (1,)
