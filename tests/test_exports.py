"""Export files: deltas, byte-identical reruns, atomic publication, formula escaping,
and the validation that reads the written files back."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.activate.audience_files import (
    ExportError,
    SegmentSpec,
    escape_cell,
    export_audiences,
)
from orchestration.resources import ensure_warehouse

SEGMENTS = [SegmentSpec("lost_carts", "email", "email"), SegmentSpec("app_fans", "push", None)]
T1, T2, T3 = datetime(2026, 3, 1), datetime(2026, 3, 2), datetime(2026, 3, 3)
SHA = "a" * 64


@pytest.fixture
def warehouse(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_warehouse(conn)
    conn.execute("create schema marts")
    conn.execute(
        "create table marts.audience_members (segment varchar, user_id varchar, "
        "entered_at timestamp, channel varchar, is_holdout boolean, email_sha256 varchar, "
        "channel_address varchar, suppression_reason varchar)"
    )
    conn.execute(
        "create table marts.segment_thresholds (segment varchar, threshold_var varchar, "
        "kind varchar, applies_to varchar, threshold_value double, as_of timestamp)"
    )
    yield conn
    conn.close()


def set_members(conn, rows: list[tuple[str, str, datetime]], suppressed=()):
    conn.execute("delete from marts.audience_members")
    for segment, user_id, entered in rows:
        conn.execute(
            "insert into marts.audience_members values (?, ?, ?, 'email', false, ?, ?, null)",
            [segment, user_id, entered, SHA, f"{user_id}@example.com"],
        )
    for segment, user_id, reason in suppressed:
        conn.execute(
            "insert into marts.audience_members values (?, ?, ?, 'email', ?, ?, null, ?)",
            [segment, user_id, T1, reason == "holdout", SHA, reason],
        )


def export(conn, exports: Path, as_of: datetime, **options):
    return export_audiences(conn, exports, as_of, SEGMENTS, {"suites": "passed"}, **options)


def read(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_deltas_follow_three_exports(warehouse, tmp_path):
    exports = tmp_path / "exports"
    set_members(warehouse, [("lost_carts", "u1", T1), ("lost_carts", "u2", T1)])
    export(warehouse, exports, T1)
    set_members(warehouse, [("lost_carts", "u2", T1), ("lost_carts", "u3", T2)])
    export(warehouse, exports, T2)
    set_members(warehouse, [("lost_carts", "u3", T2), ("lost_carts", "u1", T3)])
    third = export(warehouse, exports, T3)

    second_dir, third_dir = exports / "20260302T0000Z", exports / "20260303T0000Z"
    assert [row.split(",")[0] for row in read(second_dir / "lost_carts.added.csv")[1:]] == ["u3"]
    assert [row.split(",")[0] for row in read(second_dir / "lost_carts.removed.csv")[1:]] == ["u1"]
    assert [row.split(",")[0] for row in read(third_dir / "lost_carts.added.csv")[1:]] == ["u1"]
    assert [row.split(",")[0] for row in read(third_dir / "lost_carts.removed.csv")[1:]] == ["u2"]
    assert third.previous_export == "20260302T0000Z"
    assert json.loads((exports / "latest.json").read_text())["export_id"] == "20260303T0000Z"


def test_first_export_adds_everyone_and_removes_no_one(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1)])
    export(warehouse, tmp_path / "exports", T1)
    folder = tmp_path / "exports" / "20260301T0000Z"
    assert read(folder / "lost_carts.added.csv") == read(folder / "lost_carts.csv")
    assert read(folder / "lost_carts.removed.csv") == ["user_id,email_sha256,segment,entered_at"]


def test_full_file_holds_only_rows_without_a_suppression_reason(warehouse, tmp_path):
    set_members(
        warehouse,
        [("lost_carts", "u1", T1)],
        suppressed=[("lost_carts", "held", "holdout"), ("lost_carts", "nope", "no_consent")],
    )
    export(warehouse, tmp_path / "exports", T1)
    assert read(tmp_path / "exports" / "20260301T0000Z" / "lost_carts.csv") == [
        "user_id,email_sha256,segment,entered_at",
        f"u1,{SHA},lost_carts,2026-03-01T00:00:00Z",
    ]


def test_every_segment_gets_a_file_even_when_empty(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1)])
    result = export(warehouse, tmp_path / "exports", T1)
    assert read(tmp_path / "exports" / "20260301T0000Z" / "app_fans.csv") == [
        "user_id,email_sha256,segment,entered_at"
    ]
    assert result.segments["app_fans"]["rows"] == 0


def test_rerun_with_the_same_inputs_writes_byte_identical_files(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1), ("lost_carts", "u2", T1)])
    exports = tmp_path / "exports"
    export(warehouse, exports, T1)
    first = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (exports / "20260301T0000Z").iterdir()
    }
    again = export(warehouse, exports, T1)
    second = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (exports / "20260301T0000Z").iterdir()
    }
    assert again.unchanged and first == second


def test_manifest_lists_every_file_with_rows_and_sha256(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1)])
    export(warehouse, tmp_path / "exports", T1)
    folder = tmp_path / "exports" / "20260301T0000Z"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-03-01T00:00:00Z"
    assert set(manifest["files"]) == {p.name for p in folder.glob("*.csv")}
    for name, info in manifest["files"].items():
        assert info["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert manifest["files"]["lost_carts.csv"]["rows"] == 1
    assert manifest["validation"]["export_files"]["success"] is True


def test_manifest_records_the_thresholds_each_segment_resolved(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1)])
    warehouse.execute(
        "insert into marts.segment_thresholds values "
        "('lost_carts', 'segments__x', 'percentile', '0.9 of cart_value', 41.5, ?), "
        "('app_fans', 'segments__y', 'by_cluster', 'high value', 5, ?), "
        "('app_fans', 'segments__y', 'by_cluster', 'default', 3, ?)",
        [T1, T1, T1],
    )
    export(warehouse, tmp_path / "exports", T1)
    manifest = json.loads((tmp_path / "exports" / "20260301T0000Z" / "manifest.json").read_text())
    assert manifest["segments"]["lost_carts"]["thresholds"] == [
        {
            "var": "segments__x",
            "kind": "percentile",
            "applies_to": "0.9 of cart_value",
            "value": 41.5,
        }
    ]
    assert [t["applies_to"] for t in manifest["segments"]["app_fans"]["thresholds"]] == [
        "default",
        "high value",
    ]


def test_crash_between_files_leaves_no_partial_export_and_latest_unchanged(warehouse, tmp_path):
    exports = tmp_path / "exports"
    set_members(warehouse, [("lost_carts", "u1", T1)])
    export(warehouse, exports, T1)
    latest_before = (exports / "latest.json").read_bytes()
    written = []

    def crash_on_third_file(path: Path, data: bytes) -> None:
        if len(written) == 2:
            raise OSError("disk full")
        written.append(path.name)
        path.write_bytes(data)

    set_members(warehouse, [("lost_carts", "u2", T2)])
    with pytest.raises(OSError, match="disk full"):
        export(warehouse, exports, T2, write_file=crash_on_third_file)
    assert sorted(p.name for p in exports.iterdir()) == ["20260301T0000Z", "latest.json"]
    assert (exports / "latest.json").read_bytes() == latest_before


def test_written_file_with_a_pair_outside_the_memberships_is_not_published(warehouse, tmp_path):
    exports = tmp_path / "exports"
    set_members(warehouse, [("lost_carts", "u1", T1)])
    export(warehouse, exports, T1)
    latest_before = (exports / "latest.json").read_bytes()

    def swap_the_member(path: Path, data: bytes) -> None:
        if path.name == "lost_carts.csv":  # same row count, another user
            data = data.replace(b"\nu2,", b"\nu9,")
        path.write_bytes(data)

    set_members(warehouse, [("lost_carts", "u2", T2)])
    with pytest.raises(ExportError, match="export_files suite"):
        export(warehouse, exports, T2, write_file=swap_the_member)
    assert sorted(p.name for p in exports.iterdir()) == ["20260301T0000Z", "latest.json"]
    assert (exports / "latest.json").read_bytes() == latest_before


def test_formula_cells_are_escaped_and_deltas_still_match(warehouse, tmp_path):
    exports = tmp_path / "exports"
    set_members(warehouse, [("lost_carts", "=HYPERLINK(1)", T1), ("lost_carts", "-5", T1)])
    export(warehouse, exports, T1)
    lines = read(exports / "20260301T0000Z" / "lost_carts.csv")
    assert lines[1].startswith("'-5,") and lines[2].startswith("'=HYPERLINK(1),")
    export(warehouse, exports, T2)  # same members: nothing added or removed
    assert len(read(exports / "20260302T0000Z" / "lost_carts.added.csv")) == 1
    assert len(read(exports / "20260302T0000Z" / "lost_carts.removed.csv")) == 1


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_escape_cell_neutralises_formula_starts(value):
    assert escape_cell(value) == "'" + value


def test_escape_cell_keeps_numbers_and_plain_text():
    assert escape_cell(-5) == -5 and escape_cell("u1") == "u1"


def test_clear_addresses_replace_the_hash_when_configured(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1)])
    export(warehouse, tmp_path / "exports", T1, clear_addresses=True)
    assert read(tmp_path / "exports" / "20260301T0000Z" / "lost_carts.csv") == [
        "user_id,email,segment,entered_at",
        "u1,u1@example.com,lost_carts,2026-03-01T00:00:00Z",
    ]


def test_unsafe_segment_name_cannot_become_a_path(warehouse, tmp_path):
    with pytest.raises(ExportError, match="not a safe file name"):
        export_audiences(
            warehouse,
            tmp_path / "exports",
            T1,
            [SegmentSpec("../../etc/passwd", "email", "email")],
            {},
        )


def test_export_log_records_each_exported_row_once_per_export(warehouse, tmp_path):
    set_members(warehouse, [("lost_carts", "u1", T1)])
    export(warehouse, tmp_path / "exports", T1)
    export(warehouse, tmp_path / "exports", T1)
    assert warehouse.execute(
        "select export_id, segment, user_id, exported_at from audit.export_log"
    ).fetchall() == [("20260301T0000Z", "lost_carts", "u1", T1)]
