"""Cross-corpus honesty: a model is scored only on the emotions it shares with the test set.

A model trained on (demo) RAVDESS knows calm and surprised; EMO-DB has boredom instead.
`ser evaluate` must leave the boredom clips out (named, counted), never answer calm or
surprised (their probability mass is removed and the rest renormalised), and say so in
its output and metrics.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_stage

from ser.errors import SerError
from ser.evaluation.metrics import restrict_to_shared


def test_restrict_to_shared_names_both_sides():
    shared, keep = restrict_to_shared(["calm", "happy", "sad", "surprised"],
                                      ["sad", "boredom", "happy", "boredom", "angry"])
    assert shared.shared == ("happy", "sad")
    assert shared.dropped_test_emotions == {"angry": 1, "boredom": 2}
    assert shared.excluded_model_classes == ("calm", "surprised")
    assert keep.tolist() == [True, False, True, False, False]
    proba = np.array([[0.5, 0.3, 0.1, 0.1],     # calm wins before restriction
                      [1.0, 0.0, 0.0, 0.0]])    # all mass on an excluded class
    out = shared.proba(proba)
    np.testing.assert_allclose(out, [[0.75, 0.25], [0.5, 0.5]])
    assert shared.to_metrics() == {"restricted_to": ["happy", "sad"],
                                   "dropped_test_emotions": {"angry": 1, "boredom": 2},
                                   "excluded_model_classes": ["calm", "surprised"]}
    with pytest.raises(SerError, match="none of the test emotions"):
        restrict_to_shared(["calm", "happy"], ["boredom"])


@pytest.fixture(scope="module")
def ravdess_model(tmp_path_factory) -> Path:
    """An SVM trained on the demo RAVDESS (8 emotions incl. calm and surprised)."""
    project = tmp_path_factory.mktemp("shared_classes")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"ravdess": "data/demo/ravdess"}
    params["train"].update(models=["svm"], protocols=["random"])
    params["svm"]["grid"] = {"C": [10.0], "gamma": ["scale"]}
    params["evaluate"]["bootstrap"] = 50
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = Path.cwd()
    os.chdir(project)
    try:
        manifest, split = "data/manifests/ravdess.parquet", "data/splits/random.parquet"
        run_stage("generate_demo.py", "--corpus", "ravdess", "--out", "data/demo/ravdess")
        run_stage("generate_demo.py", "--corpus", "emodb", "--preset", "tiny",
                  "--out", "data/demo/emodb")
        run_stage("prepare_manifest.py", "--corpus", "ravdess", "--root", "data/demo/ravdess",
                  "--out", manifest)
        run_stage("extract_features.py", "--feature-set", "mfcc", "--corpus", "ravdess",
                  "--manifest", manifest, "--out", "data/features/mfcc/ravdess", "--no-progress")
        run_stage("make_splits.py", "--protocol", "random", "--out", split, manifest)
        run_stage("train.py", "--model", "svm", "--protocol", "random", "--features",
                  "data/features/mfcc", "--split", split, "--out", "models/random/mfcc/svm")
    finally:
        os.chdir(old)
    return project


def test_ser_evaluate_restricts_answers_to_shared_emotions(ravdess_model, capsys):
    from ser.cli import main as ser_main

    project = ravdess_model
    model = project / "models/random/mfcc/svm"
    card = json.loads((model / "card.json").read_text())
    assert {"calm", "surprised"} <= set(card["labels"]) and "boredom" not in card["labels"]
    emodb = project / "data/demo/emodb"
    out = project / "eval"
    rc = ser_main(["evaluate", "--model", str(model), "--corpus", "emodb", "--root", str(emodb),
                   "--out", str(out), "--bootstrap", "50"])
    printed = capsys.readouterr().out
    assert rc == 0
    from ser.corpora import parse_corpus

    truth = parse_corpus("emodb", emodb).to_frame()
    n_boredom = int((truth["emotion"] == "boredom").sum())
    assert n_boredom > 0
    shared = [lab for lab in card["labels"] if lab in set(truth["emotion"])]
    m = json.loads((out / "metrics.json").read_text())
    assert m["restricted_to"] == shared
    assert m["dropped_test_emotions"] == {"boredom": n_boredom}
    assert m["n_unknown_emotion"] == n_boredom
    assert m["n_test"] == len(truth) - n_boredom
    assert set(m["excluded_model_classes"]) == {"calm", "surprised"}
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == m["n_test"] and set(preds["predicted"]) <= set(shared)
    assert sorted(c for c in preds if c.startswith("p_")) == sorted(f"p_{s}" for s in shared)
    np.testing.assert_allclose(preds[[f"p_{s}" for s in shared]].sum(axis=1), 1, atol=1e-4)
    assert "boredom" not in set(preds["actual"])
    assert f"boredom {n_boredom}" in printed and "calm, surprised" in printed
    # The default output folder is unique per model folder.
    from ser.evaluation.external import default_external_out

    assert default_external_out(Path("models/random/mfcc/svm"), "emodb") != \
        default_external_out(Path("models/speaker/mfcc/svm"), "emodb")


def test_cross_corpus_stage_names_the_left_out_test_emotions(ravdess_model):
    """The pipeline's cross_corpus evaluation: train on RAVDESS, test on EMO-DB; boredom
    clips are left out by the split and named, with their count, in metrics.json."""
    project = ravdess_model
    old = Path.cwd()
    os.chdir(project)
    try:
        manifests = ["data/manifests/ravdess.parquet", "data/manifests/emodb.parquet"]
        params = yaml.safe_load(Path("params.yaml").read_text())
        params["corpora"]["emodb"] = "data/demo/emodb"
        params["splits"]["cross_corpus_test"] = "emodb"
        params["train"]["protocols"] = ["cross_corpus"]
        Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run_stage("prepare_manifest.py", "--corpus", "emodb", "--root", "data/demo/emodb",
                  "--out", manifests[1])
        run_stage("extract_features.py", "--feature-set", "mfcc", "--corpus", "emodb",
                  "--manifest", manifests[1], "--out", "data/features/mfcc/emodb",
                  "--no-progress")
        split = "data/splits/cross_corpus.parquet"
        common = ["--features", "data/features/mfcc", "--split", split]
        run_stage("make_splits.py", "--protocol", "cross_corpus", "--out", split, *manifests)
        run_stage("train.py", "--model", "svm", "--protocol", "cross_corpus", *common,
                  "--out", "models/cross_corpus/mfcc/svm")
        run_stage("evaluate.py", "--protocol", "cross_corpus", *common, "--model-dir",
                  "models/cross_corpus/mfcc/svm", "--out", "metrics/cross_corpus/mfcc/svm")
    finally:
        os.chdir(old)
    emodb = pd.read_parquet(project / "data/manifests/emodb.parquet")
    n_boredom = int((emodb["emotion"] == "boredom").sum())
    m = json.loads((project / "metrics/cross_corpus/mfcc/svm/metrics.json").read_text())
    assert m["dropped_test_emotions"] == {"boredom": n_boredom}
    assert m["excluded_model_classes"] == []
    assert set(m["restricted_to"]) == set(emodb["emotion"]) - {"boredom"}
    assert m["n_test"] == len(emodb) - n_boredom and m["label_map"] == "all labels"
    preds = pd.read_csv(project / "metrics/cross_corpus/mfcc/svm/predictions.csv")
    assert set(preds["predicted"]) <= set(m["restricted_to"])
