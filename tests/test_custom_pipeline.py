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
