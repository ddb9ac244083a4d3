"""The learned marts as a run left them (scores, clusters), for the Dagster metadata and
the report; apart from the models so that reading them does not load scikit-learn."""

from __future__ import annotations

import duckdb
import pandas as pd


def read_validation(conn: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """marts.score_evaluation and marts.score_calibration as the last run left them, or None
    where the scores are not built (a warehouse other than DuckDB)."""
    if not (_table_exists(conn, "score_evaluation") and _table_exists(conn, "score_calibration")):
        return None
    evaluation = conn.execute("select * from marts.score_evaluation order by score").df()
    calibration = conn.execute(
        "select * from marts.score_calibration order by score, bin_lower"
    ).df()
    return evaluation, calibration


def _table_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'marts' and table_name = ?",
            [name],
        ).fetchone()[0]
    )


def read_clusters(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The stored cluster model with each cluster's users, or None where it is not built."""
    if not (_table_exists(conn, "user_cluster_model") and _table_exists(conn, "user_clusters")):
        return None
    return conn.execute(
        """
        select
            model.cluster, model.cluster_label, model.model_version, model.fitted_at,
            model.k, model.silhouette, model.typical_recency_days, model.typical_frequency,
            model.typical_monetary, model.typical_engagement,
            count(users.user_id) as users
        from marts.user_cluster_model as model
        left join marts.user_clusters as users on model.cluster = users.cluster
        group by all
        order by model.cluster
        """
    ).df()
