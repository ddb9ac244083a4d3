"""marts.user_clusters: every user of user_metrics in the nearest cluster of the stored
model (marts.user_cluster_model), with the cluster's label and the model's version."""

import pandas as pd

from orchestration.predict import clusters


def model(dbt, session):
    features = dbt.ref("int_cluster_features").df()
    stored = clusters.from_frame(dbt.ref("user_cluster_model").df())
    if stored is None:
        features = features.iloc[0:0]
    assigned = clusters.assign(stored, features) if stored is not None else []
    frame = pd.DataFrame(
        {
            "user_id": features["user_id"].astype("string").reset_index(drop=True),
            "cluster": pd.array(assigned, dtype="Int64"),
        }
    )
    labels = dict(enumerate(stored.labels, start=1)) if stored is not None else {}
    frame["cluster_label"] = frame["cluster"].map(labels).astype("string")
    frame["model_version"] = pd.Series(
        [stored.version if stored is not None else ""] * len(frame), dtype="string"
    )
    frame["fitted_at"] = pd.Series(
        [stored.fitted_at if stored is not None else None] * len(frame), dtype="datetime64[us]"
    )
    return frame
