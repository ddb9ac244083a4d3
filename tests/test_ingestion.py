"""Ingestion rules: each file once, duplicates once, bad rows quarantined with a typed
reason, unreadable files rejected, and the reconciliation always balances."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.core.settings import SettingsError
from orchestration.core.warehouse import connect
from orchestration.ingest import landing_files
from orchestration.ingest.batch_load import ingest
from tests.conftest import event, write_events, write_rows

INGESTED_AT = datetime(2026, 3, 2, 12, 0, 0)
GOOD = {"user_id": "u1"}


def ingest_into(tmp_path: Path, landing: Path):
    conn = connect(tmp_path / "warehouse.duckdb")
    report = ingest(conn, landing, INGESTED_AT)
    return conn, report


def reasons(conn) -> dict[str, str]:
    return dict(
        conn.execute(
            "select coalesce(case when json_valid(raw_row) then "
            "json_extract_string(raw_row, '$.event_id') end, '#' || source_row), "
            "reason from audit.quarantined_events"
        ).fetchall()
    )


def assert_reconciled(conn) -> None:
    unbalanced = conn.execute(
        "select source_file from audit.ingestion_reconciliation "
        "where rows_landed <> rows_accepted + rows_quarantined + rows_duplicate"
    ).fetchall()
    assert unbalanced == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (event(None, "page_view", "2026-03-01T00:00:00Z", **GOOD), "missing_event_id"),
        (event("e", None, "2026-03-01T00:00:00Z", **GOOD), "missing_event_type"),
        (event("e", "page_view", "1st of March", **GOOD), "unparseable_timestamp"),
        (event("e", "page_view", "2026-03-01T00:00:00Z"), "missing_identity"),
        (event("e", "purchase", "2026-03-01T00:00:00Z", price=-1, **GOOD), "negative_amount"),
        (event("e", "purchase", "2026-03-01T00:00:00Z", revenue=-5, **GOOD), "negative_amount"),
        (event("e", "purchase", "2026-03-01T00:00:00Z", quantity=-2, **GOOD), "negative_amount"),
        (event("e", "purchase", "2026-03-01T00:00:00Z", price="cheap", **GOOD), "invalid_number"),
        # Money is numeric(28, 4) in the models: an amount of 10^14 or more does not fit it.
        (event("e", "purchase", "2026-03-01T00:00:00Z", price="1e14", **GOOD), "invalid_number"),
        (event("e", "purchase", "2026-03-01T00:00:00Z", revenue=1e20, **GOOD), "invalid_number"),
        (
            event("e", "add_to_cart", "2026-03-01T00:00:00Z", price=1e7, quantity=10**7, **GOOD),
            "invalid_number",
        ),
        (
            event("e", "purchase", "2026-03-01T00:00:00Z", quantity="9223372036854775808", **GOOD),
            "invalid_number",
        ),
        (
            event("e", "page_view", "2026-03-01T00:00:00Z", properties="{oops", **GOOD),
            "malformed_properties",
        ),
        (
            event("e", "page_view", "2026-03-01T00:00:00Z", properties="[1, 2]", **GOOD),
            "malformed_properties",
        ),
        (event("e", "page_view", "2026-03-03T12:00:01Z", **GOOD), "future_timestamp"),
    ],
)
def test_bad_row_is_quarantined_with_its_reason(tmp_path, landing, row, reason):
    write_events(landing, "bad.csv", [row])
    conn, report = ingest_into(tmp_path, landing)
    assert conn.execute("select reason from audit.quarantined_events").fetchall() == [(reason,)]
    assert conn.execute("select count(*) from raw.events").fetchone()[0] == 0
    assert report.rows_quarantined == 1
    assert_reconciled(conn)


# Every ISO 8601 form below names 2026-03-01 10:00:00 UTC, or a fraction of a second after.
@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10)),
        ("2026-03-01 10:00:00", datetime(2026, 3, 1, 10)),
        ("2026-03-01T12:30:00+02:30", datetime(2026, 3, 1, 10)),
        ("2026-03-01T05:00:00-0500", datetime(2026, 3, 1, 10)),
        ("2026-03-01T11:00:00+01", datetime(2026, 3, 1, 10)),
        ("2026-03-01t10:00:00z", datetime(2026, 3, 1, 10)),
        ("2026-03-01T10:00:00,25Z", datetime(2026, 3, 1, 10, 0, 0, 250000)),
        ("2026-03-01T10Z", datetime(2026, 3, 1, 10)),
        ("20260301T100000Z", datetime(2026, 3, 1, 10)),
        ("20260301T110000+0100", datetime(2026, 3, 1, 10)),
        ("20260301T1000Z", datetime(2026, 3, 1, 10)),
        ("20260301T100000.5Z", datetime(2026, 3, 1, 10, 0, 0, 500000)),
        ("2026-060T10:00:00Z", datetime(2026, 3, 1, 10)),
    ],
)
def test_iso_8601_forms_are_read_as_their_instant(tmp_path, landing, text, instant):
    write_events(landing, "a.csv", [event("e", "page_view", text, **GOOD)])
    conn, report = ingest_into(tmp_path, landing)
    assert conn.execute("select occurred_at from raw.events").fetchall() == [(instant,)]
    assert report.rows_accepted == 1


# Forms that are not supported, some of which strptime alone would misread (it takes
# fields of any width: "2026-03" would be 3 January): each is quarantined, never given a
# wrong instant.
@pytest.mark.parametrize(
    "text", ["2026-03", "2026-03T10:00:00Z", "2026060", "20260301T1", "2026-W09-7T10:00:00Z"]
)
def test_ambiguous_or_unsupported_timestamps_are_quarantined(tmp_path, landing, text):
    write_events(landing, "a.csv", [event("e", "page_view", text, **GOOD)])
    conn, _ = ingest_into(tmp_path, landing)
    assert reasons(conn) == {"e": "unparseable_timestamp"}
    assert_reconciled(conn)


def test_event_exactly_one_day_after_ingestion_is_not_future(tmp_path, landing):
    write_events(landing, "a.csv", [event("e", "page_view", "2026-03-03T12:00:00Z", **GOOD)])
    conn, _ = ingest_into(tmp_path, landing)
    assert conn.execute("select count(*) from raw.events").fetchone()[0] == 1


def test_quarantined_row_keeps_the_whole_raw_row_and_its_file(tmp_path, landing):
    path = write_events(
        landing, "a.csv", [event("e9", "page_view", "soon", user_id="u1", category="toys")]
    )
    conn, _ = ingest_into(tmp_path, landing)
    file, row, raw = conn.execute(
        "select source_file, source_row, raw_row from audit.quarantined_events"
    ).fetchone()
    assert (file, row) == (str(path), 1)
    assert '"category":"toys"' in raw and '"occurred_at":"soon"' in raw


def test_duplicates_count_once_and_the_first_ingested_wins(tmp_path, landing):
    write_events(
        landing,
        "1.csv",
        [
            event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="first"),
            event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="second-in-file"),
        ],
    )
    write_events(
        landing, "2.csv", [event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="other-file")]
    )
    conn, report = ingest_into(tmp_path, landing)
    assert conn.execute("select user_id from raw.events").fetchall() == [("first",)]
    assert (report.rows_accepted, report.rows_duplicate) == (1, 2)
    assert_reconciled(conn)


def test_duplicate_of_an_earlier_run_is_counted_as_duplicate(tmp_path, landing):
    write_events(landing, "1.csv", [event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    conn, _ = ingest_into(tmp_path, landing)
    write_events(
        landing, "2.csv", [event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="late")]
    )
    report = ingest(conn, landing, INGESTED_AT)
    assert (report.rows_landed, report.rows_duplicate, report.rows_accepted) == (1, 1, 0)
    assert conn.execute("select user_id from raw.events").fetchall() == [("u1",)]


def test_relanding_the_same_file_changes_nothing(tmp_path, landing):
    write_events(landing, "1.csv", [event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    conn, _ = ingest_into(tmp_path, landing)
    before = conn.execute("select count(*) from audit.ingestion_reconciliation").fetchone()
    report = ingest(conn, landing, INGESTED_AT)
    assert report.files_skipped == 1 and report.files_ingested == 0
    assert conn.execute("select count(*) from audit.ingestion_reconciliation").fetchone() == before
    assert conn.execute("select count(*) from raw.events").fetchone()[0] == 1


def test_gzipped_jsonl_with_nested_properties_is_read(tmp_path, landing):
    rows = [
        {
            "event_id": "j1",
            "event_type": "search",
            "occurred_at": "2026-03-01T10:00:00+02:00",
            "anonymous_id": "a1",
            "properties": {"query": "shoes"},
            "price": 3.5,
        },
        {
            "event_id": "j2",
            "event_type": "login",
            "occurred_at": "2026-03-01 09:00:00",
            "user_id": "u1",
            "anonymous_id": "a1",
        },
    ]
    write_rows(landing / "events" / "batch.jsonl.gz", rows)
    conn, _ = ingest_into(tmp_path, landing)
    assert conn.execute(
        "select event_id, occurred_at, price, properties from raw.events order by event_id"
    ).fetchall() == [
        ("j1", datetime(2026, 3, 1, 8, 0), 3.5, '{"query":"shoes"}'),
        ("j2", datetime(2026, 3, 1, 9, 0), None, None),
    ]


def test_malformed_json_line_is_quarantined_and_its_neighbours_accepted(tmp_path, landing):
    (landing / "events" / "mixed.jsonl").write_text(
        '{"event_id": "j1", "event_type": "login", "occurred_at": "2026-03-01", "user_id": "u"}\n'
        "{this is not json\n"
        '{"event_id": "j2", "event_type": "login", "occurred_at": "2026-03-01", "user_id": "u"}\n'
    )
    conn, report = ingest_into(tmp_path, landing)
    assert (report.rows_landed, report.rows_accepted, report.rows_quarantined) == (3, 2, 1)
    assert reasons(conn) == {"#2": "malformed_row"}


def test_parquet_and_csv_land_side_by_side(tmp_path, landing):
    write_events(landing, "a.parquet", [event("p1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    write_events(landing, "b.csv.gz", [event("c1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    conn, _ = ingest_into(tmp_path, landing)
    assert conn.execute("select event_id from raw.events order by 1").fetchall() == [
        ("c1",),
        ("p1",),
    ]


def test_unreadable_file_is_rejected_with_its_error_and_the_run_goes_on(tmp_path, landing):
    (landing / "events" / "broken.parquet").write_bytes(b"not a parquet file at all")
    write_events(landing, "good.csv", [event("g1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    conn, report = ingest_into(tmp_path, landing)
    assert [Path(p).name for p, _ in report.files_rejected] == ["broken.parquet"]
    status, error = conn.execute(
        "select status, error from audit.ingestion_reconciliation "
        "where source_file like '%broken.parquet'"
    ).fetchone()
    assert status == "rejected" and "parquet" in error.lower()
    assert conn.execute("select count(*) from raw.events").fetchone()[0] == 1


def test_unsupported_file_type_is_rejected_not_ignored(tmp_path, landing):
    (landing / "events" / "notes.txt").write_text("hello")
    conn, report = ingest_into(tmp_path, landing)
    assert len(report.files_rejected) == 1 and "unsupported" in report.files_rejected[0][1]


def test_header_names_match_case_insensitively_and_extra_columns_are_kept_raw(tmp_path, landing):
    (landing / "events" / "a.csv").write_text(
        "Event_ID,EVENT_TYPE,Occurred_At,User_Id,campaign\n"
        "e1,page_view,2026-03-01T00:00:00Z,u1,spring\n"
    )
    conn, _ = ingest_into(tmp_path, landing)
    assert conn.execute("select event_id, user_id from raw.events").fetchall() == [("e1", "u1")]


def test_customers_newest_file_wins_and_missing_consent_means_no(tmp_path, landing):
    write_rows(
        landing / "customers" / "1.csv",
        [
            {"customer_id": "u1", "email": "a@example.com", "consent_email": "true"},
            {"customer_id": None, "email": "x@example.com", "consent_email": "true"},
        ],
    )
    conn, report = ingest_into(tmp_path, landing)
    assert conn.execute(
        "select customer_id, consent_email, consent_sms from raw.customers"
    ).fetchall() == [("u1", True, False)]
    assert reasons(conn) == {"#2": "missing_customer_id"}
    assert_reconciled(conn)


def test_mixed_batch_reconciles_per_file(tmp_path, landing):
    write_events(
        landing,
        "a.csv",
        [
            event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD),
            event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD),
            event("e2", "page_view", "garbage", **GOOD),
        ],
    )
    write_events(
        landing,
        "b.jsonl",
        [
            event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD),
            event("e3", "page_view", "2026-03-01T00:00:00Z", **GOOD),
        ],
    )
    conn, _ = ingest_into(tmp_path, landing)
    rows = conn.execute(
        "select regexp_extract(source_file, '[^/]+$'), rows_landed, rows_accepted, "
        "rows_quarantined, rows_duplicate from audit.ingestion_reconciliation order by 1"
    ).fetchall()
    assert rows == [("a.csv", 3, 1, 1, 1), ("b.jsonl", 2, 1, 0, 1)]


@pytest.mark.parametrize("name", ["bad.parquet", "bad.csv.gz"])
def test_quarantined_rows_of_tabular_files_keep_their_raw_row(tmp_path, landing, name):
    write_events(
        landing,
        name,
        [
            event("ok", "page_view", "2026-03-01T00:00:00Z", user_id="u1"),
            event("e9", "page_view", "soon", user_id="u1", category="toys"),
            event("ok2", "page_view", "2026-03-01T00:00:00Z", user_id="u1"),
        ],
    )
    conn, _ = ingest_into(tmp_path, landing)
    row, raw = conn.execute("select source_row, raw_row from audit.quarantined_events").fetchone()
    assert row == 2
    assert '"category":"toys"' in raw and '"occurred_at":"soon"' in raw
    assert conn.execute("select count(*) from raw.events").fetchone()[0] == 2


def _corrupt_data_pages(path: Path) -> None:
    """Overwrites a Parquet file's column data but keeps its footer: its schema reads,
    its rows do not."""
    data = bytearray(path.read_bytes())
    footer_length = int.from_bytes(data[-8:-4], "little")
    for index in range(4, len(data) - 8 - footer_length):
        data[index] = 0xAB
    path.write_bytes(bytes(data))


def test_corrupt_parquet_file_read_with_others_is_rejected_alone(tmp_path, landing):
    for day in (1, 2, 3):
        write_events(
            landing,
            f"day{day}.parquet",
            [event(f"p{day}", "page_view", "2026-03-01T00:00:00Z", **GOOD)],
        )
    _corrupt_data_pages(landing / "events" / "day2.parquet")
    conn, report = ingest_into(tmp_path, landing)
    assert [Path(p).name for p, _ in report.files_rejected] == ["day2.parquet"]
    assert conn.execute("select event_id from raw.events order by 1").fetchall() == [
        ("p1",),
        ("p3",),
    ]
    assert_reconciled(conn)


def test_duplicate_in_a_later_parquet_file_loses_to_the_earlier_file(tmp_path, landing):
    write_events(
        landing, "1.parquet", [event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="first")]
    )
    write_events(
        landing,
        "2.parquet",
        [
            event("e2", "page_view", "2026-03-01T00:00:00Z", **GOOD),
            event("e1", "page_view", "2026-03-01T00:00:00Z", user_id="second"),
        ],
    )
    conn, report = ingest_into(tmp_path, landing)
    assert conn.execute("select event_id, user_id from raw.events order by 1").fetchall() == [
        ("e1", "first"),
        ("e2", "u1"),
    ]
    assert (report.rows_accepted, report.rows_duplicate) == (2, 1)


def test_typed_parquet_values_are_ingested_as_their_text_would_be(tmp_path, landing):
    # The same rows as typed Parquet and as text (CSV): timestamps with and without a time
    # zone and with nanoseconds (truncated), doubles (one printed with an exponent),
    # integers, NaN and negative amounts.
    typed = """
        select id as event_id, 'purchase' as event_type, cast(instant as {type}) as occurred_at,
            'u1' as user_id, price, quantity
        from (values
            ('t1', '2026-03-01 10:00:00.123456{nanos}', 0.1, 3),
            ('t2', '1999-12-31 23:59:59', 1e-05, 9007199254740993),
            ('t3', '2026-03-01 10:00:00', 'nan'::double, 1),
            ('t4', '2026-03-01 10:00:00+02', -0.5, 1),
            ('t5', '2026-03-01 10:00:00', -0.0, -2)
        ) as v(id, instant, price, quantity)
    """
    variants = {
        "plain": typed.format(type="timestamp", nanos=""),
        "zoned": typed.format(type="timestamptz", nanos=""),
        "nanos": typed.format(type="timestamp_ns", nanos="789"),
    }
    scratch = duckdb.connect()
    scratch.execute("set TimeZone = 'UTC'")
    for name, query in variants.items():
        for suffix in ("parquet", "csv"):
            target = landing / "events" / f"{name}.{suffix}"
            ids = f"replace(event_id, 't', '{name[0]}{suffix[0]}')"
            scratch.execute(
                f"copy (select * replace ({ids} as event_id) from ({query})) to '{target}'"
            )
    scratch.close()
    conn, _ = ingest_into(tmp_path, landing)
    stored = conn.execute(
        "select regexp_extract(_source_file, '[^/]+$'), _source_row, occurred_at, price, quantity "
        "from raw.events"
    ).fetchall()
    quarantined = conn.execute(
        "select regexp_extract(source_file, '[^/]+$'), source_row, reason "
        "from audit.quarantined_events"
    ).fetchall()
    for name in variants:
        as_text = {row[1:] for row in stored if row[0] == f"{name}.csv"}
        assert {row[1:] for row in stored if row[0] == f"{name}.parquet"} == as_text
        assert len(as_text) == 2
        reasons_as_text = {row[1:] for row in quarantined if row[0] == f"{name}.csv"}
        assert {row[1:] for row in quarantined if row[0] == f"{name}.parquet"} == reasons_as_text
        assert reasons_as_text == {
            (3, "invalid_number"),
            (4, "negative_amount"),
            (5, "negative_amount"),
        }


def test_accepted_rows_are_stored_in_file_and_row_order(tmp_path, landing):
    for day in (1, 2):
        write_events(
            landing,
            f"day{day}.parquet",
            [
                event(f"d{day}-{row}", "page_view", "2026-03-01T00:00:00Z", **GOOD)
                for row in range(3000)
            ]
            + [event("d1-0", "page_view", "2026-03-01T00:00:00Z", **GOOD)],
        )
    conn, _ = ingest_into(tmp_path, landing)
    stored = conn.execute(
        "select regexp_extract(_source_file, '[^/]+$'), _source_row from raw.events order by rowid"
    ).fetchall()
    assert len(stored) == 6000 and stored == sorted(stored)


def test_connection_takes_its_memory_limit_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DUCKDB_MEMORY_LIMIT", "1GB")
    conn = connect(tmp_path / "warehouse.duckdb")
    assert conn.execute(
        "select current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone() == ("953.6 MiB", str(tmp_path / "warehouse.duckdb.tmp"))


def test_memory_limit_that_is_not_a_size_is_a_settings_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DUCKDB_MEMORY_LIMIT", "plenty")
    with pytest.raises(SettingsError, match="SEGMENTS_DUCKDB_MEMORY_LIMIT"):
        connect(tmp_path / "warehouse.duckdb")


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The names of the landing files ingestion reads to hash them."""
    names: list[str] = []
    original = landing_files._sha256

    def counting(path: Path) -> str:
        names.append(path.name)
        return original(path)

    monkeypatch.setattr(landing_files, "_sha256", counting)
    return names


