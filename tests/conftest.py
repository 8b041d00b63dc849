"""Shared fixtures: the real recordings in ../shared/data, read in place."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from support import build_demo_project, run_stage  # noqa: F401 - re-exported

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real corpus recordings (never copied into the repo).

    Skipped on a developer machine without it; on CI (``CI`` set) its absence
    is a failure, so the real-data tests can never silently not run there.
    """
    if not (SHARED_DATA / "ravdess").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real recordings expected at {SHARED_DATA} on CI")
        pytest.skip(f"real recordings not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory) -> Path:
    """The demo corpus run through every stage up to evaluation under ``speaker``.

    Returns the project folder (the working directory the stages ran in); it
    holds params.yaml, data/, models/ and metrics/ as `make demo` would.
    """
    import yaml

    project = tmp_path_factory.mktemp("demo_project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["protocols"] = ["speaker"]
    params["lstm_seed"].update(epochs=20, patience=4)
    params["random_forest"]["grid"] = {"n_estimators": [100], "min_samples_leaf": [1, 3]}
    params["evaluate"]["bootstrap"] = 200
    return build_demo_project(project, params, models=params["train"]["models"])


@pytest.fixture(autouse=True)
def _no_force_between_tests():
    """``--force`` of one in-process command never leaks into the next test (ser.outputs)."""
    from ser.outputs import allow_replacing

    allow_replacing(False)
    yield
    allow_replacing(False)


@pytest.fixture()
def flat_model(tmp_path):
    """A saved model that answers the class prior (1/3 each): always low confidence."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ser.features import feature_params_fingerprint
    from ser.features.mfcc import FeatureParams, summary_names
    from ser.models.store import save_model
    from ser.params.load import load_params

    mfcc = load_params(ROOT / "params.yaml")["mfcc"]
    fp = FeatureParams.from_mapping(mfcc)
    names = summary_names(fp.n_coeffs, deltas=fp.deltas)
    rng = np.random.default_rng(0)
    y = np.array(["angry", "happy", "sad"] * 10)
    model = Pipeline([("scale", StandardScaler()),
                      # so regularised that it answers the class priors (1/3 each)
                      ("clf", LogisticRegression(C=1e-9))]).fit(
        rng.normal(size=(30, len(names))), y)
    card = {"format": "skops", "labels": ["angry", "happy", "sad"], "model": "dummy",
            "feature_params": feature_params_fingerprint(mfcc), "feature_columns": names}
    save_model(tmp_path / "models" / "speaker" / "dummy", model, card)
    return tmp_path / "models" / "speaker" / "dummy"
