"""Grid-search candidates as separate jobs (``train.grid_jobs`` in ``params.yaml``).

GridSearchCV evaluates every candidate of a grid on every CV split in one process. On a
cluster, a large grid is better spread: one job per candidate cross-validates it on the
same splits (:func:`score_candidate`) and writes a small score file
(:func:`write_scores`); the train job then reads every candidate's scores
(:func:`read_scores`), picks the best exactly as GridSearchCV does (highest mean test
score; ties go to the lowest candidate index) and refits it on the whole training side
(:func:`select_and_refit`). Same splitter, groups, scoring and seeds as
:func:`ser.models.classical.tune`, so the model is the one the in-process search saves.

Candidate ``k`` is ``list(ParameterGrid(grid))[k]`` (:func:`grid_candidates`), a
deterministic order (keys sorted, the last key varying fastest).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, cross_validate

from ser.errors import ConfigError, SerError

#: Version of the score-file layout (a file of another version is refused, not misread).
SCORES_FORMAT = 1


def grid_candidates(model: str, grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every candidate of ``grid`` (params.yaml names) as pipeline parameters, in
    GridSearchCV's order: candidate ``k`` is the ``k``-th item of this list.

    Parameters
    ----------
    model : str
        Classical model name (prefixes the parameter names with its pipeline step).
    grid : Mapping
        The model's ``grid:`` (parameter name -> list of values).
    """
    from ser.models.classical import param_grid

    return list(ParameterGrid(param_grid(model, dict(grid))))


def n_candidates(grid: Mapping[str, Sequence[Any]]) -> int:
    """The number of candidates of ``grid`` (the product of its list lengths)."""
    return len(ParameterGrid(dict(grid)))


def split_grids(params: Mapping[str, Any]) -> dict[str, int]:
    """Models of ``train.models`` whose grid runs one job per candidate, with their counts.

    ``train.grid_jobs`` is the smallest grid that is split (``0``, the default: none);
    sequence models and models without a grid never are.

    Parameters
    ----------
    params : Mapping
        The whole validated params mapping.
    """
    from ser.models import MODEL_SPECS

    threshold = int(params["train"].get("grid_jobs") or 0)
    out: dict[str, int] = {}
    if threshold <= 0:
        return out
    for model in params["train"]["models"]:
        spec = MODEL_SPECS[model]
        grid = (params.get(spec.section) or {}).get("grid")
        if spec.kind == "classical" and grid and n_candidates(grid) >= threshold:
            out[model] = n_candidates(grid)
    return out


def check_candidate(model: str, grid: Mapping[str, Sequence[Any]], index: int) -> dict[str, Any]:
    """The pipeline parameters of candidate ``index``, or a ConfigError naming the range.

    Parameters
    ----------
    model : str
        Classical model name (its estimator's step prefix in the parameter names).
    grid : Mapping
        The model's ``grid:`` from params.yaml.
    index : int
        Candidate number, 0-based, in :func:`grid_candidates` order.
    """
    candidates = grid_candidates(model, grid)
    if not 0 <= index < len(candidates):
        raise ConfigError(f"--candidate {index}: the {model} grid in params.yaml has "
                          f"{len(candidates)} candidate(s), numbered 0-{len(candidates) - 1}")
    return candidates[index]