def test_a_file_read_by_an_earlier_run_is_not_read_again_while_unchanged(tmp_path, landing, hashed):
    write_events(landing, "a.parquet", [event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    write_events(landing, "b.parquet", [event("e2", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    conn, _ = ingest_into(tmp_path, landing)
    assert sorted(hashed) == ["a.parquet", "b.parquet"]
    hashed.clear()
    write_events(landing, "c.parquet", [event("e3", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    report = ingest(conn, landing, INGESTED_AT)
    assert hashed == ["c.parquet"]
    assert (report.files_ingested, report.files_skipped) == (1, 2)


def test_a_file_rewritten_with_its_old_size_and_time_is_read_again(tmp_path, landing, hashed):
    # The same size and modification time, other bytes: only the change time (which no
    # tool can set back) tells, and the file is read as the new content it is.
    path = write_events(
        landing, "a.parquet", [event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD)]
    )
    conn, _ = ingest_into(tmp_path, landing)
    before = path.stat()
    time.sleep(0.01)
    write_events(landing, "a.parquet", [event("e9", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    hashed.clear()
    report = ingest(conn, landing, INGESTED_AT)
    assert hashed == ["a.parquet"]
    assert report.files_ingested == 1
    assert conn.execute("select count(*) from raw.events where event_id = 'e9'").fetchone() == (1,)


def test_a_folder_that_cannot_be_listed_is_rejected_and_the_others_read(
    tmp_path, landing, monkeypatch
):
    write_events(landing, "a.parquet", [event("e1", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    locked = landing / "events" / "locked"
    locked.mkdir()
    write_rows(locked / "b.parquet", [event("e2", "page_view", "2026-03-01T00:00:00Z", **GOOD)])
    listing = os.scandir

    def scandir(path):
        if isinstance(path, str) and Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(landing_files.os, "scandir", scandir)
    conn, report = ingest_into(tmp_path, landing)
    assert report.files_ingested == 1
    assert report.files_rejected == [
        (str(locked), "[Errno 13] Permission denied: " + repr(str(locked)))
    ]
