"""byols_ft: the BYOL-S encoder fine-tuned (pretrained start, frozen front, safe saving,
pipeline train + evaluate + prediction)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, build_demo_project

from ser.errors import ConfigError
from ser.features import byols as B
from ser.models import byols_ft as F

N_FRAMES = 64


def _clips(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded log-mel-like clips ``(n, N_FRAMES, 64)`` and their lengths."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(24, N_FRAMES + 1, n)
    lengths[0] = N_FRAMES
    X = np.zeros((n, N_FRAMES, B.N_MELS), np.float32)
    for i, n_frames in enumerate(lengths):
        X[i, :n_frames] = rng.normal(-6.0, 4.0, (n_frames, B.N_MELS))
    return X, lengths


def _cfg(**kw) -> F.ByolsFTConfig:
    return F.ByolsFTConfig.from_mapping({"n_frames": N_FRAMES, "head_epochs": 1, "epochs": 1,
                                         "batch_size": 8} | kw)


@pytest.fixture(scope="module")
def fitted():
    X, _ = _clips(40)
    y = np.arange(40) % 4
    # A learnable cue: class k is louder in band block k.
    for k in range(4):
        X[y == k, :, 16 * k:16 * (k + 1)] += np.where(X[y == k, :, :1] != 0, 3.0, 0.0)
    model, epochs, facts = F.fit_byols_ft(X, y.astype(np.int32), n_classes=4,
                                          train_idx=np.arange(32), val_idx=np.arange(32, 40),
                                          cfg=_cfg(), seed=0)
    return X, model, epochs, facts


def test_frame_lengths_finds_each_clips_end():
    X, lengths = _clips(6)
    out = np.asarray(F.FrameLengths()(X))
    np.testing.assert_array_equal(out, lengths)


def test_untrained_model_pools_exactly_the_byols_embedding():
    # The encoder starts from the shipped weights: its pooled output is the byols
    # feature set's embedding (the NumPy Encoder.embed, one clip at a time) of the same clips.
    X, lengths = _clips(10, seed=1)
    arrays, _ = B.load_weights()
    nets = F.build_byols_ft(n_classes=4, cfg=_cfg(), norm_mean=-6.1, norm_std=4.2,
                            arrays=arrays)
    got = np.asarray(nets.embedding.predict(X, verbose=0))
    ref = B.Encoder(arrays).embed([x[:n] for x, n in zip(X, lengths, strict=True)],
                                  norm_mean=-6.1, norm_std=4.2)
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    # ... and the cached front + tail give the same as the whole model.
    maps, lens = F.cache_front(nets.front, X)
    np.testing.assert_array_equal(lens, lengths)
    via_cache = np.asarray(nets.tail_embedding.predict({"maps": maps, "lengths": lens},
                                                       verbose=0))
    np.testing.assert_allclose(via_cache, got, rtol=1e-5, atol=1e-4)


def test_fine_tuning_keeps_the_front_and_moves_the_tail():
    X, _ = _clips(16, seed=2)
    y = (np.arange(16) % 2).astype(np.int32)
    arrays, _ = B.load_weights()
    # No validation clips: the last epoch's weights are kept (nothing to restore).
    model, epochs, _ = F.fit_byols_ft(X, y, n_classes=2, train_idx=np.arange(16),
                                      val_idx=np.array([], int), cfg=_cfg(head_epochs=0),
                                      seed=0, arrays=arrays)
    assert epochs == []
    conv0 = np.transpose(arrays["features.0.weight"], (3, 2, 1, 0))
    np.testing.assert_array_equal(model.get_layer("conv0").get_weights()[0], conv0)
    np.testing.assert_array_equal(model.get_layer("bn1").get_weights()[2],
                                  arrays["features.5.running_mean"])
    np.testing.assert_array_equal(model.get_layer("bn2").get_weights()[2],
                                  arrays["features.9.running_mean"])  # kept in inference
    conv2 = np.transpose(arrays["features.8.weight"], (3, 2, 1, 0))
    assert np.abs(model.get_layer("conv2").get_weights()[0] - conv2).max() > 0
    assert np.abs(model.get_layer("fc1").get_weights()[0] - arrays["fc.3.weight"].T).max() > 0


def test_early_stopping_watches_both_phases(fitted):
    _, _, epochs, facts = fitted
    assert [e["phase"] for e in epochs] == ["head", "fine-tune"]
    assert all(e["val_loss"] > 0 and 0 <= e["val_accuracy"] <= 1 for e in epochs)
    assert 1 <= facts["best_epoch"] <= 2 and 0.0 <= facts["best_val_uar"] <= 1.0
    fit_clips = fitted[0][:32]  # the statistics come from the fitting clips' real frames
    real_frames = fit_clips[np.any(fit_clips != 0, axis=-1)]
    assert facts["norm_mean"] == pytest.approx(float(real_frames.mean()), abs=1e-4)


def test_saved_model_loads_in_safe_mode_with_identical_predictions(fitted, tmp_path):
    X, model, _, _ = fitted
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(F.predict_proba(loaded, X), F.predict_proba(model, X))
    names = {type(layer).__name__ for layer in loaded.layers}
    assert "Lambda" not in names and {"FrameLengths", "ScalarStandardize"} <= names


def test_masks_and_mixup_of_the_fitting_batches():
    rng = np.random.default_rng(0)
    maps = rng.random((16, 16, 16, 64)).astype(np.float32) + 0.5
    lengths = rng.integers(20, 64, 16).astype(np.int32)
    y = np.eye(4, dtype=np.float32)[np.arange(16) % 4]
    batches = F.MapBatches(maps, lengths, y, np.ones(16, np.float32),
                           cfg=_cfg(batch_size=8, time_masks=2, time_width=24), seed=0)
    x, yb, w = batches[0]
    assert x["maps"].shape == (8, 16, 16, 64) and len(batches) == 2
    np.testing.assert_allclose(yb.sum(axis=1), 1.0, rtol=1e-6)
    assert (yb.max(axis=1) >= 0.5 - 1e-6).all() and (yb.max(axis=1) < 1.0).any()
    assert (x["maps"] == 0).any()  # masks
    idx = batches.order[:8]
    assert (x["lengths"] >= lengths[idx]).all()
    assert maps.min() >= 0.5  # the cached maps themselves are left alone
    plain = F.MapBatches(maps, lengths, y, np.ones(16, np.float32),
                         cfg=_cfg(mixup_alpha=0.0, time_masks=0, freq_masks=0), seed=0)
    xp, yp, _ = plain[0]
    np.testing.assert_array_equal(xp["maps"], maps[plain.order[:8]])
    np.testing.assert_array_equal(yp, y[plain.order[:8]])


def test_config_refuses_unknown_and_bad_settings():
    with pytest.raises(ConfigError, match="unknown setting.*lr"):
        F.ByolsFTConfig.from_mapping({"lr": 1})
    with pytest.raises(ConfigError, match="frozen_blocks"):
        F.ByolsFTConfig.from_mapping({"frozen_blocks": 4})


def test_registry_schema_and_params_agree():
    from ser.features.sets import EXTRACTED_SETS, FEATURE_SETS, model_accepts
    from ser.models import MODEL_SPECS
    from ser.params.load import load_params

    spec = FEATURE_SETS["byols_mel"]
    assert "byols_mel" in EXTRACTED_SETS and spec.sequences == "byols"
    assert not spec.has_summary and "byols_mel_spk" not in FEATURE_SETS
    assert MODEL_SPECS["byols_ft"].train_function().__name__ == "train_byols_ft"
    assert model_accepts("byols_ft", "byols_mel") and not model_accepts("byols_ft", "logmel")
    assert not model_accepts("crnn", "byols_mel") and not model_accepts("svm", "byols_mel")
    params = load_params(ROOT / "params.yaml")  # schema-validated
    assert F.ByolsFTConfig.from_mapping(params["byols_ft"]).frozen_blocks == 2
    assert "byols_ft" not in params["train"]["models"]  # not in the demo's defaults
    assert "byols_mel" not in params["train"]["feature_sets"]


# --------------------------------------------------------------------------- pipeline

@pytest.fixture(scope="module")
def ft_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("byols_ft_project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"tess": "data/demo/tess", "ravdess": "data/demo/ravdess"}
    params["demo"]["preset"] = "tiny"
    params["evaluate"]["bootstrap"] = 20
    params["byols_mel"]["workers"] = 1
    params["byols_ft"] |= {"n_frames": 128, "head_epochs": 1, "epochs": 1, "batch_size": 8}
    return build_demo_project(project, params, protocol="speaker",
                              feature_sets=("byols_mel",), extracted="byols_mel",
                              models=("byols_ft",))


def test_pipeline_extracts_trains_and_evaluates_byols_ft(ft_project):
    seqs = pd.read_parquet(ft_project / "data/features/byols_mel/tess/sequences.parquet")
    assert (seqs["n_coeffs"] == B.N_MELS).all() and len(seqs) > 0
    run = "speaker/byols_mel/byols_ft"
    card = json.loads((ft_project / "models" / run / "card.json").read_text())
    assert card["feature_params"]["feature_set"] == "byols_mel"
    assert card["n_frames"] == 128 and card["pad"] == "zeros"
    assert card["encoder_weights_sha256"] == B.load_weights()[1]
    history = pd.read_csv(ft_project / "models" / run / "history.csv")
    assert list(history["phase"]) == ["head", "fine-tune"]
    assert {"loss", "val_loss", "val_accuracy", "val_uar"} <= set(history.columns)
    metrics = json.loads((ft_project / "metrics" / run / "metrics.json").read_text())
    assert metrics["n_test"] > 0 and 0.0 <= metrics["uar"] <= 1.0


def test_prediction_of_files_matches_the_pipelines_inputs(ft_project):
    from ser.predict.inference import Predictor

    predictor = Predictor.load(ft_project / "models/speaker/byols_mel/byols_ft")
    seqs = pd.read_parquet(ft_project / "data/features/byols_mel/ravdess/sequences.parquet")
    path = str(seqs["path"].iloc[0])
    if not Path(path).is_absolute():
        path = str(ft_project / path)
    ok, stored_seq, _, failures = predictor.features_for_files([path])
    assert ok and not failures
    stored = np.asarray(seqs["mfcc"].iloc[0], np.float32).reshape(-1, B.N_MELS)
    np.testing.assert_allclose(stored_seq[0], stored, atol=1e-5)
    _, proba, _ = predictor.predict_files([path])
    np.testing.assert_allclose(proba, predictor.proba_from_sequences([stored]), atol=1e-6)
    assert proba.shape == (1, len(predictor.labels))
