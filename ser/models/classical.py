"""scikit-learn pipelines for the classical models and their grid search.

Scaling sits inside each :class:`~sklearn.pipeline.Pipeline`, so GridSearchCV
fits it on the training folds only and the test data never informs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from ser.errors import ConfigError
from ser.splits import SPEAKER_DISJOINT, cv_splitter

#: Where each model's grid parameters live inside its pipeline.
GRID_PREFIX: dict[str, str] = {}


def make_pipeline(name: str, *, seed: int) -> Pipeline:
    """An untuned pipeline ``scale -> clf`` for model ``name``."""
    classifiers: dict[str, BaseEstimator] = {
        # SVC's internal Platt scaling copes with classes of 2-3 clips, where the suggested
        # CalibratedClassifierCV(cv=k) refuses; it is deprecated, so sklearn is pinned < 1.11.
        "svm": SVC(probability=True, class_weight="balanced", random_state=seed),
        "knn": KNeighborsClassifier(),
        "random_forest": RandomForestClassifier(class_weight="balanced", random_state=seed,
                                                n_jobs=1),
        "decision_tree": DecisionTreeClassifier(class_weight="balanced", random_state=seed),
    }
    if name not in classifiers:
        raise ConfigError(f"unknown classical model {name!r}; choose one of "
                          f"{', '.join(classifiers)}")
    # Trees are scale-invariant; distance and kernel models are not.
    scaler = StandardScaler() if name in ("svm", "knn") else "passthrough"
    return Pipeline([("scale", scaler), ("clf", classifiers[name])])


def param_grid(name: str, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Prefix a params.yaml grid (classifier parameter names) for the pipeline."""
    prefix = GRID_PREFIX.get(name, "clf__")
    return {f"{prefix}{key}": list(values) for key, values in grid.items()}


def unprefix(name: str, key: str) -> str:
    """A pipeline parameter name back as params.yaml spells it."""
    return key.removeprefix(GRID_PREFIX.get(name, "clf__"))


def tune(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray | None,
    protocol: str,
    grid: dict[str, list[Any]],
    scoring: str,
    cv_folds: int,
    seed: int,
    n_jobs: int = 1,
) -> GridSearchCV:
    """Grid-search model ``name`` on the training data and refit the best.

    Folds are speaker-grouped for speaker-disjoint protocols (see
    :func:`ser.splits.cv_splitter`).
    """
    cv = cv_splitter(protocol, n_splits=cv_folds, seed=seed, groups=groups)
    search = GridSearchCV(
        make_pipeline(name, seed=seed),
        param_grid(name, grid),
        scoring=scoring,
        cv=cv,
        n_jobs=n_jobs,
        refit=True,
        error_score="raise",
    )
    try:
        search.fit(X, y, groups=groups if protocol in SPEAKER_DISJOINT else None)
    except ValueError as exc:
        if "Invalid parameter" in str(exc) or "scoring" in str(exc):
            raise ConfigError(f"{name}: bad grid or scoring in params.yaml: {exc}") from None
        raise
    return search


def cv_results_frame(name: str, search: GridSearchCV) -> pd.DataFrame:
    """GridSearchCV results as a tidy table (params, mean/std test score, rank)."""
    res = pd.DataFrame(search.cv_results_)
    keep = [c for c in res.columns if c.startswith("param_")] + [
        "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time"]
    out = res[keep].rename(columns=lambda c: unprefix(name, c.removeprefix("param_")))
    return out.sort_values("rank_test_score", kind="stable").reset_index(drop=True)
