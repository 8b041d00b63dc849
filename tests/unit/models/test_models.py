"""Models: normalisation fit on training data only, grouped tuning, safe and reproducible."""

from __future__ import annotations

import json
import operator

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from ser.errors import SerError
from ser.features import check_feature_params, feature_params_fingerprint
from ser.models.classical import tune
from ser.models.lstm import SequenceScaler, StandardizedSequences, fit_lstm
from ser.models.store import load_model, save_model

EMOTIONS = np.array(["angry", "happy", "neutral", "sad"])


def toy_data(seed: int = 0, n_speakers: int = 8, per: int = 12):
    """Features with a class signal and a per-speaker offset (the thing that leaks)."""
    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(0, 2, 6)
        for i in range(per):
            label = i % len(EMOTIONS)
            X.append(offset + rng.normal(0, 1, 6) + 1.5 * np.eye(6)[label])
            y.append(EMOTIONS[label])
            groups.append(f"c:{s}")
    return np.array(X) + 10.0, np.array(y), np.array(groups)


def tuned(model="svm", protocol="speaker", seed=0):
    X, y, g = toy_data()
    grid = {"svm": {"C": [0.5, 2.0]}, "knn": {"n_neighbors": [3, 5]},
            "random_forest": {"n_estimators": [20]}, "decision_tree": {"max_depth": [3, None]}}
    return tune(model, X, y, groups=g, protocol=protocol, grid=grid[model],
                scoring="f1_macro", cv_folds=3, seed=seed), X, y, g


def test_scaler_statistics_are_the_training_data_statistics():
    search, X, y, g = tuned("svm")
    scaler = search.best_estimator_.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, X.std(axis=0))


def test_grid_search_folds_are_grouped_by_speaker():
    search, X, y, g = tuned("knn", protocol="speaker")
    assert type(search.cv).__name__ == "StratifiedGroupKFold"
    for fit_idx, val_idx in search.cv.split(X, y, g):
        assert not set(g[fit_idx]) & set(g[val_idx])


def test_random_protocol_uses_plain_stratified_folds():
    search, *_ = tuned("knn", protocol="random")
    assert type(search.cv).__name__ == "StratifiedKFold"


@pytest.mark.parametrize("model", ["svm", "knn", "random_forest", "decision_tree"])
def test_classical_models_are_bit_reproducible(model):
    a, X, *_ = tuned(model)
    b, *_ = tuned(model)
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_bad_grid_key_is_a_clear_error():
    X, y, g = toy_data()
    with pytest.raises(SerError, match="svm: bad grid"):
        tune("svm", X, y, groups=g, protocol="speaker", grid={"not_a_param": [1]},
             scoring="f1_macro", cv_folds=3, seed=0)


def test_skops_round_trip_and_card(tmp_path):
    search, X, *_ = tuned("svm")
    card = {"format": "skops", "labels": list(search.classes_), "feature_params": {"n_mfcc": 40}}
    save_model(tmp_path / "m", search.best_estimator_, card)
    model, loaded = load_model(tmp_path / "m")
    assert loaded["labels"] == card["labels"]
    np.testing.assert_array_equal(model.predict_proba(X), search.predict_proba(X))
    assert json.loads((tmp_path / "m" / "card.json").read_text())["format"] == "skops"


def test_untrusted_skops_content_is_refused(tmp_path):
    evil = Pipeline([("f", FunctionTransformer(operator.attrgetter("real")))])
    save_model(tmp_path / "m", evil, {"format": "skops", "labels": ["a"], "feature_params": {}})
    with pytest.raises(SerError, match="untrusted"):
        load_model(tmp_path / "m")