def data_fingerprint(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> str:
    """sha256 of a fit's training arrays: a score file is only used on the data it saw."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update("\0".join(map(str, y)).encode())
    digest.update(b"\1" + "\0".join(map(str, [] if groups is None else groups)).encode())
    return digest.hexdigest()


def score_candidate(model: str, X: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None,
                    protocol: str, grid: Mapping[str, Sequence[Any]], index: int,
                    scoring: str, cv_folds: int, seed: int, verbose: int = 2) -> dict[str, Any]:
    """Cross-validate candidate ``index`` of ``grid`` as GridSearchCV would inside
    :func:`ser.models.classical.tune` (same splitter, groups, scoring, seed).

    Returns the per-split test scores, fit and score times, their mean and the
    fingerprint of the training data (:func:`data_fingerprint`).

    Parameters
    ----------
    model : str
        Classical model name.
    X, y : numpy.ndarray
        The training side's features and labels.
    groups : numpy.ndarray or None
        Speaker keys (speaker-disjoint protocols), else ``None``.
    protocol : str
        The split protocol (chooses the CV splitter).
    grid : Mapping
        The model's ``grid:``.
    index : int
        The candidate (:func:`grid_candidates` order).
    scoring, cv_folds, seed
        ``train.scoring``, ``train.cv_folds``, ``train.seed``.
    verbose : int
        Verbosity of the cross-validation.
    """
    from ser.models.classical import cv_setup, search_pipeline

    params = check_candidate(model, grid, index)
    cv, fit_groups = cv_setup(model, X, y, groups=groups, protocol=protocol, grid=grid,
                              cv_folds=cv_folds, seed=seed)
    estimator = clone(search_pipeline(model, seed=seed, scoring=scoring)).set_params(
        **clone(params, safe=False))
    try:
        out = cross_validate(estimator, X, y, groups=fit_groups, scoring=scoring, cv=cv,
                             error_score="raise", verbose=verbose)
    except ValueError as exc:
        if "Invalid parameter" in str(exc) or "scoring" in str(exc):
            raise ConfigError(f"{model}: bad grid or scoring in params.yaml: {exc}") from None
        raise
    scores = np.asarray(out["test_score"], dtype=np.float64)
    return {
        "cv": type(cv).__name__,
        "n_train": int(len(y)),
        "data": data_fingerprint(X, y, groups),
        "test_scores": scores.tolist(),
        "mean_test_score": float(np.average(scores)),
        "fit_times": [float(t) for t in out["fit_time"]],
        "score_times": [float(t) for t in out["score_time"]],
    }


def _plain(value: Any) -> Any:
    """A grid value as JSON keeps it (numpy scalars as Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def scores_document(*, model: str, protocol: str, feature_set: str, scoring: str,
                    grid: Mapping[str, Sequence[Any]], index: int,
                    fits: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The score file of one candidate: what it is, and its CV scores per fit
    (``final``: the training side; ``fold<k>`` too under speaker_cv).

    Parameters
    ----------
    model, protocol, feature_set, scoring : str
        The run the scores belong to (checked by :func:`read_scores`).
    grid : Mapping
        The model's ``grid:``.
    index : int
        The candidate.
    fits : Mapping
        Fit name -> :func:`score_candidate` result.
    """
    from ser.models.classical import unprefix

    params = check_candidate(model, grid, index)
    return {
        "format": SCORES_FORMAT,
        "model": model,
        "protocol": protocol,
        "feature_set": feature_set,
        "scoring": scoring,
        "candidate": index,
        "n_candidates": n_candidates(grid),
        "params": {unprefix(model, k): _plain(v) for k, v in params.items()},
        "fits": dict(fits),
    }


def scores_file_is_ours(path: Path) -> bool:
    """Whether ``path`` is a score file :func:`write_scores` wrote (replaced on a rerun).

    Parameters
    ----------
    path : Path
        An existing file at a score file's output path.
    """
    from ser.outputs import head_contains

    return head_contains(f'{{\n  "format": {SCORES_FORMAT},\n  "model": ', size=64)(path)


def write_scores(path: str | Path, doc: Mapping[str, Any]) -> None:
    """Write a score file atomically (a cut-short job never leaves one behind).

    Parameters
    ----------
    path : str or Path
        The score file (the tune_candidate job's output).
    doc : Mapping
        The score document (:func:`scores_document`), written as JSON.
    """
    from ser.outputs import atomic_path

    with atomic_path(path, owned=scores_file_is_ours) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2) + "\n")


def read_scores(paths: Sequence[str | Path], *, model: str, protocol: str, scoring: str,
                grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every candidate's score file, in candidate order, checked against the settings.

    Parameters
    ----------
    paths : sequence of str or Path
        One score file per grid candidate (from the tune_candidate jobs), any order.
    model, protocol, scoring : str
        What the files must have been written for (this train job's settings).
    grid : Mapping
        The model's current ``grid:``; every candidate must have exactly one file.

    Returns
    -------
    list of dict
        The score documents, candidate 0 first.

    Raises
    ------
    SerError
        A file is unreadable, was written for another model, protocol, scoring or
        grid, or a candidate is missing or given twice.
    """
    from ser.models.classical import unprefix

    expected = [{unprefix(model, k): _plain(v) for k, v in c.items()}
                for c in grid_candidates(model, grid)]
    docs: dict[int, dict[str, Any]] = {}
    for path in map(Path, paths):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SerError(f"{path}: cannot read the candidate score file ({exc}); rerun "
                           "its tune_candidate job") from None
        if not isinstance(doc, dict) or doc.get("format") != SCORES_FORMAT:
            raise SerError(f"{path}: not a candidate score file of format {SCORES_FORMAT}; "
                           "rerun its tune_candidate job")
        got = (doc.get("model"), doc.get("protocol"), doc.get("scoring"))
        if got != (model, protocol, scoring):
            raise SerError(f"{path}: scores are for model/protocol/scoring {got}, not "
                           f"{(model, protocol, scoring)}; pass this run's score files")
        index = doc.get("candidate")
        if not isinstance(index, int) or not 0 <= index < len(expected) or \
                json.loads(json.dumps(expected[index])) != doc.get("params"):
            raise SerError(f"{path}: candidate {index} with params {doc.get('params')} is "
                           f"not in the current {model} grid ({len(expected)} candidates); "
                           "rerun the tune_candidate jobs")
        if index in docs:
            raise SerError(f"{path}: candidate {index} is given twice")
        docs[index] = doc
    missing = sorted(set(range(len(expected))) - set(docs))
    if missing:
        raise SerError(f"{model}/{protocol}: no score file for candidate(s) {missing} of "
                       f"{len(expected)}; run their tune_candidate jobs first")
    return [docs[i] for i in range(len(expected))]


def fit_scores(docs: Sequence[Mapping[str, Any]], fit: str) -> list[dict[str, Any]]:
    """The scores of one fit (``final`` or ``fold<k>``) of every candidate."""
    try:
        return [doc["fits"][fit] for doc in docs]
    except KeyError:
        raise SerError(f"candidate score files have no scores for {fit!r}; they were made "
                       "for another split; rerun the tune_candidate jobs") from None


def _param_column(values: list[Any]) -> np.ma.MaskedArray:
    # As GridSearchCV types its ``param_*`` columns (a numeric dtype when every value is).
    try:
        dtype = np.result_type(*values)
    except (TypeError, ValueError):
        dtype = np.dtype(object)
    else:
        if any(np.min_scalar_type(v) == np.dtype(object) for v in values):
            dtype = np.dtype(object)
    if dtype != np.dtype(object):
        return np.ma.MaskedArray(values, mask=False, dtype=dtype)
    column = np.ma.MaskedArray(np.empty(len(values), dtype=object), mask=True)
    for i, value in enumerate(values):
        column[i] = value
    return column


def cv_results(candidates: Sequence[Mapping[str, Any]],
               scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``GridSearchCV.cv_results_``-like mapping from per-candidate split scores:
    ``params``, ``param_*``, ``split<i>_test_score``, mean/std/rank of the test score
    (rank ``min`` over the negated means, as scikit-learn ranks) and mean/std times."""
    from scipy.stats import rankdata

    test = np.array([s["test_scores"] for s in scores], dtype=np.float64)
    results: dict[str, Any] = {}
    for name, key in (("fit_time", "fit_times"), ("score_time", "score_times")):
        times = np.array([s[key] for s in scores], dtype=np.float64)
        results[f"mean_{name}"] = np.average(times, axis=1)
        results[f"std_{name}"] = np.sqrt(np.average(
            (times - results[f"mean_{name}"][:, None]) ** 2, axis=1))
    results["params"] = [dict(c) for c in candidates]
    for key in sorted({k for c in candidates for k in c}):
        results[f"param_{key}"] = _param_column([c[key] for c in candidates])
    for i in range(test.shape[1]):
        results[f"split{i}_test_score"] = test[:, i]
    means = np.average(test, axis=1)
    results["mean_test_score"] = means
    results["std_test_score"] = np.sqrt(np.average((test - means[:, None]) ** 2, axis=1))
    if np.isnan(means).all():
        results["rank_test_score"] = np.ones(len(means), dtype=np.int32)
    else:
        filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
        results["rank_test_score"] = rankdata(-filled, method="min").astype(np.int32)
    return results


def select_and_refit(model: str, X: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None,
                     grid: Mapping[str, Sequence[Any]], scores: Sequence[Mapping[str, Any]],
                     seed: int):
    """Pick the best candidate from its jobs' ``scores`` as GridSearchCV does and refit it
    on ``X, y``; a :class:`ser.models.classical.TuneResult`.

    Parameters
    ----------
    model : str
        Classical model name.
    X, y : numpy.ndarray
        The training side's features and labels.
    groups : numpy.ndarray or None
        Speaker keys, for the data fingerprint.
    grid : Mapping
        The model's ``grid:``.
    scores : sequence of Mapping
        Every candidate's scores for this fit (:func:`fit_scores`).
    seed : int
        ``train.seed``.

    Raises
    ------
    SerError
        The scores were computed on other training data (a stale score file).
    """
    from ser.models.classical import TuneResult, refit_best

    fingerprint = data_fingerprint(X, y, groups)
    stale = [i for i, s in enumerate(scores) if s.get("data") != fingerprint]
    if stale:
        raise SerError(f"{model}: the score files of candidate(s) {stale} were computed on "
                       "other training data; rerun their tune_candidate jobs")
    if len({len(s["test_scores"]) for s in scores}) != 1 or \
            len({s.get("cv") for s in scores}) != 1:
        raise SerError(f"{model}: candidate score files disagree on the CV splits; rerun "
                       "the tune_candidate jobs")
    candidates = grid_candidates(model, grid)
    results = cv_results(candidates, scores)
    best = int(results["rank_test_score"].argmin())
    params = candidates[best]
    estimator = refit_best(model, X, y, params=params, seed=seed)
    return TuneResult(best_estimator=estimator, best_params=params,
                      best_score=float(results["mean_test_score"][best]),
                      cv_name=str(scores[0]["cv"]), n_splits=len(scores[0]["test_scores"]),
                      cv_results=results)
