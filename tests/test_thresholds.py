"""Segment thresholds that are not plain numbers (macros/thresholds.sql): a value per
cluster or per journey stage, applied to each user, and clear errors for anything else.
The percentile form is a dbt unit test of seg_high_cart_abandoners. Here the segment is
compiled with the var set, and its SQL run on hand-made marts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import compile_model

VAR = "segments__high_abandoner_min_abandonments"


def compile_segment(tmp_path: Path, value: object) -> tuple[str, Path]:
    _, text = compile_model(tmp_path, "seg_high_cart_abandoners", {VAR: value})
    return text, tmp_path / "w.duckdb"


def members(warehouse: Path, sql: str) -> dict[str, int]:
    conn = duckdb.connect(str(warehouse))
    try:
        conn.execute("create schema if not exists marts")
        conn.execute("create schema if not exists intermediate")
        conn.execute(
            "create or replace table marts.user_metrics as select * from (values "
            "('big', 4), ('big5', 5), ('casual', 2), ('plain', 3), ('unclustered', 3)) "
            "as t(user_id, cart_abandonments_7d)"
        )
        conn.execute(
            "create or replace table marts.user_clusters as select * from (values "
            "('big', 'high value'), ('big5', 'high value'), ('casual', 'casual browser'), "
            "('plain', 'regular buyer')) as t(user_id, cluster_label)"
        )
        conn.execute(
            "create or replace table intermediate.int_user_journey_stages as select * from "
            "(values ('big', 'loyalty'), ('big5', 'loyalty'), ('casual', 'decision'), "
            "('plain', 'decision'), ('unclustered', 'awareness')) as t(user_id, journey_stage)"
        )
        return dict(conn.execute(sql).fetchall())
    finally:
        conn.close()


def test_a_threshold_per_cluster_applies_to_each_users_cluster(tmp_path):
    sql, warehouse = compile_segment(
        tmp_path, {"by_cluster": {"high value": 5, "casual browser": 2}, "default": 3}
    )
    # high value needs 5, casual browser 2, any other cluster and no cluster the default 3.
    assert members(warehouse, sql) == {"big5": 5, "casual": 2, "plain": 3, "unclustered": 3}


def test_a_threshold_per_journey_stage_applies_to_each_users_stage(tmp_path):
    sql, warehouse = compile_segment(
        tmp_path, {"by_journey_stage": {"loyalty": 5, "awareness": 4}, "default": 2}
    )
    assert members(warehouse, sql) == {"big5": 5, "casual": 2, "plain": 3}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("three", f"{VAR} must be a number"),
        (
            {"percentile": 1.5, "of": "cart_abandonments_7d"},
            "percentile must be a number from 0 to 1",
        ),
        ({"percentile": 0.9}, "a percentile needs `of`"),
        ({"by_cluster": {"high value": 5}}, "needs a numeric default"),
        (
            {"by_cluster": {"it's": 5}, "default": 3},
            "each value must be a number under a plain name",
        ),
    ],
    ids=["text", "percentile_above_1", "percentile_without_column", "no_default", "quoted_key"],
)
def test_a_threshold_that_is_no_threshold_stops_the_compile_with_its_name(tmp_path, value, error):
    message, _ = compile_segment(tmp_path, value)
    assert VAR in message and error in message