def test_missing_or_unfinished_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SerError, match="not found"):
        load_model(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(SerError, match="no card.json"):
        load_model(tmp_path / "half")


def test_feature_params_must_match_the_card():
    from ser.params.load import load_params

    mfcc = load_params()["mfcc"]
    card = {"feature_params": feature_params_fingerprint(mfcc)}
    check_feature_params(card["feature_params"], mfcc)
    with pytest.raises(SerError, match="n_mfcc: stored 40, now 20"):
        check_feature_params(card["feature_params"], {**mfcc, "n_mfcc": 20})


def test_sequence_scaler_uses_training_frames_and_masks_padding():
    rng = np.random.default_rng(0)
    train = [rng.normal(3, 2, (n, 4)) for n in (5, 9, 7)]
    scaler = SequenceScaler.fit(train)
    frames = np.concatenate(train)
    np.testing.assert_allclose(scaler.mean, frames.mean(axis=0))
    X = scaler.transform([rng.normal(3, 2, (12, 4)), rng.normal(3, 2, (2, 4))])
    assert X.shape == (2, 9, 4)  # truncated to the longest training clip
    assert np.all(X[1, 2:] == 0.0) and np.all(np.any(X[1, :2] != 0.0, axis=1))


LSTM_CFG = {"units": 8, "dense_units": 8, "dropout": 0.1, "learning_rate": 0.01,
            "batch_size": 16, "epochs": 3, "patience": 2, "validation_share": 0.25,
            "class_weights": True}


def toy_sequences(seed=0, n=48):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    seqs = [rng.normal(y_i, 1.0, (rng.integers(8, 15), 5)) for y_i in y]
    return seqs, y.astype(np.int32)


def test_lstm_trains_saves_and_reloads_in_safe_mode(tmp_path):
    seqs, y = toy_sequences()
    scaler = SequenceScaler.fit(seqs[:36])
    X = scaler.transform(seqs)
    model, history = fit_lstm(X, y, n_classes=3, train_idx=np.arange(36),
                              val_idx=np.arange(36, 48), cfg=LSTM_CFG, seed=0,
                              live_dir=tmp_path / "live", verbose=0)
    assert {"loss", "val_loss"} <= set(history.history)
    assert (tmp_path / "live" / "plots" / "metrics").is_dir()  # dvclive curves
    save_model(tmp_path / "m", model, {"format": "keras", "labels": ["a", "b", "c"],
                                       "feature_params": {}})
    loaded, _ = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                               atol=1e-6)


def test_lstm_is_reproducible_with_the_same_seed():
    """JAX on CPU: same seed, same data -> same predictions within 1e-5 (documented)."""
    seqs, y = toy_sequences(1)
    X = SequenceScaler.fit(seqs).transform(seqs)
    runs = [fit_lstm(X, y, n_classes=3, train_idx=np.arange(36), val_idx=np.arange(36, 48),
                     cfg=LSTM_CFG, seed=3, verbose=0)[0].predict(X, verbose=0)
            for _ in range(2)]
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)


def test_model_table_names_the_new_models_and_the_seed_baseline():
    from ser.models import MODEL_SPECS

    assert {"hist_gb", "ensemble", "crnn", "lstm_seed"} <= set(MODEL_SPECS)
    assert "lstm" not in MODEL_SPECS
    assert MODEL_SPECS["lstm_seed"].display == "LSTM (seed)"
    assert MODEL_SPECS["lstm_seed"].sequences == "mfcc"
    assert MODEL_SPECS["crnn"].sequences == "logmel"
    assert MODEL_SPECS["hist_gb"].kind == MODEL_SPECS["ensemble"].kind == "classical"


