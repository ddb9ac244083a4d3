"""Property tests: whatever rows land, ingestion does not raise, every landed row is
accepted, quarantined or a duplicate, and what is accepted obeys the rules."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.core.warehouse import connect
from orchestration.ingest.batch_load import ingest
from tests.conftest import EVENT_COLUMNS

INGESTED_AT = datetime(2026, 3, 2, 12)

# Text a feed might send: any printable or control character but lone surrogates, which
# no UTF-8 file can hold.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


def mostly(valid, odd):
    """Valid values nine times in ten, so that whole rows pass often enough for the rules
    on accepted rows to be exercised; odd ones the rest of the time."""
    return st.sampled_from(range(10)).flatmap(lambda draw: odd if draw == 9 else valid)


INSTANTS = mostly(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 3, 4)).map(
        lambda moment: moment.isoformat() + "Z"
    ),
    st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
            lambda moment: moment.isoformat()
        ),
        st.sampled_from(["20260301T1000+0100", "2026-060T10:00Z", "infinity", "2026-03", "soon"]),
        TEXT,
        st.none(),
    ),
)
NUMBERS = mostly(
    st.none() | st.integers(min_value=0, max_value=10**6),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.sampled_from(["12.5", "1e3", "-1", "cheap", ""]),
    ),
)
PROPERTIES = mostly(
    st.none()
    | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(
        json.dumps
    ),
    st.sampled_from(["[1, 2]", "{oops", "null", "{}"]) | TEXT,
)
ROWS = st.lists(
    st.fixed_dictionaries(
        {
            # A small alphabet, so that duplicates happen.
            "event_id": mostly(st.sampled_from(["e1", "e2", "e3", "e4"]), TEXT | st.none()),
            "event_type": mostly(st.sampled_from(["page_view", "purchase"]), TEXT | st.none()),
            "occurred_at": INSTANTS,
            "user_id": st.sampled_from(["u1", "u2"]) | TEXT | st.none(),
            "anonymous_id": st.sampled_from(["a1", "a2"]) | st.none(),
            "price": NUMBERS,
            "revenue": NUMBERS,
            "quantity": NUMBERS,
            "duration_seconds": NUMBERS,
            "properties": PROPERTIES,
        }
    ),
    max_size=12,
)


def write(folder: Path, name: str, rows: list[dict]) -> None:
    full = [{column: row.get(column) for column in EVENT_COLUMNS} for row in rows]
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(row) + "\n" for row in full))
    else:
        frame = pd.DataFrame(full, columns=list(EVENT_COLUMNS)).astype("string")
        if name.endswith(".csv"):
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    files=st.lists(
        st.tuples(st.sampled_from(["csv", "jsonl", "parquet"]), ROWS), min_size=1, max_size=3
    )
)
def test_every_landed_row_is_accounted_for(files):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        events = root / "landing" / "events"
        events.mkdir(parents=True)
        for number, (file_format, rows) in enumerate(files):
            write(events, f"{number}.{file_format}", rows)
        conn = connect(root / "warehouse.duckdb")
        try:
            report = ingest(conn, root / "landing", INGESTED_AT)
            per_file = conn.execute(
                "select source_file, status, error, rows_landed, rows_accepted, "
                "rows_quarantined, rows_duplicate from audit.ingestion_reconciliation"
            ).fetchall()
            assert len(per_file) == len(files)
            for source, status, error, landed, accepted, quarantined, duplicate in per_file:
                file_format, rows = files[int(Path(source).name.split(".")[0])]
                if status == "rejected":
                    # A bare carriage return ends a CSV line (pandas does not quote it), so
                    # such a file is malformed: rejected with a reason, its rows not counted.
                    assert error and landed == 0
                    assert file_format == "csv" and any(
                        "\r" in str(value) for row in rows for value in row.values()
                    )
                    continue
                assert status == "ingested"
                assert landed == len(rows)
                assert landed == accepted + quarantined + duplicate
            assert report.rows_landed == (
                report.rows_accepted + report.rows_quarantined + report.rows_duplicate
            )
            stored = conn.execute(
                "select count(*), count(distinct event_id), "
                "count(*) filter (where event_type is null or occurred_at is null "
                "or (user_id is null and anonymous_id is null) or price < 0 or revenue < 0 "
                "or quantity < 0 or occurred_at > $ceiling) "
                "from raw.events",
                {"ceiling": datetime(2026, 3, 3, 12)},
            ).fetchone()
            assert stored == (report.rows_accepted, report.rows_accepted, 0)
            quarantined = conn.execute("select count(*) from audit.quarantined_events").fetchone()
            assert quarantined == (report.rows_quarantined,)
        finally:
            conn.close()
