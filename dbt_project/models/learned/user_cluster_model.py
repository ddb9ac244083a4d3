"""marts.user_cluster_model: the stored k-means model of the customer clusters, one row per
cluster. Refitted when it is older than segments__cluster_refit_days, when the run asks
for it (segments__refit_clusters) or for an as_of before its fit; otherwise kept as the
last run left it (orchestration/predict/clusters.py)."""

import duckdb

from orchestration.predict import clusters


def model(dbt, session):
    features = dbt.ref("int_cluster_features").df()
    try:
        previous = clusters.from_frame(session.sql(f"select * from {dbt.this}").df())
    except duckdb.CatalogException:
        previous = None
    if features.empty:
        return clusters.to_frame(previous)
    as_of = features["as_of"].iloc[0].to_pydatetime()
    refit = clusters.needs_refit(
        previous,
        as_of,
        int(dbt.config.get("cluster_refit_days")),
        str(dbt.config.get("refit_clusters")).lower() == "true",
    )
    if not refit:
        return clusters.to_frame(previous)
    return clusters.to_frame(clusters.fit(features, dbt.config.get("cluster_count"), as_of))
