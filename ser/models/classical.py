"""scikit-learn pipelines for the classical models and their grid search.

Scaling sits inside each :class:`~sklearn.pipeline.Pipeline`, so GridSearchCV
fits it on the training folds only and the test data never informs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from ser.errors import ConfigError
from ser.models import MODEL_SPECS, classical_models
from ser.splits.protocols import SPEAKER_DISJOINT, cv_splitter

#: Where each model's grid parameters live inside its pipeline.
GRID_PREFIX: dict[str, str] = {}

#: Members of the ``ensemble`` model (soft voting over their probabilities).
ENSEMBLE_MEMBERS: tuple[str, ...] = ("svm", "logreg", "hist_gb")

# Grids live in params.yaml only (``<model>.grid``): there are no default grids in code.


# --------------------------------------------------------------------------- estimators
# The untuned classifiers of the classical models (ser.models.MODEL_SPECS names them).

def svm(*, seed: int) -> SVC:
    # SVC's internal Platt scaling copes with classes of 2-3 clips, where the suggested
    # CalibratedClassifierCV(cv=k) refuses; it is deprecated, so sklearn is pinned < 1.11.
    return SVC(probability=True, class_weight="balanced", random_state=seed)


def knn(*, seed: int) -> KNeighborsClassifier:
    return KNeighborsClassifier()


def random_forest(*, seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(class_weight="balanced", random_state=seed, n_jobs=1)


def decision_tree(*, seed: int) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(class_weight="balanced", random_state=seed)


def logreg(*, seed: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)


def hist_gb(*, seed: int) -> HistGradientBoostingClassifier:
    # Fixed number of boosting rounds (no internal early stopping: its random
    # validation split would mix speakers); shallow trees, mild L2.
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                          min_samples_leaf=10, l2_regularization=1.0,
                                          class_weight="balanced", early_stopping=False,
                                          random_state=seed)


def ensemble(*, seed: int) -> VotingClassifier:
    """Soft vote over :data:`ENSEMBLE_MEMBERS`, each member its own ``scale -> clf``
    pipeline with its default parameters (SVM C=10, logistic C=0.1); its grid addresses
    members as ``<member>__clf__<param>``."""
    members = [(m, make_pipeline(m, seed=seed)) for m in ENSEMBLE_MEMBERS]
    members[0][1].set_params(clf__C=10.0)
    members[1][1].set_params(clf__C=0.1)
    return VotingClassifier(members, voting="soft", n_jobs=1)


def check_neighbors(grid: dict[str, list[Any]], n_fit: int, *, model: str = "knn") -> None:
    """Refuse ``n_neighbors`` larger than the smallest cross-validation training fold.

    ``n_fit`` is the number of clips the smallest fold fits on; run before fitting (the
    knn spec's :attr:`~ser.models.ModelSpec.fold_check`).
    """
    too_big = [k for k in grid.get("n_neighbors", []) if isinstance(k, int) and k > n_fit]
    if too_big:
        raise ConfigError(f"params: bad parameter {model}.grid.n_neighbors: {too_big} "
                          f"exceed the {n_fit} clips of the smallest training fold; use "
                          f"values <= {n_fit}")


# --------------------------------------------------------------------------- pipelines

def make_pipeline(name: str, *, seed: int) -> Pipeline:
    """An untuned pipeline ``scale -> clf`` for classical model ``name``: its spec's
    estimator (:attr:`ser.models.ModelSpec.estimator`) behind a StandardScaler if the
    spec is :attr:`~ser.models.ModelSpec.scaled`, else behind ``passthrough``."""
    spec = MODEL_SPECS.get(name)
    if spec is None or spec.kind != "classical":
        raise ConfigError(f"unknown classical model {name!r}; choose one of "
                          f"{', '.join(classical_models())}")
    scaler = StandardScaler() if spec.scaled else "passthrough"
    return Pipeline([("scale", scaler), ("clf", spec.build_estimator(seed=seed))])


def search_pipeline(name: str, *, seed: int, scoring: str) -> Pipeline:
    """The pipeline a grid search cross-validates: :func:`make_pipeline`'s, except that an
    SVM scored on its predictions fits no probability model.

    ``SVC(probability=True)`` runs an internal 5-fold cross-validation per fit for Platt
    scaling, which its ``predict`` does not use: the search's scores are the same without
    it, at a fraction of the cost. The refitted best keeps ``probability=True``
    (evaluation and ``predict.py`` read probabilities). A scorer that reads probabilities
    or decision values keeps the full pipeline.
    """
    pipe = make_pipeline(name, seed=seed)
    if name == "svm" and _scores_predictions(scoring):
        pipe.set_params(clf__probability=False)
    return pipe


def _scores_predictions(scoring: str) -> bool:
    """Whether scikit-learn scorer ``scoring`` reads only ``predict`` (False if unknown)."""
    from sklearn.metrics import get_scorer

    try:
        scorer = get_scorer(scoring)
    except ValueError:
        return False  # GridSearchCV reports the bad name
    return getattr(scorer, "_response_method", None) == "predict"


def refit_best(name: str, X: np.ndarray, y: np.ndarray, *, params: dict[str, Any],
               seed: int) -> Pipeline:
    """:func:`make_pipeline` with the chosen pipeline ``params``, fitted on ``X, y``
    (what GridSearchCV's refit does, with the full pipeline)."""
    return clone(make_pipeline(name, seed=seed)).set_params(
        **clone(params, safe=False)).fit(X, y)


def param_grid(name: str, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Prefix a params.yaml grid (classifier parameter names) for the pipeline."""
    prefix = GRID_PREFIX.get(name, "clf__")
    return {f"{prefix}{key}": list(values) for key, values in grid.items()}


def unprefix(name: str, key: str) -> str:
    """A pipeline parameter name back as params.yaml spells it."""
    return key.removeprefix(GRID_PREFIX.get(name, "clf__"))


def cv_setup(name: str, X: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None,
             protocol: str, grid: dict[str, list[Any]], cv_folds: int, seed: int):
    """The CV splitter and the groups it splits by, for tuning ``name`` on ``X, y``.

    Folds are speaker-grouped for speaker-disjoint protocols (see
    :func:`ser.splits.protocols.cv_splitter`). The model's
    :attr:`~ser.models.ModelSpec.fold_check` runs first with the smallest fitting fold
    (k-NN: a ``n_neighbors`` above it would fail inside scikit-learn). Shared by
    :func:`tune` and the per-candidate jobs (:func:`ser.models.grid.score_candidate`).
    """
    cv = cv_splitter(protocol, n_splits=cv_folds, seed=seed, groups=groups)
    fit_groups = groups if protocol in SPEAKER_DISJOINT else None
    spec = MODEL_SPECS.get(name)
    check = spec.fold_check_function() if spec is not None else None
    if check is not None:
        smallest = min(len(fit) for fit, _ in cv.split(X, y, groups=fit_groups))
        check(grid, smallest, model=name)
    return cv, fit_groups


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

    Folds are speaker-grouped for speaker-disjoint protocols (see :func:`cv_setup`).
    """
    cv, fit_groups = cv_setup(name, X, y, groups=groups, protocol=protocol, grid=grid,
                              cv_folds=cv_folds, seed=seed)
    estimator = search_pipeline(name, seed=seed, scoring=scoring)
    search = GridSearchCV(
        estimator,
        param_grid(name, grid),
        scoring=scoring,
        cv=cv,
        n_jobs=n_jobs,
        refit=True,
        error_score="raise",
        verbose=2,  # one line per fit: the console progress of long grids (ser.progress)
    )
    try:
        search.fit(X, y, groups=fit_groups)
    except ValueError as exc:
        if "Invalid parameter" in str(exc) or "scoring" in str(exc):
            raise ConfigError(f"{name}: bad grid or scoring in params.yaml: {exc}") from None
        raise
    if estimator.get_params() != make_pipeline(name, seed=seed).get_params():
        # The search ran a lighter pipeline (search_pipeline): refit the full one.
        search.best_estimator_ = refit_best(name, X, y, params=search.best_params_, seed=seed)
    return search


@dataclass(frozen=True)
class TuneResult:
    """A tuned model: the refitted best candidate and the scores of every candidate.

    Made from an in-process :class:`~sklearn.model_selection.GridSearchCV`
    (:meth:`from_search`) or from per-candidate jobs
    (:func:`ser.models.grid.select_and_refit`); the train stage saves either alike.
    """

    best_estimator: Pipeline
    best_params: dict[str, Any]   # pipeline parameter names (``clf__C``)
    best_score: float
    cv_name: str                  # the splitter's class name
    n_splits: int
    cv_results: dict[str, Any]    # as ``GridSearchCV.cv_results_``

    @classmethod
    def from_search(cls, search: GridSearchCV) -> TuneResult:
        return cls(best_estimator=search.best_estimator_, best_params=search.best_params_,
                   best_score=float(search.best_score_), cv_name=type(search.cv).__name__,
                   n_splits=int(search.n_splits_), cv_results=search.cv_results_)


def cv_results_frame(name: str, result: TuneResult) -> pd.DataFrame:
    """Grid-search results as a tidy table (params, mean/std test score, rank)."""
    res = pd.DataFrame(result.cv_results)
    keep = [c for c in res.columns if c.startswith("param_")] + [
        "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time"]
    out = res[keep].rename(columns=lambda c: unprefix(name, c.removeprefix("param_")))
    return out.sort_values("rank_test_score", kind="stable").reset_index(drop=True)
