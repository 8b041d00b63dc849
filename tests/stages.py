"""Run the pipeline's stage scripts in-process on a generated demo project.

Shared by the test fixtures and the benchmarks that need a small trained project
(same code path as the CLIs, without Snakemake or interpreter start-up per stage).
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def copy_checkout(dest: Path) -> Path:
    """The project's tracked and unignored files, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


#: The stage scripts that read no settings (every other one requires --params).
NO_PARAMS = {"merge_features.py"}


def run_stage(script: str, *args: str) -> None:
    """Run ``scripts/<script>``'s ``main`` in-process; fail loudly on a non-zero exit.
    Without ``--params`` in ``args`` it passes ``--params params.yaml`` (the project's own,
    in the working directory), as the stages require one."""
    from ser.cli import run_cli

    module = runpy.run_path(str(ROOT / "scripts" / script))
    argv = list(args)
    if script not in NO_PARAMS and "--params" not in argv and "--help" not in argv:
        argv += ["--params", "params.yaml"]
    code = run_cli(module["main"], argv)
    if code != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed (exit {code})")


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run the stages relative to ``path`` (as Snakemake does from the project root)."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def build_demo_project(project: Path, params: dict[str, Any], *, protocol: str = "speaker",
                       feature_sets: Sequence[str] = ("mfcc",),
                       extracted: str = "mfcc", models: Sequence[str] = (),
                       evaluate: bool = True) -> Path:
    """Generate ``params["corpora"]``'s demo corpora in ``project`` and run the stages.

    Writes ``params`` to ``project/params.yaml``, then: demo corpus, manifest and
    ``extracted`` features per corpus; the ``protocol`` split; per feature set (``extracted``
    or one of its variants such as ``mfcc_spk``) and model, ``train`` and (``evaluate``)
    ``evaluate`` into the usual ``models/`` and ``metrics/`` layout. Returns ``project``.
    """
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with working_directory(project):
        manifests = []
        for corpus in params["corpora"]:
            manifest = f"data/manifests/{corpus}.parquet"
            run_stage("generate_demo.py", "--corpus", corpus, "--out", f"data/demo/{corpus}")
            run_stage("prepare_manifest.py", "--corpus", corpus, "--root",
                      f"data/demo/{corpus}", "--out", manifest)
            run_stage("extract_features.py", "--feature-set", extracted, "--corpus", corpus,
                      "--manifest", manifest, "--out", f"data/features/{extracted}/{corpus}",
                      "--no-progress")
            manifests.append(manifest)
        split = f"data/splits/{protocol}.parquet"
        run_stage("make_splits.py", "--protocol", protocol, "--out", split, *manifests)
        for feature_set in feature_sets:
            common = ["--features", f"data/features/{extracted}", "--feature-set", feature_set,
                      "--split", split]
            for model in models:
                run = f"{protocol}/{feature_set}/{model}"
                run_stage("train.py", "--model", model, "--protocol", protocol, *common,
                          "--out", f"models/{run}")
                if evaluate:
                    run_stage("evaluate.py", "--protocol", protocol, *common,
                              "--model-dir", f"models/{run}", "--out", f"metrics/{run}")
    return project


#: Every classical model kind is trained on egemaps (predict.py's usual default model's
#: set); the other summary sets get svm, each sequence model its own set.
EGEMAPS_MODELS = ("svm", "logreg", "knn", "random_forest", "decision_tree", "hist_gb",
                  "ensemble")


def plain_feature_sets() -> tuple[str, ...]:
    """The registry's feature sets but the speaker-normalised ``_spk`` variants."""
    from ser.features.sets import FEATURE_SETS

    return tuple(name for name, spec in FEATURE_SETS.items() if not spec.speaker_norm)


def models_for(feature_set: str) -> list[str]:
    """The model kinds :func:`build_every_set_project` trains on ``feature_set``."""
    from ser.features.sets import FEATURE_SETS
    from ser.models import MODEL_SPECS

    spec = FEATURE_SETS[feature_set]
    models = []
    if spec.has_summary:
        models += list(EGEMAPS_MODELS) if feature_set == "egemaps" else ["svm"]
    models += [name for name, m in MODEL_SPECS.items()
               if m.kind != "classical" and spec.sequences is not None
               and m.sequences == spec.sequences]
    return models


def every_set_params() -> dict[str, Any]:
    """params.yaml cut down to the tiny RAVDESS-layout demo corpus, the speaker protocol,
    every plain feature set and one-candidate grids (2 epochs for sequence models)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    sets = plain_feature_sets()
    params["corpora"] = {"ravdess": "data/demo/ravdess"}
    params["demo"].update(corpora=["ravdess"], preset="tiny")
    params["train"].update(protocols=["speaker"], feature_sets=list(sets),
                           models=sorted({m for s in sets for m in models_for(s)}))
    small = {"svm": {"C": [1.0]}, "logreg": {"C": [1.0]}, "knn": {"n_neighbors": [3]},
             "random_forest": {"n_estimators": [20]}, "decision_tree": {"max_depth": [6]},
             "hist_gb": {"learning_rate": [0.1]}, "ensemble": {"svm__clf__C": [1.0]}}
    for model, grid in small.items():
        params[model]["grid"] = grid
    for model in ("lstm_seed", "crnn"):
        params[model].update(epochs=2, patience=1)
    params["evaluate"]["bootstrap"] = 20
    for section in sets:
        if isinstance(params.get(section), dict) and "workers" in params[section]:
            params[section]["workers"] = 1
    return params


def build_every_set_project(project: Path) -> Path:
    """A demo project with a model of every kind and on every plain feature set:
    ``models/speaker/<set>/<model>`` for each ``<set>`` and :func:`models_for` it."""
    (project / "params.yaml").write_text(yaml.safe_dump(every_set_params(), sort_keys=False))
    with working_directory(project):
        run_stage("generate_demo.py", "--corpus", "ravdess", "--out", "data/demo/ravdess")
        manifest = "data/manifests/ravdess.parquet"
        run_stage("prepare_manifest.py", "--corpus", "ravdess", "--root", "data/demo/ravdess",
                  "--out", manifest)
        split = "data/splits/speaker.parquet"
        run_stage("make_splits.py", "--protocol", "speaker", "--out", split, manifest)
        for feature_set in plain_feature_sets():
            run_stage("extract_features.py", "--feature-set", feature_set, "--corpus",
                      "ravdess", "--manifest", manifest,
                      "--out", f"data/features/{feature_set}/ravdess", "--no-progress")
            for model in models_for(feature_set):
                run_stage("train.py", "--model", model, "--protocol", "speaker",
                          "--features", f"data/features/{feature_set}",
                          "--feature-set", feature_set, "--split", split,
                          "--out", f"models/speaker/{feature_set}/{model}")
    return project
