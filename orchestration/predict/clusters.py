"""Customer clusters: k-means on standardized recency, frequency, monetary value and
engagement, refitted on a schedule and applied at every run from the stored model.

The stored model is a table (marts.user_cluster_model, one row per cluster: its centre,
the scaler and the label), so it survives full refreshes and any run can apply it without
refitting. Labels are read off the centres in the features' own units, so a marketer can
tell what a cluster is ("high value", "casual browser")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

MODEL_FAMILY = "kmeans-v1"
# Days since the last event, lifetime orders, lifetime revenue, sessions in the last 28 days.
FEATURES = ("recency_days", "frequency", "monetary", "engagement")
AUTO = "auto"
AUTO_CANDIDATES = range(2, 7)
# The silhouette of a k is estimated on a sample: exact scoring is quadratic in users.
SILHOUETTE_SAMPLE = 3000
RANDOM_STATE = 0
DECIMALS = 10


@dataclass(frozen=True)
class ClusterModel:
    version: str
    fitted_at: datetime
    k: int
    silhouette: float | None
    mean: np.ndarray
    scale: np.ndarray
    centres: np.ndarray  # standardized, one row per cluster
    labels: tuple[str, ...]


def _transformed(frame: pd.DataFrame) -> np.ndarray:
    values = frame.loc[:, list(FEATURES)].astype(float).fillna(0).clip(lower=0)
    return np.log1p(values.to_numpy())


def _label_clusters(centres_units: np.ndarray) -> tuple[str, ...]:
    """Readable names from the centres (in the features' units), most distinctive first:
    the most valuable buyers, then who has gone quiet, then buyers, then browsers."""
    recency, frequency, monetary, engagement = (centres_units[:, i] for i in range(4))
    labels = [""] * len(centres_units)
    spending = np.argsort(-monetary, kind="stable")
    if monetary[spending[0]] > 0:
        labels[spending[0]] = "high value"
    median_recency = float(np.median(recency))
    for index in np.argsort(-recency, kind="stable"):
        if labels[index]:
            continue
        if recency[index] > max(14.0, median_recency):
            labels[index] = "lapsed buyer" if frequency[index] >= 1 else "lapsed browser"
        elif frequency[index] >= 1:
            labels[index] = "regular buyer"
        elif engagement[index] >= float(np.median(engagement)):
            labels[index] = "engaged browser"
        else:
            labels[index] = "casual browser"
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} {seen[label]}")
    return tuple(unique)


def cluster_count(value: object) -> int | str:
    """segments__cluster_count checked: `auto` or a whole number of at least 2."""
    text = str(value).strip().lower()
    if text == AUTO:
        return AUTO
    if not text.isdigit() or int(text) < 2:
        raise ValueError(
            f"segments__cluster_count must be auto or a whole number >= 2, not {value!r}"
        )
    return int(text)


def fit(frame: pd.DataFrame, k: int | str, fitted_at: datetime) -> ClusterModel | None:
    """k-means on the users of `frame` (its FEATURES columns); k a number, or `auto` for
    the candidate with the best silhouette. None when there are fewer users than clusters."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    frame = frame.sort_values("user_id", kind="stable")
    values = _transformed(frame)
    mean = values.mean(axis=0) if len(values) else np.zeros(len(FEATURES))
    scale = values.std(axis=0) if len(values) else np.ones(len(FEATURES))
    scale = np.where(scale > 0, scale, 1.0)
    standardized = (values - mean) / scale
    candidates = list(AUTO_CANDIDATES) if k == AUTO else [int(k)]
    distinct = len(np.unique(standardized, axis=0)) if len(standardized) else 0
    candidates = [c for c in candidates if c < distinct or (c == distinct and k != AUTO)]
    if not candidates:
        return None
    best = None
    for candidate in candidates:
        model = KMeans(n_clusters=candidate, n_init=10, random_state=RANDOM_STATE)
        assigned = model.fit_predict(standardized)
        score = None
        # The silhouette is defined for 2 to n - 1 clusters.
        if 1 < len(set(assigned)) < len(standardized):
            score = float(
                silhouette_score(
                    standardized,
                    assigned,
                    sample_size=min(SILHOUETTE_SAMPLE, len(standardized)),
                    random_state=RANDOM_STATE,
                )
            )
        if best is None or (score is not None and (best[1] is None or score > best[1])):
            best = (model, score)
    model, score = best
    # Clusters in a stable order (by monetary, then recency centre) whatever k-means chose.
    centres = np.round(model.cluster_centers_, DECIMALS)
    order = np.lexsort((centres[:, 0], -centres[:, 2]))
    centres = centres[order]
    units = np.expm1(centres * scale + mean)
    labels = _label_clusters(units)
    state = {
        "centres": centres.tolist(),
        "mean": np.round(mean, DECIMALS).tolist(),
        "scale": np.round(scale, DECIMALS).tolist(),
        "fitted_at": fitted_at.isoformat(),
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]
    return ClusterModel(
        version=f"{MODEL_FAMILY}-{digest}",
        fitted_at=fitted_at,
        k=len(centres),
        silhouette=None if score is None else round(score, 6),
        mean=np.round(mean, DECIMALS),
        scale=np.round(scale, DECIMALS),
        centres=centres,
        labels=labels,
    )


def assign(model: ClusterModel, frame: pd.DataFrame) -> np.ndarray:
    """The nearest centre of each user of `frame`, numbered from 1."""
    if frame.empty:
        return np.array([], dtype=int)
    standardized = (_transformed(frame) - model.mean) / model.scale
    distances = ((standardized[:, None, :] - model.centres[None, :, :]) ** 2).sum(axis=2)
    return distances.argmin(axis=1) + 1


def needs_refit(model: ClusterModel | None, as_of: datetime, refit_days: int, force: bool) -> bool:
    """A refit is due without a model, when asked, after refit_days, or for an as_of before
    the model's fit (a backfill must not use what was learned later)."""
    if model is None or force:
        return True
    return as_of >= model.fitted_at + timedelta(days=refit_days) or as_of < model.fitted_at


def to_frame(model: ClusterModel | None) -> pd.DataFrame:
    columns = [
        "cluster",
        "cluster_label",
        "model_version",
        "fitted_at",
        "k",
        "silhouette",
        *[f"centre_{name}" for name in FEATURES],
        *[f"mean_{name}" for name in FEATURES],
        *[f"scale_{name}" for name in FEATURES],
        *[f"typical_{name}" for name in FEATURES],
    ]
    if model is None:
        # Typed as a fitted model's table, so the table keeps its column types while empty.
        frame = pd.DataFrame({column: pd.Series(dtype=float) for column in columns})
        for column in ("cluster", "k"):
            frame[column] = frame[column].astype("int64")
        for column in ("cluster_label", "model_version"):
            frame[column] = frame[column].astype("string")
        frame["fitted_at"] = frame["fitted_at"].astype("datetime64[us]")
        return frame
    units = np.expm1(model.centres * model.scale + model.mean)
    rows = []
    for index, label in enumerate(model.labels):
        row = {
            "cluster": index + 1,
            "cluster_label": label,
            "model_version": model.version,
            "fitted_at": model.fitted_at,
            "k": model.k,
            "silhouette": model.silhouette,
        }
        for position, name in enumerate(FEATURES):
            row[f"centre_{name}"] = float(model.centres[index, position])
            row[f"mean_{name}"] = float(model.mean[position])
            row[f"scale_{name}"] = float(model.scale[position])
            row[f"typical_{name}"] = max(0.0, round(float(units[index, position]), 4))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    frame["fitted_at"] = frame["fitted_at"].astype("datetime64[us]")
    frame["silhouette"] = frame["silhouette"].astype(float)
    return frame


def from_frame(frame: pd.DataFrame) -> ClusterModel | None:
    if frame.empty:
        return None
    frame = frame.sort_values("cluster")
    first = frame.iloc[0]
    return ClusterModel(
        version=str(first["model_version"]),
        fitted_at=pd.Timestamp(first["fitted_at"]).to_pydatetime(),
        k=int(first["k"]),
        silhouette=None if pd.isna(first["silhouette"]) else float(first["silhouette"]),
        mean=np.array([float(first[f"mean_{name}"]) for name in FEATURES]),
        scale=np.array([float(first[f"scale_{name}"]) for name in FEATURES]),
        centres=frame[[f"centre_{name}" for name in FEATURES]].to_numpy(dtype=float),
        labels=tuple(frame["cluster_label"].astype(str)),
    )