def test_crnn_trains_from_the_pipeline_and_predicts_a_recording(tmp_path):
    """train_crnn on log-mel sequences; the card's n_mels/deltas/n_frames let the
    Predictor classify an audio file (logmel_from_file + fix_length)."""
    import pandas as pd
    import soundfile as sf
    import yaml

    from ser.features.corpus_sets import logmel_fingerprint
    from ser.models import model_spec
    from ser.models.training import train
    from ser.params.settings import TrainSettings
    from ser.predict.inference import Predictor
    from ser.splits.protocol_data import ProtocolData

    mfcc = yaml.safe_load((__import__("pathlib").Path(__file__).resolve().parents[3] /
                           "params.yaml").read_text())["mfcc"]
    params = mfcc | {"options": {"n_mels": 16, "deltas": 1}}
    rng = np.random.default_rng(0)
    rows, seqs = [], {}
    for s in range(4):
        for i in range(8):
            label = EMOTIONS[i % 2]
            path = f"/x/{s}_{i}.wav"
            n = int(rng.integers(30, 60))
            seqs[path] = (rng.normal(size=(n, 32)) + (2.0 if label == "angry" else 0.0)
                          ).astype(np.float32)
            rows.append({"path": path, "corpus": "toy", "speaker": f"s{s}", "emotion": label,
                         "split": "test" if s == 3 else "train"})
    data = ProtocolData(pd.DataFrame(rows), logmel_fingerprint(params), tmp_path, "logmel",
                        ["toy"], _sequences=seqs)
    section = {"n_frames": 40, "channels": 8, "n_blocks": 2, "dense_units": 8, "epochs": 2,
               "min_epochs": 0, "patience": 1, "batch_size": 8}
    card = train(model_spec("crnn"), "speaker", data, out_dir=tmp_path / "m",
                 settings=TrainSettings(scoring="f1_macro", cv_folds=2, seed=0),
                 section=section, verbose=0)
    assert (card["n_mels"], card["deltas"], card["n_frames"]) == (16, 1, 40)
    assert card["transductive"] is False
    # A fresh process (like the evaluate stage) loads it: the custom layers register.
    import subprocess
    import sys

    code = ("from ser.predict.inference import Predictor; import sys; "
            "print(Predictor.load(sys.argv[1]).model.name)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "ser_crnn" in proc.stdout, proc.stderr
    predictor = Predictor.load(tmp_path / "m")
    proba = predictor.proba_from_sequences([seqs[p] for p in data.test["path"]])
    assert proba.shape == (8, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    wav = tmp_path / "voice.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    ok, file_proba, failures = predictor.predict_files([wav])
    assert ok == [str(wav)] and not failures and file_proba.shape == (1, 2)


@pytest.mark.parametrize("scoring", ["f1_macro", "balanced_accuracy", "neg_log_loss"])
def test_svm_search_without_probabilities_chooses_and_refits_as_gridsearchcv(scoring):
    """The SVM grid is searched without Platt scaling when the scorer reads only predict:
    same CV scores and best model as GridSearchCV over the full pipeline."""
    from sklearn.model_selection import GridSearchCV

    from ser.models.classical import cv_setup, make_pipeline, param_grid, search_pipeline

    X, y, g = toy_data()
    grid = {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.01]}
    search = tune("svm", X, y, groups=g, protocol="speaker", grid=grid, scoring=scoring,
                  cv_folds=3, seed=0)
    cv, fit_groups = cv_setup("svm", X, y, groups=g, protocol="speaker", grid=grid,
                              cv_folds=3, seed=0)
    full = GridSearchCV(make_pipeline("svm", seed=0), param_grid("svm", grid),
                        scoring=scoring, cv=cv).fit(X, y, groups=fit_groups)
    light = search_pipeline("svm", seed=0, scoring=scoring).named_steps["clf"].probability
    assert light is (scoring == "neg_log_loss")  # log loss reads probabilities
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  full.cv_results_["mean_test_score"])
    assert search.best_params_ == full.best_params_
    assert search.best_estimator_.named_steps["clf"].probability
    np.testing.assert_array_equal(search.best_estimator_.predict_proba(X),
                                  full.best_estimator_.predict_proba(X))


def test_length_buckets_cover_every_clip_once_per_epoch_in_few_shapes():
    from ser.models.lstm import bucket_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 402, 203)
    batches = bucket_batches(lengths, batch_size=16, bucket_frames=100, max_frames=401,
                             rng=np.random.default_rng(1))
    real = np.concatenate([idx[:n] for idx, n, _ in batches])
    assert sorted(real) == list(range(len(lengths)))  # every clip once
    assert all(len(idx) == 16 for idx, _, _ in batches)  # full batches: one shape a bucket
    assert {f for _, _, f in batches} <= {100, 200, 300, 400, 401}
    for idx, _, frames in batches:
        assert (lengths[idx] <= frames).all() and (lengths[idx] > frames - 100).all()


def test_validation_batches_sorted_by_length_score_as_the_padded_tensor():
    """Validation in length-sorted batches padded per batch: every clip once, few shapes,
    and the loss and accuracy Keras reports equal those of the padded tensor."""
    from ser.models.lstm import _validation_dataset, build_model, length_sorted_batches

    lengths = np.random.default_rng(0).integers(5, 402, 203)
    batches = length_sorted_batches(lengths, batch_size=16, bucket_frames=100,
                                    max_frames=401)
    assert sorted(np.concatenate([idx for idx, _ in batches])) == list(range(203))
    assert {f for _, f in batches} <= {100, 200, 300, 400, 401}
    assert all(lengths[idx].max() <= f for idx, f in batches)
    assert sum(len(idx) != 16 for idx, _ in batches) == 1  # only the last batch is short

    seqs, y = toy_sequences(6, n=70)
    scaler = SequenceScaler.fit(seqs)
    X, std = scaler.transform(seqs), scaler.standardize(seqs)
    model = build_model(n_frames=None, n_coeffs=5, n_classes=3, units=8, dense_units=8,
                        dropout=0.0, learning_rate=0.01)
    lengths = np.array([len(s) for s in std])
    data = _validation_dataset(std, np.arange(70), y, lengths, n_coeffs=5, batch_size=16,
                               bucket_frames=4, max_frames=int(lengths.max()))
    np.testing.assert_allclose(model.evaluate(data, verbose=0),
                               model.evaluate(X, y, batch_size=16, verbose=0), rtol=1e-5)


