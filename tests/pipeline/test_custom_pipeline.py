"""A user's own folder through the stage scripts: manifest, features, splits, train, evaluate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import ROOT, run_stage

from ser.corpora.demo import plan_corpus, render_clip

EMOTIONS = ("angry", "happy", "neutral", "sad")
USER_NAMES = {"angry": "Anger", "happy": "happiness", "neutral": "Neutral", "sad": "sadness"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """params.yaml with ``corpora: {custom: my_data}``; my_data/<emotion>/<speaker>/*.{wav,flac}."""
    project = tmp_path_factory.mktemp("custom_project")
    for i, clip in enumerate(c for c in plan_corpus("ravdess", preset="demo")
                             if c.emotion in EMOTIONS):
        y = render_clip("ravdess", clip).astype(np.float32) / 32768.0
        folder = project / "my_data" / USER_NAMES[clip.emotion] / f"speaker{clip.speaker.id}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2:
            sf.write(folder / f"{i:03d}.flac", np.stack([y, y], axis=1), 48_000, format="FLAC")
        else:
            sf.write(folder / f"{i:03d}.wav", y, 48_000)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"custom": "my_data"}
    params["train"].update(models=["svm"], protocols=["speaker"])
    params["evaluate"]["bootstrap"] = 100
    params["splits"]["cross_corpus_test"] = "custom"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def test_own_folder_trains_and_evaluates(project):
    old = Path.cwd()
    os.chdir(project)
    try:
        manifest, split = "data/manifests/custom.parquet", "data/splits/speaker.parquet"
        common = ["--features", "data/features/mfcc", "--split", split]
        run_stage("prepare_manifest.py", "--corpus", "custom", "--root", "my_data",
                  "--out", manifest)
        run_stage("extract_features.py", "--feature-set", "mfcc", "--corpus", "custom",
                  "--manifest", manifest, "--out", "data/features/mfcc/custom", "--no-progress")
        run_stage("make_splits.py", "--protocol", "speaker", "--out", split, manifest)
        run_stage("train.py", "--model", "svm", "--protocol", "speaker", *common,
                  "--out", "models/speaker/mfcc/svm")
        run_stage("evaluate.py", "--protocol", "speaker", *common,
                  "--model-dir", "models/speaker/mfcc/svm", "--out", "metrics/speaker/mfcc/svm")
    finally:
        os.chdir(old)
    import pandas as pd

    manifest = pd.read_parquet(project / "data/manifests/custom.parquet")
    assert len(manifest) == 56 and set(manifest["emotion"]) == set(EMOTIONS)
    assert manifest["path"].str.endswith(".flac").sum() == 28
    split = pd.read_parquet(project / "data/splits/speaker.parquet")
    train_spk = set(split.loc[split["split"] == "train", "speaker"])
    test_spk = set(split.loc[split["split"] == "test", "speaker"])
    assert train_spk and test_spk and not train_spk & test_spk
    card = json.loads((project / "models/speaker/mfcc/svm/card.json").read_text())
    assert card["labels"] == sorted(EMOTIONS) and card["corpora"] == ["custom"]
    metrics = json.loads((project / "metrics/speaker/mfcc/svm/metrics.json").read_text())
    assert metrics["n_test"] > 0 and metrics["uar"] > 0.25   # chance is 0.25


def _stages(project: Path, root: str, protocol: str) -> None:
    """Every stage from the manifest to the evaluation, run in ``project``."""
    old = Path.cwd()
    os.chdir(project)
    try:
        manifest, split = "data/manifests/custom.parquet", f"data/splits/{protocol}.parquet"
        common = ["--features", "data/features/mfcc", "--split", split]
        run_stage("prepare_manifest.py", "--corpus", "custom", "--root", root, "--out", manifest)
        run_stage("extract_features.py", "--feature-set", "mfcc", "--corpus", "custom",
                  "--manifest", manifest, "--out", "data/features/mfcc/custom", "--no-progress")
        run_stage("make_splits.py", "--protocol", protocol, "--out", split, manifest)
        run_stage("train.py", "--model", "svm", "--protocol", protocol, *common,
                  "--out", f"models/{protocol}/mfcc/svm")
        run_stage("evaluate.py", "--protocol", protocol, *common, "--model-dir",
                  f"models/{protocol}/mfcc/svm", "--out", f"metrics/{protocol}/mfcc/svm")
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def csv_project(tmp_path_factory) -> Path:
    """A flat folder of clips listed in a CSV (path, label, speaker), RAVDESS' 8 emotions,
    with ``labels: {preset: four_class}`` (calm counted as neutral, 4 classes kept)."""
    project = tmp_path_factory.mktemp("csv_project")
    lines = ["file,label,speaker"]
    for i, clip in enumerate(plan_corpus("ravdess", preset="demo")):
        if clip.speaker.id not in {"01", "02", "03", "04", "05", "06"}:
            continue
        y = render_clip("ravdess", clip).astype(np.float32) / 32768.0
        (project / "recordings" / "audio").mkdir(parents=True, exist_ok=True)
        sf.write(project / "recordings" / "audio" / f"{i:03d}.wav", y, 48_000)
        lines.append(f"audio/{i:03d}.wav,{clip.emotion.title()},spk{clip.speaker.id}")
    (project / "recordings" / "labels.csv").write_text("\n".join(lines) + "\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"custom": "recordings/labels.csv"}
    params["labels"] = {"preset": "four_class"}
    params["train"].update(models=["svm"], protocols=["speaker"])
    params["evaluate"]["bootstrap"] = 100
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def test_csv_corpus_with_label_map_trains_and_evaluates(csv_project):
    import pandas as pd

    _stages(csv_project, "recordings/labels.csv", "speaker")
    manifest = pd.read_parquet(csv_project / "data/manifests/custom.parquet")
    assert manifest["speaker"].nunique() == 6 and "calm" in set(manifest["emotion"])
    split = pd.read_parquet(csv_project / "data/splits/speaker.parquet")
    assert len(split) == len(manifest)
    used = split[split["split"] != "unused"]
    assert set(used["emotion"]) == {"angry", "happy", "neutral", "sad"}
    n_neutral = manifest["emotion"].isin(["neutral", "calm"]).sum()
    assert (used["emotion"] == "neutral").sum() == n_neutral
    unused = split[split["split"] == "unused"]
    assert set(unused["emotion"]) == {"fearful", "disgust", "surprised"}
    assert unused["note"].str.contains("not in keep").all()
    card = json.loads((csv_project / "models/speaker/mfcc/svm/card.json").read_text())
    assert card["labels"] == ["angry", "happy", "neutral", "sad"]
    metrics = json.loads((csv_project / "metrics/speaker/mfcc/svm/metrics.json").read_text())
    assert metrics["label_map"] == "neutral, happy, sad, angry; merged calm -> neutral"
    assert metrics["restricted_to"] == card["labels"]
    assert metrics["dropped_test_emotions"] == {} and metrics["excluded_model_classes"] == []
    assert metrics["n_test"] > 0 and metrics["uar"] > 0.25   # chance is 0.25


def test_speaker_protocol_without_speakers_says_what_to_do(tmp_path, capsys):
    import runpy

    from ser.cli import run_cli

    for i, clip in enumerate(c for c in plan_corpus("ravdess", preset="tiny")
                             if c.emotion in EMOTIONS):
        y = render_clip("ravdess", clip).astype(np.float32) / 32768.0
        (tmp_path / "flat" / clip.emotion).mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "flat" / clip.emotion / f"{i}.wav", y, 16_000)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"custom": str(tmp_path / "flat")}
    params["train"]["protocols"] = ["speaker"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    manifest = str(tmp_path / "custom.parquet")
    prepare = runpy.run_path(str(ROOT / "scripts" / "prepare_manifest.py"))["main"]
    assert run_cli(prepare, ["--corpus", "custom", "--root", str(tmp_path / "flat"),
                             "--out", manifest, "--params", str(tmp_path / "params.yaml")]) == 0
    assert "WARNING: no speaker is given" in capsys.readouterr().out
    splits = runpy.run_path(str(ROOT / "scripts" / "make_splits.py"))["main"]
    assert run_cli(splits, ["--protocol", "speaker", "--out", str(tmp_path / "s.parquet"),
                            "--params", str(tmp_path / "params.yaml"), manifest]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names no speakers" in err and "'speaker' column" in err


def test_snakemake_plans_a_custom_corpus_without_demo_synthesis(project, tmp_path):
    """`corpora: {custom: my_data}`: the manifest job reads the user's folder; nothing
    tries to synthesise a 'custom' demo corpus (also when its root is under data/demo/)."""
    import shutil
    import subprocess
    import sys

    work = tmp_path / "work"
    work.mkdir()
    for name in ("Snakefile", "workflow", "scripts", "benchmarks"):
        (work / name).symlink_to(ROOT / name)
    shutil.copytree(project / "my_data", work / "data" / "demo" / "custom")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["corpora"] = {"custom": "data/demo/custom"}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["snakemake", "--dry-run", "--forceall", "--cores", "1"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "generate_demo" not in proc.stdout
    assert "rule manifest:" in proc.stdout and "data/demo/custom" in proc.stdout
