"""Propensity scores: the chance that a user churns (no event in the churn horizon after
as_of) and that they buy within the purchase horizon, learned from the warehouse's own
history.

The examples come from the dbt model int_score_examples: one row per user and instant,
features as of the instant, labels from the horizon after it. A model is validated on a
time split (trained on the earlier training instants, scored on the latest one, as it
would have been used then), then refitted on every training instant and applied to the
users as of as_of. A logistic regression on standardized, log-scaled features: fast,
deterministic, and calibrated enough to read its output as a probability."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_FAMILY = "logistic-v1"
# Counts and amounts are heavy-tailed: log-scaled before standardizing. Days since the last
# purchase is missing for users who never bought; it becomes the tenure plus a day and a
# flag says it was missing.
COUNT_FEATURES = (
    "events_7d",
    "events_30d",
    "active_days_7d",
    "active_days_30d",
    "product_views_30d",
    "cart_events_30d",
    "orders_30d",
    "email_engagements_30d",
    "lifetime_orders",
    "lifetime_revenue",
)
DAY_FEATURES = ("tenure_days", "days_since_last_event", "days_since_last_purchase")
FEATURES = (*COUNT_FEATURES, *DAY_FEATURES, "never_purchased")
# Label column of int_score_examples per score, and the score's column in marts.user_scores.
SCORES = {"churn_probability": "churned", "purchase_probability_7d": "purchased"}
CALIBRATION_BINS = 10
# Fewer training examples, or only one outcome among them: no model, the base rate instead.
MIN_TRAINING_ROWS = 50
DECIMALS = 6


@dataclass(frozen=True)
class ScoreModel:
    """One fitted score: its predictions at as_of and how it did on the validation split."""

    score: str
    version: str
    predictions: np.ndarray
    evaluation: dict[str, object]
    calibration: pd.DataFrame


def feature_matrix(examples: pd.DataFrame) -> np.ndarray:
    frame = examples.loc[:, [c for c in FEATURES if c != "never_purchased"]].astype(float)
    never = frame["days_since_last_purchase"].isna()
    frame["days_since_last_purchase"] = frame["days_since_last_purchase"].fillna(
        frame["tenure_days"] + 1
    )
    frame["days_since_last_event"] = frame["days_since_last_event"].fillna(frame["tenure_days"])
    frame["never_purchased"] = never.astype(float)
    counts = list(COUNT_FEATURES) + list(DAY_FEATURES)
    frame[counts] = np.log1p(frame[counts].clip(lower=0))
    return frame.loc[:, list(FEATURES)].to_numpy()


def _classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def _fit(examples: pd.DataFrame, label: str):
    """A fitted classifier, or the base rate (a float) when the examples cannot train one;
    None without any example."""
    if examples.empty:
        return None
    labels = examples[label].astype(int).to_numpy()
    if len(examples) < MIN_TRAINING_ROWS or labels.min() == labels.max():
        return float(labels.mean())
    return _classifier().fit(feature_matrix(examples), labels)


def _predict(model, examples: pd.DataFrame) -> np.ndarray:
    if model is None:
        return np.full(len(examples), np.nan)
    if isinstance(model, float):
        return np.full(len(examples), model)
    return model.predict_proba(feature_matrix(examples))[:, 1]


def _state(model, label: str) -> object:
    """What identifies a fitted model: its parameters, rounded so that the last bits of
    floating point do not make a new version."""
    if model is None or isinstance(model, float):
        return {"label": label, "base_rate": model}
    scaler, regression = model[0], model[-1]
    return {
        "label": label,
        "features": FEATURES,
        "coef": np.round(regression.coef_, 10).tolist(),
        "intercept": np.round(regression.intercept_, 10).tolist(),
        "mean": np.round(scaler.mean_, 10).tolist(),
        "scale": np.round(scaler.scale_, 10).tolist(),
    }


def model_version(states: list[object]) -> str:
    digest = hashlib.sha256(json.dumps(states, sort_keys=True).encode()).hexdigest()[:12]
    return f"{MODEL_FAMILY}-{digest}"


def calibration_table(predicted: np.ndarray, observed: np.ndarray) -> pd.DataFrame:
    """Predicted against observed rates in equal-width bins of the predicted probability."""
    bins = np.minimum((predicted * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    rows = []
    for index in range(CALIBRATION_BINS):
        inside = bins == index
        if not inside.any():
            continue
        rows.append(
            {
                "bin_lower": index / CALIBRATION_BINS,
                "bin_upper": (index + 1) / CALIBRATION_BINS,
                "users": int(inside.sum()),
                "mean_predicted": round(float(predicted[inside].mean()), DECIMALS),
                "observed_rate": round(float(observed[inside].mean()), DECIMALS),
            }
        )
    return pd.DataFrame(
        rows, columns=["bin_lower", "bin_upper", "users", "mean_predicted", "observed_rate"]
    )


def _evaluate(training: pd.DataFrame, label: str) -> tuple[dict[str, object], pd.DataFrame]:
    """Fit on the training instants whose labels had ended by the latest one, score the
    latest."""
    instants = sorted(training["instant"].unique())
    evaluation: dict[str, object] = {
        "training_instants": len(instants),
        "training_rows": len(training),
        "validation_instant": None,
        "validation_rows": 0,
        "validation_base_rate": None,
        "auc": None,
        "brier": None,
    }
    empty = calibration_table(np.array([]), np.array([]))
    if len(instants) < 2:
        return evaluation, empty
    latest = instants[-1]
    # The validation model learns only what was known at the validation instant: examples
    # whose labels had ended by then.
    earlier = training[(training["instant"] < latest) & (training["labels_until"] <= latest)]
    later = training[training["instant"] == latest]
    predicted = _predict(_fit(earlier, label), later)
    observed = later[label].astype(int).to_numpy()
    evaluation.update(
        validation_instant=pd.Timestamp(latest).to_pydatetime(),
        validation_rows=len(later),
        validation_base_rate=round(float(observed.mean()), DECIMALS) if len(later) else None,
    )
    if len(later) and not np.isnan(predicted).any():
        evaluation["brier"] = round(float(brier_score_loss(observed, predicted)), DECIMALS)
        if observed.min() != observed.max():
            evaluation["auc"] = round(float(roc_auc_score(observed, predicted)), DECIMALS)
        return evaluation, calibration_table(predicted, observed)
    return evaluation, empty


@dataclass(frozen=True)
class FittedScores:
    """The scores at the scoring instant, and each score's validation."""

    scores: pd.DataFrame
    models: list[ScoreModel]