def test_bucketed_lstm_learns_and_predicts_padded_input(tmp_path):
    """Trained on length buckets, the model reads the padded tensors evaluation uses."""
    from ser.models.lstm import sequence_lengths

    seqs, y = toy_sequences()
    scaler = SequenceScaler.fit(seqs[:36])
    X = scaler.transform(seqs)
    assert list(sequence_lengths(X)) == [len(s) for s in seqs]
    cfg = LSTM_CFG | {"bucket_frames": 4, "epochs": 30, "patience": 30}
    model, history = fit_lstm(X, y, n_classes=3, train_idx=np.arange(36),
                              val_idx=np.arange(36, 48), cfg=cfg, seed=0, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    proba = model.predict(X, verbose=0)
    assert (proba.argmax(axis=1) == y).mean() > 0.8  # separable toy task
    save_model(tmp_path / "m", model, {"format": "keras", "labels": ["a", "b", "c"],
                                       "feature_params": {}})
    loaded, _ = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(X, verbose=0), proba, atol=1e-6)


def test_bucketed_lstm_reads_unpadded_sequences_as_it_reads_padded_ones():
    """Training takes standardised unpadded sequences (half the memory of a padded tensor)
    and learns exactly what it learns from the padded tensor."""
    seqs, y = toy_sequences(2)
    scaler = SequenceScaler.fit(seqs[:36])
    cfg = LSTM_CFG | {"bucket_frames": 4}
    kw = {"n_classes": 3, "train_idx": np.arange(36), "val_idx": np.arange(36, 48),
          "cfg": cfg, "seed": 5, "verbose": 0}
    X = scaler.transform(seqs)
    padded = fit_lstm(X, y, **kw)[0].predict(X, verbose=0)
    unpadded = fit_lstm(scaler.standardize(seqs), y, **kw)[0].predict(X, verbose=0)
    np.testing.assert_allclose(unpadded, padded, atol=1e-6)
    lazy = fit_lstm(StandardizedSequences(seqs, scaler), y, **kw)[0].predict(X, verbose=0)
    np.testing.assert_allclose(lazy, padded, atol=1e-6)


def test_sequence_scaler_statistics_in_chunks_equal_the_whole():
    seqs, _ = toy_sequences(3, n=90)
    frames = np.concatenate(seqs).astype(np.float64)
    scaler = SequenceScaler.fit(seqs, chunk=7)
    np.testing.assert_allclose(scaler.mean, frames.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.std, frames.std(axis=0), rtol=1e-10)


def test_sequence_predictions_in_chunks_equal_one_call(tmp_path, monkeypatch):
    from ser.predict.inference import Predictor

    seqs, y = toy_sequences(4, n=70)
    scaler = SequenceScaler.fit(seqs)
    X = scaler.transform(seqs)
    model, _ = fit_lstm(X, y, n_classes=3, train_idx=np.arange(50), val_idx=np.arange(50, 70),
                        cfg=LSTM_CFG, seed=0, verbose=0)
    predictor = Predictor(tmp_path, model, {"format": "keras", "labels": ["a", "b", "c"],
                                            "scaler": scaler.to_dict()})
    monkeypatch.setattr(Predictor, "SEQUENCE_CHUNK", 32)
    np.testing.assert_array_equal(predictor.proba_from_sequences(seqs),
                                  model.predict(X, verbose=0).astype(np.float64))


def test_protocol_sequences_in_float16_are_kept_converted_not_copied(tmp_path):
    """LSTM training asks for float16 clips: the kept float32 clips are replaced, so memory
    holds one copy of each clip."""
    import pandas as pd

    from ser.splits.protocol_data import ProtocolData

    table = pd.DataFrame({"path": ["a.wav", "b.wav"], "split": ["train", "train"]})
    kept = {"a.wav": np.arange(6, dtype=np.float32).reshape(3, 2),
            "b.wav": np.full((2, 2), 0.1, np.float32)}
    data = ProtocolData(table, {}, tmp_path, "mfcc", ["toy"], _sequences=dict(kept))
    half = data.sequences(pd.Series(["b.wav", "a.wav"]), dtype=np.float16)
    assert [s.dtype for s in half] == [np.float16, np.float16]
    np.testing.assert_allclose(half[1], kept["a.wav"])
    assert data.sequences(["b.wav"], dtype=np.float16)[0] is half[0]  # no second copy
    assert all(s.dtype == np.float16 for s in data._sequences.values())
