"""Run the pipeline's stage scripts in-process on a generated demo project.

Shared by the test fixtures and the benchmarks that need a small trained project
(same code path as the CLIs, without Snakemake or interpreter start-up per stage).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import runpy
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml

from ser.models import CLASSICAL_MODELS

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


# ------------------------------------------------- toy models, cards and signals
# (shared by the reliability cases and the safe-model and path-fault tests)


def toy_xy(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["angry", "happy", "sad"] * (n // 3))
    X = rng.normal(size=(n, d)) + (np.arange(n) % 3)[:, None]
    return X, y


def fitted(kind: str):
    """A fitted pipeline of every kind the project saves (or other helpers add)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ser.models import CLASSICAL_MODELS
    from ser.models.classical import make_pipeline

    basic = ["svm", "knn", "random_forest", "decision_tree"]
    if kind in CLASSICAL_MODELS:
        model = make_pipeline(kind, seed=0)
    elif kind == "hist_gradient_boosting":
        model = Pipeline([("scale", "passthrough"),
                          ("clf", HistGradientBoostingClassifier(random_state=0, max_iter=20))])
    else:  # soft-voting ensemble of all of them
        members = [(k, make_pipeline(k, seed=0)) for k in basic]
        members.append(("hgb", HistGradientBoostingClassifier(random_state=0, max_iter=20)))
        model = Pipeline([("scale", StandardScaler()),
                          ("clf", VotingClassifier(members, voting="soft"))])
    X, y = toy_xy()
    return model.fit(X, y)


#: Every registered classical model, plus two pipelines other helpers may build.
MODEL_KINDS = [*CLASSICAL_MODELS, "hist_gradient_boosting", "voting_soft"]


def card_for(model, **extra):
    from ser.features import feature_params_fingerprint
    from ser.params.load import load_params

    fp = feature_params_fingerprint(load_params(ROOT / "params.yaml")
                                    ["mfcc"])
    return {"format": "skops", "labels": [str(c) for c in model.classes_],
            "feature_params": fp, "model": "svm", **extra}


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def tone(seconds=1.0, sr=16000, amp=0.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.size)).astype("f4")


def small_ravdess(root: Path) -> Path:
    for a in (1, 2):
        (root / f"Actor_{a:02d}").mkdir(parents=True)
        for e in (5, 3, 4):  # angry, happy, sad
            sf.write(root / f"Actor_{a:02d}" / f"{RAV.format(e=e, a=a)}.wav",
                     tone(seed=e + a), 16000)
    return root


RAV = "03-01-{e:02d}-01-01-01-{a:02d}"


def run_with_timeout(fn, seconds=30):
    """Run ``fn`` in a thread; fail (instead of hanging CI) if it blocks."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"blocked for more than {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def exec_pipeline(marker: Path):
    """The issue's attack: FunctionTransformers full_like -> ravel -> min -> exec."""
    import builtins

    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return Pipeline([
        ("fill", FunctionTransformer(np.full_like, validate=False,
                                     kw_args={"fill_value": code, "dtype": object})),
        ("flat", FunctionTransformer(np.ravel, validate=False)),
        ("pick", FunctionTransformer(builtins.min, validate=False)),
        ("run", FunctionTransformer(builtins.exec, validate=False)),
    ])


def edit_card(folder: Path, edit) -> None:
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))


# ------------------------------------------------- commands and the files they leave


def script(name: str):
    """The ``main`` of ``scripts/<name>.py`` (loaded once)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" /
                                                  f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def assert_one_line(rc: int, err: str, *needles: str) -> None:
    assert rc != 0, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], errors[0]


def snapshot(*roots: Path) -> dict[str, bytes | str]:
    """Every entry under ``roots`` (links not followed): file bytes, link targets, folders."""
    state: dict[str, bytes | str] = {}
    for root in roots:
        if root.is_symlink():
            state[str(root)] = "link:" + os.readlink(root)
            continue
        if root.is_file():
            state[str(root)] = root.read_bytes()
            continue
        for top, dirs, files in os.walk(root):
            state[top] = "dir"
            for name in files + [d for d in dirs if Path(top, d).is_symlink()]:
                p = Path(top, name)
                state[str(p)] = ("link:" + os.readlink(p)) if p.is_symlink() else p.read_bytes()
    return state


def no_partials(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith((".partial", ".old"))]


def run_ok(cmd: list[str], cwd: Path) -> str:
    env_path = f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}"
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**__import__("os").environ, "PATH": env_path})
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def clean_copy(dest: Path) -> Path:
    """The project's files as a fresh clone has them, on the tiny preset, as a git repo
    (the slow and SLURM pipeline tests)."""
    copy_checkout(dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["demo"]["preset"] = "tiny"
    # The other sets: tests/pipeline/test_feature_wiring.py.
    params["train"]["feature_sets"] = ["mfcc"]
    # A classical model whose grid a test edits, another, and the sequence baseline: every
    # protocol, fewer jobs (the other models: tests/unit/models/test_models.py and
    # tests/pipeline/test_feature_wiring.py).
    params["train"]["models"] = ["svm", "knn", "lstm_seed"]
    params["lstm_seed"].update(epochs=3, patience=2, units=16, dense_units=16)
    params["random_forest"]["grid"] = {"n_estimators": [50]}
    params["evaluate"]["bootstrap"] = 100
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # dvc.yaml lists one stage per job of the params it was generated from: regenerate it.
    run_ok([sys.executable, "-m", "ser.workflow.wiring", "write"], dest)
    run_ok(["git", "init", "-q"], dest)
    run_ok(["git", "add", "-A"], dest)
    run_ok(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], dest)
    return dest
