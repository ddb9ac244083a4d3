"""Through the `segments` command, against a copy of the dbt project: a new segment is
one SQL file and a few YAML lines, and a bad row that slips past dbt's tests is stopped by
the Great Expectations gate before anything is exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.core.settings import PROJECT_ROOT
from orchestration.quality.suites import load_suites, validate
from tests.conftest import event, project_copy, write_events, write_rows

AS_OF = "2026-03-01T00:00:00Z"


def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    write_events(
        path,
        "events.csv",
        [
            event(
                f"e{i}",
                "purchase",
                f"2026-02-{20 + i}T10:00:00Z",
                user_id=f"u{i % 3}",
                order_id=f"o{i}",
                revenue=10 + i,
            )
            for i in range(6)
        ],
    )
    write_rows(
        path / "customers" / "c.csv",
        [
            {"customer_id": f"u{i}", "email": f"u{i}@example.com", "consent_email": True}
            for i in range(3)
        ],
    )
    return path


def segments_run(tmp_path: Path, project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGMENTS_DBT_PROJECT_DIR": str(project)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestration.cli",
            "run",
            "--landing",
            str(landing(tmp_path)),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--exports",
            str(tmp_path / "exports"),
            "--as-of",
            AS_OF,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )


def test_a_new_segment_model_gets_its_csv_with_no_python_change(tmp_path):
    project = project_copy(tmp_path)
    (project / "models" / "segments" / "seg_big_spenders.sql").write_text(
        "select user_id, revenue_30d from {{ ref('user_metrics') }} where revenue_30d >= 20\n"
    )
    (project / "models" / "segments" / "_big_spenders.yml").write_text(
        "version: 2\nmodels:\n  - name: seg_big_spenders\n"
        "    description: Spent 20 or more in the last 30 days.\n"
        "    config:\n      meta:\n        segment:\n          name: big_spenders\n"
        "          channel: email\n          priority: 5\n          holdout_share: 0\n"
    )
    result = segments_run(tmp_path, project)
    assert result.returncode == 0, result.stderr
    assert "big_spenders" in result.stdout
    lines = (tmp_path / "exports" / "20260301T0000Z" / "big_spenders.csv").read_text().splitlines()
    # u0: 10 + 13, u1: 11 + 14, u2: 12 + 15: everyone spent 20 or more.
    assert [line.split(",")[0] for line in lines[1:]] == ["u0", "u1", "u2"]


def test_a_bad_row_past_dbt_fails_validation_and_blocks_every_export(tmp_path):
    project = project_copy(tmp_path)
    # A bug an analyst might make: holdouts no longer suppressed, and the dbt test that
    # would have caught it removed with it. The Great Expectations gate must stop it.
    model = project / "models" / "audiences" / "audience_members.sql"
    model.write_text(model.read_text().replace("when is_holdout then 'holdout'", ""))
    schema = project / "models" / "audiences" / "_audiences.yml"
    schema.write_text(
        schema.read_text().replace(
            '            expression: "not (is_holdout and suppression_reason is null)"',
            '            expression: "true"',
        )
    )
    (project / "models" / "segments" / "seg_everyone.sql").write_text(
        "select user_id from {{ ref('user_metrics') }}\n"
    )
    (project / "models" / "segments" / "_everyone.yml").write_text(
        "version: 2\nmodels:\n  - name: seg_everyone\n    config:\n      meta:\n"
        "        segment:\n          name: everyone\n          holdout_share: 1\n"
    )
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "latest.json").write_text('{"export_id": "earlier"}\n')

    result = segments_run(tmp_path, project)

    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "gx_audience_exports" in result.stderr
    assert [p.name for p in exports.iterdir() if not p.name.startswith(".")] == [
        "latest.json",
        "validation",
    ]
    assert json.loads((exports / "latest.json").read_text()) == {"export_id": "earlier"}
    report = json.loads(
        (exports / "validation" / "20260301T0000Z" / "audience_exports.json").read_text()
    )
    assert report["success"] is False
    assert report["failed_expectations"][0]["unexpected_count"] == 3


def test_audience_suite_fails_on_a_holdout_row():
    import pandas as pd

    suite = load_suites()["audience_exports"]
    frame = pd.DataFrame(
        {
            "segment": ["s", "s"],
            "user_id": ["a", "b"],
            "channel": ["email", "email"],
            "entered_at": pd.to_datetime(["2026-03-01", "2026-03-01"]),
            "is_holdout": [False, True],
            "email_sha256": ["a" * 64, "b" * 64],
            "is_erased": [False, False],
            "has_consent": [True, True],
        }
    )
    params = {"known_segments": ["s"], "as_of": pd.Timestamp("2026-03-01")}
    result = validate(suite, frame, params)
    assert not result.success
    assert [item["expectation"] for item in result.failed] == ["expect_column_values_to_be_in_set"]
    assert result.failed[0]["sample"] == [True]
    clean = validate(suite, frame[frame.user_id == "a"], params)
    assert clean.success


@pytest.mark.parametrize(
    ("column", "value"),
    [("is_erased", True), ("has_consent", False), ("email_sha256", "not-a-hash")],
)
def test_audience_suite_fails_on_each_kind_of_bad_row(column, value):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "segment": ["s"],
            "user_id": ["a"],
            "channel": ["email"],
            "entered_at": pd.to_datetime(["2026-03-01"]),
            "is_holdout": [False],
            "email_sha256": ["a" * 64],
            "is_erased": [False],
            "has_consent": [True],
        }
    )
    frame[column] = [value]
    result = validate(
        load_suites()["audience_exports"],
        frame,
        {"known_segments": ["s"], "as_of": pd.Timestamp("2026-03-01")},
    )
    assert not result.success


SEGMENT_YAML = (
    "version: 2\nmodels:\n  - name: seg_everyone\n    config:\n      meta:\n"
    "        segment:\n{settings}"
)


def add_segment(project: Path, settings: str) -> None:
    (project / "models" / "segments" / "seg_everyone.sql").write_text(
        "select user_id from {{ ref('user_metrics') }}\n"
    )
    (project / "models" / "segments" / "_everyone.yml").write_text(
        SEGMENT_YAML.format(settings=settings)
    )


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (
            '          name: "x\' as segment, user_id from raw.events; drop table raw.events"\n',
            "must be lowercase letters, digits and underscores",
        ),
        ("          name: ../../../tmp/escaped\n", "must be lowercase letters"),
        (
            '          channel: "email\' as channel, 1 as priority from raw.customers --"\n',
            "channel must be email, sms or push",
        ),
        (
            '          priority: "1 as priority, (select count(*) from raw.customers)"\n',
            "priority must be a number",
        ),
        ('          holdout_share: "0) or (1 = 1"\n', "holdout_share must be a number"),
        (
            '          cooldown_days: "0; drop table audit.export_log"\n',
            "cooldown_days must be a number",
        ),
    ],
    ids=[
        "sql_in_name",
        "path_in_name",
        "sql_in_channel",
        "sql_in_priority",
        "sql_in_holdout_share",
        "sql_in_cooldown_days",
    ],
)
def test_segment_settings_cannot_inject_sql_or_escape_the_export_folder(
    tmp_path, monkeypatch, settings, error
):
    """The settings are spliced into the audience models' SQL; the segment catalog refuses
    any that is not a plain name, a known channel or a number, before any SQL runs."""
    from dbt.cli.main import dbtRunner

    project = project_copy(tmp_path)
    add_segment(project, settings)
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(tmp_path / "w.duckdb"))
    result = dbtRunner().invoke(
        [
            "compile",
            "--select",
            "int_segment_members",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(tmp_path / "target"),
            "--quiet",
        ]
    )
    assert not result.success
    assert error in str(result.exception) + str(result.result)


def test_an_injected_segment_name_stops_the_run_before_any_export(tmp_path):
    project = project_copy(tmp_path)
    add_segment(project, '          name: "x\'; drop table raw.events; --"\n')
    result = segments_run(tmp_path, project)
    assert result.returncode == 1
    assert "must be lowercase letters, digits and underscores" in result.stderr
    assert not (tmp_path / "exports" / "latest.json").exists()
    assert not list((tmp_path / "exports").glob("2*"))
    conn = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        assert conn.execute("select count(*) from raw.events").fetchone()[0] == 6
    finally:
        conn.close()
