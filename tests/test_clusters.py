"""The customer clusters: k-means that finds the groups a population really has, labels
them from their centres, is stored and applied without refitting, and is refitted only
when it is due."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from orchestration.predict import clusters
from tests.conftest import compile_model

FITTED = datetime(2026, 3, 1)


def population(seed: int = 3) -> pd.DataFrame:
    """Three kinds of customer: big spenders, buyers gone quiet, and visitors who never buy."""
    rng = np.random.default_rng(seed)
    kinds = {
        "spender": dict(
            recency_days=(1, 3), frequency=(8, 12), monetary=(800, 1200), engagement=(20, 40)
        ),
        "lapsed": dict(
            recency_days=(40, 60), frequency=(1, 3), monetary=(50, 150), engagement=(0, 1)
        ),
        "browser": dict(recency_days=(1, 5), frequency=(0, 0), monetary=(0, 0), engagement=(3, 8)),
    }
    rows = []
    for kind, ranges in kinds.items():
        for index in range(120):
            row = {"user_id": f"{kind}-{index:03d}", "kind": kind}
            for feature, (low, high) in ranges.items():
                row[feature] = float(rng.uniform(low, high))
            rows.append(row)
    return pd.DataFrame(rows)


def test_auto_finds_the_three_groups_and_names_them_from_their_centres():
    users = population()
    model = clusters.fit(users, clusters.AUTO, FITTED)
    assert model.k == 3
    assert model.silhouette > 0.5
    assigned = clusters.assign(model, users)
    labels = pd.Series(np.array(model.labels)[assigned - 1], index=users["kind"])
    # Every kind lands whole in one cluster, a different one each.
    assert labels.groupby(level=0).nunique().eq(1).all()
    named = labels.groupby(level=0).first().to_dict()
    assert named == {
        "spender": "high value",
        "lapsed": "lapsed buyer",
        "browser": "engaged browser",
    }


def test_a_stored_model_assigns_as_the_fitted_one():
    users = population()
    model = clusters.fit(users, 3, FITTED)
    stored = clusters.from_frame(clusters.to_frame(model))
    assert stored.version == model.version and stored.fitted_at == FITTED
    assert (clusters.assign(stored, users) == clusters.assign(model, users)).all()


def test_the_same_data_gives_the_same_model_in_any_row_order():
    users = population()
    first = clusters.fit(users, clusters.AUTO, FITTED)
    second = clusters.fit(users.sample(frac=1, random_state=5), clusters.AUTO, FITTED)
    assert first.version == second.version
    assert np.array_equal(first.centres, second.centres)


def test_a_refit_is_due_when_missing_old_asked_for_or_for_an_earlier_as_of():
    model = clusters.fit(population(), 3, FITTED)
    assert clusters.needs_refit(None, FITTED, 7, force=False)
    assert not clusters.needs_refit(model, FITTED + timedelta(days=6, hours=23), 7, force=False)
    assert clusters.needs_refit(model, FITTED + timedelta(days=7), 7, force=False)
    assert clusters.needs_refit(model, FITTED + timedelta(days=1), 7, force=True)
    assert clusters.needs_refit(model, FITTED - timedelta(days=1), 7, force=False)


def test_too_few_distinct_users_fit_no_model():
    users = population().head(1)
    assert clusters.fit(users, clusters.AUTO, FITTED) is None
    assert clusters.to_frame(None).empty
    assert clusters.from_frame(clusters.to_frame(None)) is None


def test_the_refit_var_reaches_the_stored_models_code(tmp_path):
    """dbt passes a Python model only the configs it finds it reading; the refit switch of
    `--refit-clusters` and the weekly schedule must be among them."""
    compiled_ok, compiled = compile_model(
        tmp_path, "user_cluster_model", {"segments__refit_clusters": True}
    )
    assert compiled_ok, compiled
    assert "'refit_clusters': True" in compiled
    assert "'cluster_refit_days': 7" in compiled and "'cluster_count': 'auto'" in compiled
