"""Shared fixtures: the real recordings in ../shared/data, read in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


def run_stage(script: str, *args: str) -> None:
    """Run a stage script's ``main`` in-process (same code path as the CLI, no start-up cost)."""
    import runpy

    from ser.cli import run_cli

    module = runpy.run_path(str(ROOT / "scripts" / script))
    assert run_cli(module["main"], list(args)) == 0, f"{script} {' '.join(args)} failed"


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
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = Path.cwd()
    os.chdir(project)
    try:
        manifests = []
        for corpus in params["corpora"]:
            manifest = f"data/manifests/{corpus}.parquet"
            run_stage("generate_demo.py", "--corpus", corpus, "--out", f"data/demo/{corpus}")
            run_stage("prepare_manifest.py", "--corpus", corpus, "--root", f"data/demo/{corpus}",
                      "--out", manifest)
            run_stage("extract_features.py", "--feature-set", "mfcc", "--corpus", corpus,
                      "--manifest", manifest, "--out", f"data/features/mfcc/{corpus}",
                      "--no-progress")
            manifests.append(manifest)
        split = "data/splits/speaker.parquet"
        run_stage("make_splits.py", "--protocol", "speaker", "--out", split, *manifests)
        for model in params["train"]["models"]:
            common = ["--features", "data/features/mfcc", "--split", split]
            run_stage("train.py", "--model", model, "--protocol", "speaker", *common,
                      "--out", f"models/speaker/mfcc/{model}")
            run_stage("evaluate.py", "--protocol", "speaker", *common,
                      "--model-dir", f"models/speaker/mfcc/{model}",
                      "--out", f"metrics/speaker/mfcc/{model}")
    finally:
        os.chdir(old)
    return project
