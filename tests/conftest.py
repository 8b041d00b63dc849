"""Shared fixtures: the real recordings in ../shared/data, read in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from stages import build_demo_project, run_stage  # noqa: F401 - re-exported

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
