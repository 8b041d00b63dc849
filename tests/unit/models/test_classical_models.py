"""The added classical models fit and give probabilities on a toy set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser.models.classical import make_pipeline, tune


def _toy(seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [4, 0, 0, 0], [0, 4, 0, 0]], dtype=float)
    y = np.repeat(["a", "b", "c"], 30)
    X = centres[np.repeat([0, 1, 2], 30)] + rng.normal(size=(90, 4))
    groups = np.tile(np.repeat(["s1", "s2", "s3"], 10), 3)
    return X, y, groups


@pytest.mark.parametrize("name", ["hist_gb", "ensemble", "logreg"])
def test_fit_predict_proba(name):
    X, y, _ = _toy()
    pipe = make_pipeline(name, seed=0).fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    Xt, yt, _ = _toy(seed=1)
    assert np.mean(pipe.predict(Xt) == yt) > 0.8


def test_ensemble_is_deterministic_by_seed():
    X, y, _ = _toy()
    a = make_pipeline("ensemble", seed=3).fit(X, y).predict_proba(X)
    b = make_pipeline("ensemble", seed=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_grids_live_in_params_only():
    """No default grids in code: the shipped params.yaml is where grids come from."""
    import ser.models.classical as classical
    from ser.params.load import load_params

    assert not hasattr(classical, "DEFAULT_GRIDS")
    params = load_params(Path(__file__).parents[3] / "params.yaml")
    assert max(params["svm"]["grid"]["C"]) >= 100  # wide enough for real corpora


def test_tune_grouped_by_speaker():
    X, y, g = _toy()
    search = tune("hist_gb", X, y, groups=g, protocol="speaker",
                  grid={"learning_rate": [0.1], "max_leaf_nodes": [7, 15]},
                  scoring="balanced_accuracy", cv_folds=3, seed=0)
    assert search.n_splits_ == 3
    assert set(search.best_params_) == {"clf__learning_rate", "clf__max_leaf_nodes"}
