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
    # Each config.get stands alone: dbt finds the configs a Python model reads by looking
    # for these calls as plain statements' arguments, and passes only those it found.
    refit_days = dbt.config.get("cluster_refit_days")
    forced = dbt.config.get("refit_clusters")
    count = dbt.config.get("cluster_count")
    as_of = features["as_of"].iloc[0].to_pydatetime()
    force = str(forced).lower() == "true"
    if not clusters.needs_refit(previous, as_of, int(refit_days), force):
        return clusters.to_frame(previous)
    return clusters.to_frame(clusters.fit(features, clusters.cluster_count(count), as_of))
