"""The score marts as a run left them, for the Dagster metadata and the report; apart
from the models so that reading them does not load scikit-learn."""

from __future__ import annotations

import duckdb
import pandas as pd


def read_validation(conn: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """marts.score_evaluation and marts.score_calibration as the last run left them, or None
    where the scores are not built (a warehouse other than DuckDB)."""
    present = conn.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name in ('score_evaluation', 'score_calibration')"
    ).fetchone()[0]
    if present < 2:
        return None
    evaluation = conn.execute("select * from marts.score_evaluation order by score").df()
    calibration = conn.execute(
        "select * from marts.score_calibration order by score, bin_lower"
    ).df()
    return evaluation, calibration
