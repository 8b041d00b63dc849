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


def run_stage(script: str, *args: str) -> None:
    """Run ``scripts/<script>``'s ``main`` in-process; fail loudly on a non-zero exit."""
    from ser.cli import run_cli

    module = runpy.run_path(str(ROOT / "scripts" / script))
    code = run_cli(module["main"], list(args))
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
