"""Feature sets, speaker-normalised variants and speaker_cv wired into the stage scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml
from conftest import ROOT, build_demo_project

MFCC = yaml.safe_load((ROOT / "params.yaml").read_text())["mfcc"]


def _clips(folder: Path, n: int = 4) -> pd.DataFrame:
    """A manifest of ``n`` short voiced clips (two speakers) and one broken file."""
    rng = np.random.default_rng(0)
    sr = 16000
    rows = []
    for i in range(n):
        t = np.arange(int(0.8 * sr)) / sr
        f0 = 120 + 40 * i
        y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        y = 0.2 * y * np.hanning(len(t)) + 0.01 * rng.normal(size=len(t))
        path = folder / f"clip{i}.wav"
        sf.write(path, y.astype(np.float32), sr)
        rows.append({"path": str(path), "corpus": "toy", "speaker": f"s{i % 2}",
                     "emotion": "angry" if i < 2 else "sad"})
    bad = folder / "broken.wav"
    bad.write_bytes(b"not audio")
    rows.append({"path": str(bad), "corpus": "toy", "speaker": "s0", "emotion": "sad"})
    return pd.DataFrame(rows)


def _meta(path: Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[b"ser_feature_params"])


def test_egemaps_extractor_writes_the_summary_table(tmp_path):
    pytest.importorskip("opensmile")
    from ser.features.sets import feature_set_params, feature_set_spec

    manifest = _clips(tmp_path)
    spec = feature_set_spec("egemaps")
    params = feature_set_params("egemaps", {"mfcc": MFCC, "egemaps": {"workers": 2}})
    result = spec.extract_function()(manifest, tmp_path / "out", params=params, progress=False)
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert result.n_rows == 4 and list(summary["path"]) == list(manifest["path"][:4])
    assert list(summary.columns[:5]) == ["path", "corpus", "speaker", "emotion"] + \
        [summary.columns[4]] and summary.columns[4].startswith("feat_egemaps_")
    assert sum(c.startswith("feat_") for c in summary.columns) == 88
    assert not (tmp_path / "out" / "sequences.parquet").exists()
    assert _meta(tmp_path / "out" / "summary.parquet")["feature_set"] == "egemaps"
    skipped = pd.read_csv(tmp_path / "out" / "skipped.csv")
    assert list(skipped["path"]) == [manifest["path"][4]]


def test_logmel_extractor_writes_sequences(tmp_path):
    from ser.features import load_sequences
    from ser.features.sets import feature_set_params, feature_set_spec

    manifest = _clips(tmp_path)
    params = feature_set_params("logmel", {"mfcc": MFCC,
                                           "logmel": {"n_mels": 32, "deltas": 1, "workers": 1}})
    feature_set_spec("logmel").extract_function()(manifest, tmp_path / "out", params=params,
                                                  progress=False)
    paths, seqs = load_sequences(tmp_path / "out" / "sequences.parquet")
    assert paths == list(manifest["path"][:4])
    assert all(s.shape[1] == 64 and s.shape[0] > 10 for s in seqs)
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    assert not [c for c in summary.columns if c.startswith("feat_")]  # sequences only
    meta = _meta(tmp_path / "out" / "sequences.parquet")
    assert (meta["feature_set"], meta["n_mels"], meta["deltas"]) == ("logmel", 32, 1)


def test_models_only_run_on_feature_sets_they_can_read():
    from ser.features.sets import model_accepts

    assert model_accepts("svm", "egemaps_spk") and not model_accepts("svm", "logmel")
    assert model_accepts("crnn", "logmel") and model_accepts("crnn", "logmel_spk")
    assert not model_accepts("crnn", "mfcc") and not model_accepts("lstm_seed", "egemaps")
    assert model_accepts("lstm_seed", "mfcc")


def _assembled(tmp_path: Path, feats: pd.DataFrame, split: pd.DataFrame, name: str):
    import pyarrow as pa

    from ser.features.extract import METADATA_KEY
    from ser.splits.protocol_data import load_protocol_data

    folder = tmp_path / "egemaps" / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(feats, preserve_index=False)
    table = table.replace_schema_metadata({METADATA_KEY: b'{"feature_set": "egemaps"}'})
    pq.write_table(table, folder / "summary.parquet")
    split.to_parquet(tmp_path / "split.parquet")
    return load_protocol_data(split_path=tmp_path / "split.parquet",
                              features_dir=tmp_path / "egemaps", corpora=["toy"],
                              feature_set=name)


def test_spk_variant_uses_only_each_speakers_own_clips_and_no_label(tmp_path):
    rng = np.random.default_rng(1)
    n = 24
    split = pd.DataFrame({"path": [f"c{i}.wav" for i in range(n)], "corpus": "toy",
                          "speaker": np.repeat(["a", "b", "c"], 8),
                          "emotion": rng.choice(["angry", "sad"], n),
                          "split": np.where(np.arange(n) >= 16, "test", "train")})
    feats = split[["path", "corpus", "speaker", "emotion"]].copy()
    feats["feat_x"] = rng.normal(size=n) * 3 + np.repeat([0.0, 5.0, -2.0], 8)
    feats["feat_y"] = rng.normal(size=n)
    plain = _assembled(tmp_path, feats, split, "egemaps")
    normed = _assembled(tmp_path, feats, split, "egemaps_spk")
    assert not plain.transductive and normed.transductive and normed.feature_set == "egemaps_spk"
    for _, rows in normed.table.groupby("speaker"):
        np.testing.assert_allclose(rows[["feat_x", "feat_y"]].mean(), 0, atol=1e-5)
        np.testing.assert_allclose(rows[["feat_x", "feat_y"]].std(ddof=0), 1, atol=1e-4)
    # Change every label and every other speaker's clip: speaker c's inputs do not move.
    split2 = split.assign(emotion=np.where(split["emotion"] == "sad", "angry", "sad"))
    feats2 = feats.copy()
    other = feats2["speaker"] != "c"
    feats2.loc[other, ["feat_x", "feat_y"]] = rng.normal(size=(other.sum(), 2)) * 100
    again = _assembled(tmp_path, feats2, split2, "egemaps_spk")
    c1 = normed.table[normed.table["speaker"] == "c"].set_index("path")[["feat_x", "feat_y"]]
    c2 = again.table[again.table["speaker"] == "c"].set_index("path")[["feat_x", "feat_y"]]
    pd.testing.assert_frame_equal(c1, c2)


@pytest.fixture(scope="module")
def cv_project(tmp_path_factory) -> Path:
    """Two tiny demo corpora run through the stages under speaker_cv (3 folds)."""
    project = tmp_path_factory.mktemp("cv_project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"tess": "data/demo/tess", "ravdess": "data/demo/ravdess"}
    params["demo"]["preset"] = "tiny"
    params["splits"]["speaker_cv_folds"] = 3
    params["train"]["cv_folds"] = 2
    params["svm"]["grid"] = {"C": [1.0, 10.0]}
    params["evaluate"]["bootstrap"] = 50
    return build_demo_project(project, params, protocol="speaker_cv",
                              feature_sets=("mfcc", "mfcc_spk"), models=("svm",))


def test_speaker_cv_split_has_folds_of_whole_speakers(cv_project):
    split = pd.read_parquet(cv_project / "data" / "splits" / "speaker_cv.parquet")
    assert set(split["fold"]) == {0, 1, 2} and (split["split"] == "train").all()
    key = split["corpus"] + ":" + split["speaker"]
    assert (split.groupby(key)["fold"].nunique() == 1).all()


@pytest.mark.parametrize("fs", ["mfcc", "mfcc_spk"])
def test_speaker_cv_predicts_every_clip_out_of_fold(cv_project, fs):
    split = pd.read_parquet(cv_project / "data" / "splits" / "speaker_cv.parquet")
    out = cv_project / "metrics" / "speaker_cv" / fs / "svm"
    metrics = json.loads((out / "metrics.json").read_text())
    details = json.loads((out / "details.json").read_text())
    preds = pd.read_csv(out / "predictions.csv")
    assert sorted(preds["path"]) == sorted(split["path"])  # every clip once
    by_path = split.set_index("path")["fold"]
    assert (preds["fold"].to_numpy() == by_path.loc[preds["path"]].to_numpy()).all()
    assert metrics["n_test"] == len(split) and metrics["protocol"] == "speaker_cv"
    assert metrics["transductive"] is (fs == "mfcc_spk")
    assert len(metrics["ci95"]["uar"]) == 2
    per = details["per_speaker"]
    assert len(per) == metrics["n_speakers"] == (split["corpus"] + split["speaker"]).nunique()
    assert sum(v["n"] for v in per.values()) == len(split)
    uars = np.array([v["uar"] for v in per.values()])
    assert metrics["uar_speaker_mean"] == pytest.approx(uars.mean(), abs=1e-3)
    assert metrics["uar_speaker_sd"] == pytest.approx(uars.std(ddof=1), abs=1e-3)
    card = json.loads((cv_project / "models" / "speaker_cv" / fs / "svm" / "card.json")
                      .read_text())
    assert card["transductive"] is (fs == "mfcc_spk") and card["feature_set"] == fs
    assert card["n_train"] == len(split)  # the final model saw every clip


def test_predict_default_model_is_never_a_transductive_one(tmp_path):
    from ser.predict.inference import default_model_dir

    for fs, uar, transductive in (("egemaps_spk", 0.9, True), ("mfcc", 0.5, False)):
        (tmp_path / "metrics" / "speaker" / fs / "svm").mkdir(parents=True)
        (tmp_path / "metrics" / "speaker" / fs / "svm" / "metrics.json").write_text(
            json.dumps({"uar": uar, "transductive": transductive}))
        (tmp_path / "models" / "speaker" / fs / "svm").mkdir(parents=True)
        (tmp_path / "models" / "speaker" / fs / "svm" / "card.json").write_text("{}")
    chosen = default_model_dir(tmp_path / "models", tmp_path / "metrics")
    assert chosen == tmp_path / "models" / "speaker" / "mfcc" / "svm"
