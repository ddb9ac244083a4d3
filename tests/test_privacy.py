"""Consent and personal data: a withdrawal takes effect in the same day's export, and no
email address, phone number or email hash reaches a log line, Dagster's event log and
metadata, or a validation report, even when rows are quarantined, a file is rejected, a
person is erased or a suite fails."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from orchestration.core.settings import Settings
from orchestration.definitions import build_definitions
from orchestration.jobs import pipeline_job
from orchestration.quality.suites import WITHHELD, load_suites, validate
from tests.conftest import AS_OF, at, event, run, write_events, write_rows

D = timedelta(days=1)


def buyer(user: str) -> list[dict]:
    """Two purchases in the last 30 days: a frequent buyer (email channel)."""
    return [
        event(f"{user}-1", "purchase", at(-10 * D), user_id=user, order_id=f"{user}-1", revenue=30),
        event(f"{user}-2", "purchase", at(-3 * D), user_id=user, order_id=f"{user}-2", revenue=30),
    ]


def exported_users(export: Path, name: str = "frequent_buyers.csv") -> set[str]:
    frame = pd.read_csv(export / name, dtype=str)
    return set(frame["user_id"])


def test_consent_withdrawn_today_takes_effect_in_todays_export(tmp_path):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    write_events(landing, "events.csv", buyer("stays") + buyer("withdraws"))
    write_rows(
        landing / "customers" / "day1.csv",
        [
            {"customer_id": user, "email": f"{user}@example.com", "consent_email": True}
            for user in ("stays", "withdraws")
        ],
    )
    run(landing, warehouse, as_of=AS_OF - D)
    assert exported_users(tmp_path / "exports" / "20260228T0000Z") == {"stays", "withdraws"}

    # This morning's customer file withdraws consent; today's run must honour it.
    write_rows(
        landing / "customers" / "day2.csv",
        [{"customer_id": "withdraws", "email": "withdraws@example.com", "consent_email": False}],
    )
    run(landing, warehouse, as_of=AS_OF)
    today = tmp_path / "exports" / "20260301T0000Z"
    assert exported_users(today) == {"stays"}
    assert exported_users(today, "frequent_buyers.removed.csv") == {"withdraws"}


PEOPLE = {
    user: (f"{user.title()}.Private@Example.com", f"+1555000{index:04d}")
    for index, user in enumerate(("alice", "bob", "carol", "erased"))
}


def personal_values() -> list[str]:
    values = []
    for email, phone in PEOPLE.values():
        values += [email, email.lower(), phone, hashlib.sha256(email.lower().encode()).hexdigest()]
    return values


def test_no_personal_data_in_logs_dagster_metadata_or_reports(tmp_path, capfd, caplog):
    landing = tmp_path / "landing"
    write_events(landing, "events.csv", [row for user in PEOPLE for row in buyer(user)])
    customers = [
        {"customer_id": user, "email": f" {email} ", "phone": phone, "consent_email": True}
        for user, (email, phone) in PEOPLE.items()
    ]
    # A customer row without its id is quarantined with its raw row (which quotes the email).
    customers.append(
        {"customer_id": None, "email": PEOPLE["alice"][0], "phone": PEOPLE["alice"][1]}
    )
    write_rows(landing / "customers" / "customers.csv", customers)
    # A Latin-1 file is rejected; its error must not quote the row with the address.
    (landing / "customers" / "latin1.csv").write_bytes(
        f"customer_id,email\nbob,{PEOPLE['bob'][0]}\ncafé,{PEOPLE['carol'][0]}\n".encode("latin-1")
    )
    write_rows(
        landing / "erasure_requests" / "requests.csv",
        [{"user_id": "erased", "requested_at": at(-D)}],
    )
    settings = Settings(
        landing_dir=landing,
        warehouse=tmp_path / "warehouse.duckdb",
        exports_dir=tmp_path / "exports",
        as_of=AS_OF,
    ).resolved()

    caplog.set_level("DEBUG")
    with dg.instance_for_test() as instance:
        result = (
            build_definitions(settings)
            .resolve_job_def(pipeline_job.name)
            .execute_in_process(
                instance=instance,
                run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}},
            )
        )
        assert result.success
        stored = instance.all_logs(result.run_id)
    captured = capfd.readouterr()
    reports = [path.read_text() for path in (tmp_path / "exports" / "validation").rglob("*.json")]

    texts = {
        "stdout and stderr": captured.out + captured.err,
        "log records": "\n".join(record.getMessage() for record in caplog.records),
        "dagster event log": "\n".join(repr(entry) for entry in stored),
        "validation reports": "\n".join(reports),
    }
    # The search would see them: the run did log quarantine, rejection and erasure.
    assert "rejected latin1.csv" in texts["stdout and stderr"] + texts["log records"]
    assert "missing_customer_id" in texts["dagster event log"]
    assert "rows_erased" in texts["dagster event log"]
    assert len(stored) > 100
    for where, text in texts.items():
        leaked = [value for value in personal_values() if value.lower() in text.lower()]
        assert not leaked, f"personal data in {where}: {leaked}"


def test_a_failed_expectation_on_a_personal_column_keeps_no_sample():
    suite = load_suites()["audience_exports"]
    email = "Leaky.Person@Example.com"
    frame = pd.DataFrame(
        {
            "segment": ["frequent_buyers"],
            "user_id": ["u1"],
            "channel": ["email"],
            "entered_at": [pd.Timestamp(AS_OF - D)],
            "is_holdout": [False],
            "email_sha256": [email],  # a clear address where the hash belongs
            "is_erased": [False],
            "has_consent": [True],
        }
    )
    from orchestration.quality.suites import standard_parameters

    result = validate(suite, frame, standard_parameters(AS_OF, ["frequent_buyers"]))
    assert not result.success
    failed = [item for item in result.failed if item["kwargs"].get("column") == "email_sha256"]
    assert failed and all(item["sample"] == WITHHELD for item in failed)
    assert failed[0]["unexpected_count"] == 1
    assert email.lower() not in repr(result.to_dict()).lower()
