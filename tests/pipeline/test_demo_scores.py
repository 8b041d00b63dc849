"""On the demo corpus every model learns something a new speaker's voice still shows."""

from __future__ import annotations

import json

import pytest

MODELS = ["svm", "knn", "random_forest", "decision_tree", "lstm_seed"]  # the shipped defaults


@pytest.mark.parametrize("model", MODELS)
def test_speaker_independent_score_beats_chance_and_dummy(demo_project, model):
    m = json.loads((demo_project / "metrics" / "speaker" / "mfcc" / model / "metrics.json")
                   .read_text())
    assert m["n_test"] > 50
    # Above chance by a margin, and above the stratified dummy, with the CI clear of chance.
    assert m["uar"] > 1.5 * m["chance_uar"], m
    assert m["uar"] > m["baseline_stratified_uar"], m
    assert m["ci95"]["uar"][0] > m["chance_uar"], m
    assert m["uar"] < 0.95, "a demo where everything is perfect teaches nothing"


def test_test_speakers_never_seen_in_training(demo_project):
    import pandas as pd

    split = pd.read_parquet(demo_project / "data" / "splits" / "speaker.parquet")
    keys = split["corpus"] + ":" + split["speaker"]
    test_speakers = set(keys[split["split"] == "test"])
    for model in MODELS:
        card = json.loads((demo_project / "models" / "speaker" / "mfcc" / model / "card.json")
                          .read_text())
        assert not test_speakers & set(card["train_speakers"]), model


def test_rerun_gives_identical_sklearn_metrics(demo_project, monkeypatch, tmp_path):
    from conftest import run_stage

    monkeypatch.chdir(demo_project)
    common = ["--protocol", "speaker", "--features", "data/features/mfcc",
              "--split", "data/splits/speaker.parquet"]
    run_stage("train.py", "--model", "svm", *common, "--out", str(tmp_path / "m"))
    run_stage("evaluate.py", *common, "--model-dir", str(tmp_path / "m"),
              "--out", str(tmp_path / "e"))
    again = json.loads((tmp_path / "e" / "metrics.json").read_text())
    first = json.loads((demo_project / "metrics" / "speaker" / "mfcc" / "svm" / "metrics.json")
                       .read_text())
    assert again == first