_CACHE: dict[str, FittedScores] = {}
# dbt builds the three score models on parallel threads; the first fits, the others wait.
_CACHE_LOCK = threading.Lock()


def fit_scores(examples: pd.DataFrame) -> FittedScores:
    """The scores of the users at the scoring instant (as_of), one column per score, with
    the version of the models and each score's validation. The same examples give the same
    result, fitted once per process (user_scores and its evaluation marts share it)."""
    examples = examples.sort_values(["instant", "user_id"], kind="stable").reset_index(drop=True)
    key = hashlib.sha256(pd.util.hash_pandas_object(examples, index=False).values).hexdigest()
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = _fit_scores(examples)
        return _CACHE[key]


def _fit_scores(examples: pd.DataFrame) -> FittedScores:
    training = examples[examples["is_training"]]
    scoring = examples[~examples["is_training"]]
    fitted = []
    for score, label in SCORES.items():
        evaluation, calibration = _evaluate(training, label)
        model = _fit(training, label)
        fitted.append((score, label, model, evaluation, calibration))
    version = model_version([_state(model, label) for _, label, model, _, _ in fitted])
    # Typed columns, so that an empty table keeps its types too.
    scores = pd.DataFrame({"user_id": scoring["user_id"].astype("string").reset_index(drop=True)})
    models = []
    for score, _label, model, evaluation, calibration in fitted:
        predictions = np.round(_predict(model, scoring), DECIMALS)
        scores[score] = predictions
        models.append(ScoreModel(score, version, predictions, evaluation, calibration))
    scores["model_version"] = pd.Series([version] * len(scores), dtype="string")
    scores["scored_at"] = pd.Series(scoring["instant"].to_numpy(), dtype="datetime64[us]")
    return FittedScores(scores, models)


def evaluation_frame(fitted: FittedScores, examples: pd.DataFrame) -> pd.DataFrame:
    """One row per score: the model version and its validation figures."""
    scoring = examples.loc[~examples["is_training"], "instant"]
    scored_at = scoring.iloc[0] if len(scoring) else pd.NaT
    frame = pd.DataFrame(
        [{"score": m.score, "model_version": m.version, **m.evaluation} for m in fitted.models]
    )
    frame.insert(2, "scored_at", pd.Series([scored_at] * len(frame), dtype="datetime64[us]"))
    frame["validation_instant"] = pd.to_datetime(frame["validation_instant"]).astype(
        "datetime64[us]"
    )
    for column in ("validation_base_rate", "auc", "brier"):
        frame[column] = frame[column].astype(float)
    return frame


def calibration_frame(fitted: FittedScores) -> pd.DataFrame:
    """One row per score and bin of predicted probability on the validation split."""
    frames = [m.calibration.assign(score=m.score) for m in fitted.models]
    frame = pd.concat(frames, ignore_index=True)
    return frame.loc[:, ["score", *[c for c in frame.columns if c != "score"]]]
