"""Erasure end to end: a person exported on day one asks to be erased on day two, and a late
file brings more of their events on day three. After each run the whole warehouse (every
row of every table and view, in every schema) is searched for their ids, email address and
email hash, and every export made after the request is searched too."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tests.conftest import AS_OF, at, event, query, run, write_events, write_rows

D, H = timedelta(days=1), timedelta(hours=1)
USER, ANONYMOUS, LATE_ANONYMOUS = "erase-me-7731", "anon-erase-me-7731", "anon-erase-late-7731"
EMAIL = "Erase.Me.7731@Example.com"
EMAIL_SHA256 = hashlib.sha256(EMAIL.lower().encode()).hexdigest()
PERSONAL = (USER, ANONYMOUS, LATE_ANONYMOUS, EMAIL, EMAIL.lower(), EMAIL_SHA256)


def buyer_events(user: str, prefix: str, anonymous: str | None = None) -> list[dict]:
    """Two purchases in the last 30 days (frequent_buyers), seen first as a visitor."""
    rows = [
        event(
            f"{prefix}-1",
            "purchase",
            at(-10 * D),
            user_id=user,
            order_id=f"{prefix}-o1",
            revenue=30,
        ),
        event(
            f"{prefix}-2", "purchase", at(-3 * D), user_id=user, order_id=f"{prefix}-o2", revenue=30
        ),
    ]
    if anonymous:
        rows += [
            event(f"{prefix}-v", "product_view", at(-12 * D), anonymous_id=anonymous),
            event(f"{prefix}-l", "login", at(-11 * D), user_id=user, anonymous_id=anonymous),
        ]
    return rows


def exported_text(export: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(export.iterdir()))


def personal_data_in_warehouse(warehouse: Path) -> dict[str, int]:
    """Rows of each relation whose text (as JSON) contains any of the personal values."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        relations = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() order by all"
        ).fetchall()
        assert len(relations) > 30  # raw, audit and every model
        found = {}
        for schema, table in relations:
            hits = conn.execute(
                f'select count(*) from "{schema}"."{table}" as t where '
                + " or ".join(
                    f"contains(lower(to_json(t)::varchar), $v{i})" for i in range(len(PERSONAL))
                ),
                {f"v{i}": value.lower() for i, value in enumerate(PERSONAL)},
            ).fetchone()[0]
            if hits:
                found[f"{schema}.{table}"] = hits
        return found
    finally:
        conn.close()


@pytest.fixture(scope="module")
def erased(tmp_path_factory):
    """The warehouse and exports after the three days; the searches of each day."""
    root = tmp_path_factory.mktemp("erasure")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    write_events(
        landing,
        "day1.csv",
        buyer_events(USER, "gone", ANONYMOUS)
        + buyer_events("keep-1", "keep")
        # A bad row of theirs lands in quarantine with the whole raw row.
        + [event("gone-bad", "purchase", at(-2 * D), user_id=USER, revenue=-5)],
    )
    write_rows(
        landing / "customers" / "customers.csv",
        [
            {
                "customer_id": USER,
                "email": f" {EMAIL} ",
                "phone": "+15550007731",
                "consent_email": True,
            },
            {"customer_id": "keep-1", "email": "keep-1@example.com", "consent_email": True},
        ],
    )
    run(landing, warehouse, as_of=AS_OF - D)
    days = {"before": personal_data_in_warehouse(warehouse)}

    write_rows(
        landing / "erasure_requests" / "day2.csv",
        [{"user_id": USER, "requested_at": at(-D + H)}],
    )
    run(landing, warehouse, as_of=AS_OF)
    days["after_request"] = personal_data_in_warehouse(warehouse)

    # A late file: more of their events, one linking them to a new device.
    write_events(
        landing,
        "day3-late.csv",
        [
            event("late-1", "product_view", at(-2 * H), user_id=USER),
            event("late-2", "login", at(-H), user_id=USER, anonymous_id=LATE_ANONYMOUS),
            event("late-3", "add_to_cart", at(-H), anonymous_id=LATE_ANONYMOUS, price=9),
            event("late-4", "purchase", at(-H), user_id="keep-1", order_id="keep-o3", revenue=5),
        ],
    )
    # And a broken line of theirs, quarantined as malformed with the raw text.
    (landing / "events" / "day3-broken.jsonl").write_text(
        f'{{"event_id": "late-5", "user_id": "{USER}", "event_type": "page_view"\n'
    )
    run(landing, warehouse, as_of=AS_OF + D)
    days["after_late_file"] = personal_data_in_warehouse(warehouse)
    return root, days


def test_the_search_finds_the_person_before_the_request(erased):
    _, days = erased
    assert {"raw.events", "raw.customers", "audit.quarantined_events"} <= set(days["before"])
    assert {"marts.user_metrics", "marts.audience_members", "audit.export_log"} <= set(
        days["before"]
    )


def test_after_the_request_nothing_of_the_person_is_left_in_the_warehouse(erased):
    _, days = erased
    assert days["after_request"] == {}


def test_late_events_of_an_erased_person_are_erased_on_arrival(erased):
    root, days = erased
    assert days["after_late_file"] == {}
    # The bystander's late purchase in the same file is kept.
    assert query(
        root / "warehouse.duckdb", "select count(*) from raw.events where event_id = 'late-4'"
    ) == [(1,)]


def test_the_person_is_in_the_first_export_and_in_no_export_after_the_request(erased):
    root, _ = erased
    exports = root / "exports"
    first, *later = sorted(p for p in exports.iterdir() if p.name[0].isdigit())
    assert USER in exported_text(first)
    assert len(later) == 2
    for export in later:
        text = exported_text(export).lower()
        assert not [value for value in PERSONAL if value.lower() in text], export.name
        # frequent_buyers still lists the bystander, and removes nobody: the erased
        # person is not announced as having left.
        assert "keep-1" in (export / "frequent_buyers.csv").read_text()
    manifest = json.loads((later[0] / "manifest.json").read_text())
    assert manifest["segments"]["frequent_buyers"]["removed"] == 0


def test_the_erasure_is_logged_without_the_identity(erased):
    root, _ = erased
    rows = query(
        root / "warehouse.duckdb",
        "select request_file, request_row, requested_at, applied_at from audit.erasure_log",
    )
    assert len(rows) == 1
    request_file, request_row, requested_at, applied_at = rows[0]
    assert request_file.endswith("erasure_requests/day2.csv") and request_row == 1
    assert requested_at.isoformat() == (AS_OF - D + H).isoformat()
    assert applied_at is not None
    # What is kept to erase late arrivals: hashes of the ids, not the ids.
    kept = {
        digest
        for (digest,) in query(
            root / "warehouse.duckdb", "select identity_sha256 from audit.erased_identities"
        )
    }
    assert kept == {
        hashlib.sha256(identity.encode()).hexdigest()
        for identity in (USER, ANONYMOUS, LATE_ANONYMOUS)
    }


def test_the_bystander_is_untouched(erased):
    root, _ = erased
    rows = query(
        root / "warehouse.duckdb",
        "select user_id from marts.segment_memberships where segment = 'frequent_buyers'",
    )
    assert rows == [("keep-1",)]
