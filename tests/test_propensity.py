"""The propensity models on examples shaped like int_score_examples: they learn a real
signal, validate on the latest training instant, stay deterministic, and degrade to a base
rate or to no score when the history cannot train them. (The features' point-in-time rule
is the dbt unit test score_examples_features_stop_at_their_instant_and_labels_start_after_it.)"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from orchestration.predict import propensity
from orchestration.predict.propensity import (
    FEATURES,
    calibration_frame,
    evaluation_frame,
    fit_scores,
)

AS_OF = datetime(2026, 3, 1)


def examples(users: int = 400, instants: int = 4, seed: int = 7) -> pd.DataFrame:
    """Users whose recent activity drives both outcomes, plus one scoring instant."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(instants + 1):
        training = k > 0
        instant = AS_OF - timedelta(days=14 + 7 * (k - 1)) if training else AS_OF
        activity = rng.gamma(1.5, 3.0, users)
        churn_p = 1 / (1 + np.exp(activity - 3))
        buy_p = 1 / (1 + np.exp(4 - activity / 2))
        for user in range(users):
            rows.append(
                {
                    "instant": instant,
                    "is_training": training,
                    "labels_until": instant + timedelta(days=14) if training else None,
                    "user_id": f"u{user:04d}",
                    "tenure_days": 60,
                    "days_since_last_event": float(30 / (1 + activity[user])),
                    "events_7d": int(activity[user] * 2),
                    "events_30d": int(activity[user] * 6),
                    "active_days_7d": min(7, int(activity[user])),
                    "active_days_30d": min(30, int(activity[user] * 3)),
                    "product_views_30d": int(activity[user] * 3),
                    "cart_events_30d": int(activity[user] / 2),
                    "orders_30d": int(activity[user] / 4),
                    "email_engagements_30d": 0,
                    "lifetime_orders": int(activity[user] / 3),
                    "lifetime_revenue": float(activity[user] * 10),
                    "days_since_last_purchase": None if activity[user] < 3 else 5.0,
                    "churned": int(rng.random() < churn_p[user]) if training else None,
                    "purchased": int(rng.random() < buy_p[user]) if training else None,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(autouse=True)
def no_cache():
    propensity._CACHE.clear()


def test_scores_learn_the_signal_and_report_their_validation():
    data = examples()
    fitted = fit_scores(data)
    scores = fitted.scores
    assert len(scores) == 400 and scores["scored_at"].eq(AS_OF).all()
    assert scores["churn_probability"].between(0, 1).all()
    evaluation = evaluation_frame(fitted, data).set_index("score")
    assert evaluation.loc["churn_probability", "auc"] > 0.75
    assert evaluation.loc["purchase_probability_7d", "auc"] > 0.75
    # Validated on the latest training instant, by a model that did not see it.
    assert evaluation.loc["churn_probability", "validation_instant"] == AS_OF - timedelta(days=14)
    assert evaluation.loc["churn_probability", "validation_rows"] == 400
    assert evaluation.loc["churn_probability", "training_rows"] == 1600
    training = data[data["is_training"]]
    latest = training["instant"].max()
    # Learned only from the instants whose 14-day labels had ended by the validation instant.
    known = training[training["labels_until"] <= latest]
    assert sorted(known["instant"].unique()) == [
        AS_OF - timedelta(days=35),
        AS_OF - timedelta(days=28),
    ]
    earlier = propensity._fit(known, "churned")
    held_out = training[training["instant"] == latest]
    auc = roc_auc_score(held_out["churned"], propensity._predict(earlier, held_out))
    assert evaluation.loc["churn_probability", "auc"] == pytest.approx(auc, abs=1e-6)
    calibration = calibration_frame(fitted)
    churn = calibration[calibration["score"] == "churn_probability"]
    assert churn["users"].sum() == 400
    # Calibrated: the predicted and observed rates agree on average, bin by bin.
    gap = (churn["mean_predicted"] - churn["observed_rate"]).abs()
    assert (gap * churn["users"]).sum() / churn["users"].sum() < 0.1


def test_the_same_examples_give_the_same_scores_and_version_in_any_row_order():
    data = examples()
    first = fit_scores(data).scores
    propensity._CACHE.clear()
    second = fit_scores(data.sample(frac=1, random_state=1)).scores
    pd.testing.assert_frame_equal(first, second)
    assert first["model_version"].nunique() == 1


def test_labels_are_not_features():
    assert "churned" not in FEATURES and "purchased" not in FEATURES


def test_one_outcome_gives_its_base_rate_and_no_auc():
    data = examples(users=100)
    data.loc[data["is_training"], "churned"] = 1
    fitted = fit_scores(data)
    assert fitted.scores["churn_probability"].eq(1.0).all()
    evaluation = evaluation_frame(fitted, data).set_index("score")
    assert pd.isna(evaluation.loc["churn_probability", "auc"])


def test_no_training_instant_gives_no_score_rather_than_a_guess():
    data = examples(users=20, instants=0)
    fitted = fit_scores(data)
    assert len(fitted.scores) == 20
    assert fitted.scores["churn_probability"].isna().all()
    assert fitted.scores["model_version"].iloc[0].startswith("logistic-v1-")
    evaluation = evaluation_frame(fitted, data)
    assert evaluation["training_rows"].eq(0).all()


def test_an_empty_warehouse_scores_nobody():
    data = examples(users=5).iloc[0:0]
    fitted = fit_scores(data)
    assert fitted.scores.empty
    assert len(evaluation_frame(fitted, data)) == 2
