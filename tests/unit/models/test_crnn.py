"""The crnn sequence model, its augmentation and the frame-sequence features (fast, synthetic)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

from ser.features.logmel import fix_length, logmel_sequence, speaker_standardise  # noqa: E402
from ser.models.augment import augment_batch  # noqa: E402
from ser.models.crnn import CRNNConfig, fit_crnn, predict_proba  # noqa: E402
from ser.splits.protocols import validation_split  # noqa: E402

MFCC = {"sample_rate": 16000, "n_mfcc": 20, "n_fft": 512, "hop_length": 160, "n_mels": 32,
        "trim_db": None, "max_seconds": 2.0}
N_FRAMES, N_BANDS = 40, 16
SMALL = dict(n_frames=N_FRAMES, channels=16, n_blocks=2, dense_units=16, dropout=0.1,
             time_width=4, freq_width=2, batch_size=16, patience=50, min_epochs=0,
             monitor="val_loss")


def band_task(n_per_class: int = 30, n_classes: int = 3, seed: int = 0):
    """Sequences whose class is the band (low/mid/high) carrying extra energy."""
    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    y = np.repeat(np.arange(n_classes), n_per_class).astype(np.int32)
    X = rng.normal(size=(n, N_FRAMES, N_BANDS)).astype(np.float32)
    width = N_BANDS // n_classes
    for i, c in enumerate(y):
        X[i, :, c * width:(c + 1) * width] += 3.0
    speakers = np.tile(np.arange(6), n // 6 + 1)[:n]
    return X, y, speakers


def test_crnn_learns_separable_band_task():
    X, y, speakers = band_task()
    fit_idx, val_idx = validation_split(y, speakers, "speaker", share=0.2, seed=0)
    cfg = CRNNConfig(**SMALL, epochs=12, learning_rate=5e-3)
    model, _ = fit_crnn(X, y, n_classes=3, train_idx=fit_idx, val_idx=val_idx, cfg=cfg, seed=0)
    X_test, y_test, _ = band_task(n_per_class=20, seed=1)
    acc = float(np.mean(predict_proba(model, X_test).argmax(axis=1) == y_test))
    assert acc > 0.9


def test_augmentation_sees_fitting_clips_only():
    """The augmentation is called on the fitting clips only, never validation or test ones."""
    X, y, speakers = band_task(n_per_class=12)
    # Mark every clip with its index in the first value, to recognise it after augmentation.
    X[:, 0, 0] = 1000.0 * (np.arange(len(X)) + 1)
    train_all = np.flatnonzero(speakers != 5)      # speaker 5 is the test speaker
    fit_idx, val_idx = validation_split(y[train_all], speakers[train_all], "speaker",
                                        share=0.2, seed=0)
    val_speakers = set(speakers[train_all][val_idx])
    assert val_speakers and 5 not in val_speakers
    seen: list[np.ndarray] = []

    def spy(batch, rng):
        seen.append(np.rint(batch[:, 0, 0] / 1000.0).astype(int) - 1)
        return batch

    cfg = CRNNConfig(**SMALL, epochs=2)
    fit_crnn(X[train_all], y[train_all], n_classes=3, train_idx=fit_idx, val_idx=val_idx,
             cfg=cfg, seed=0, augment=spy)
    assert len(seen) >= 2                            # once per epoch
    fitting_clips = set(train_all[fit_idx])
    for clips in seen:
        assert set(clips) == fitting_clips
        assert not set(speakers[clips]) & (val_speakers | {5})


def test_fit_crnn_rejects_overlapping_indices():
    X, y, _ = band_task(n_per_class=4)
    with pytest.raises(ValueError, match="overlap"):
        fit_crnn(X, y, n_classes=3, train_idx=np.arange(8), val_idx=np.arange(6, 12),
                 cfg=CRNNConfig(**SMALL, epochs=1), seed=0)


def test_save_and_safe_mode_load_give_identical_predictions(tmp_path):
    import keras

    X, y, speakers = band_task(n_per_class=8)
    fit_idx, val_idx = validation_split(y, speakers, "speaker", share=0.2, seed=0)
    model, _ = fit_crnn(X, y, n_classes=3, train_idx=fit_idx, val_idx=val_idx,
                        cfg=CRNNConfig(**SMALL, epochs=1), seed=0)
    path = tmp_path / "crnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(predict_proba(loaded, X), predict_proba(model, X))


def test_augment_batch_is_deterministic_and_leaves_input_alone():
    X, _, _ = band_task(n_per_class=4)
    before = X.copy()
    a = augment_batch(X, np.random.default_rng(3), n_bands=8)
    b = augment_batch(X, np.random.default_rng(3), n_bands=8)
    c = augment_batch(X, np.random.default_rng(4), n_bands=8)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(a, b)
    assert a.shape == X.shape and a.dtype == np.float32
    assert not np.array_equal(a, c) and not np.array_equal(a, X)


def test_logmel_sequence_shape_and_decoding():
    sr = MFCC["sample_rate"]
    t = np.arange(sr) / sr
    y = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    seq = logmel_sequence(y, sr, params=MFCC, n_mels=24, deltas=2)
    assert seq.dtype == np.float32 and seq.shape == (1 + sr // 160, 72)
    assert np.all(np.isfinite(seq))
    # max_seconds truncates as for the MFCCs.
    long = np.tile(y, 3)
    assert logmel_sequence(long, sr, params=MFCC).shape[0] == 1 + 2 * sr // 160
    # The band holding 440 Hz is the loudest.
    import librosa

    freqs = librosa.mel_frequencies(n_mels=24 + 2, fmax=sr / 2)[1:-1]
    assert abs(freqs[seq[:, :24].mean(axis=0).argmax()] - 440) < 150


def test_logmel_rejects_wrong_rate():
    from ser.features.mfcc import FeatureError

    with pytest.raises(FeatureError, match="16000 Hz"):
        logmel_sequence(np.zeros(800, np.float32), 8000, params=MFCC)


def test_fix_length_crops_and_wraps():
    a = np.arange(10, dtype=np.float32).reshape(5, 2)
    out = fix_length([a, a[:2]], 4)
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out[0], a[:4])
    np.testing.assert_array_equal(out[1], np.concatenate([a[:2], a[:2]]))


def test_speaker_standardise_uses_own_clips_only():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(loc=i % 2 * 10, size=(20 + i, 3)) for i in range(6)]
    spk = ["a", "b"] * 3
    out = speaker_standardise(seqs, spk)
    for s in ("a", "b"):
        frames = np.concatenate([o for o, k in zip(out, spk, strict=True) if k == s])
        np.testing.assert_allclose(frames.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(frames.std(axis=0), 1, atol=1e-4)
    # Changing speaker b's clips leaves speaker a's output unchanged.
    seqs2 = [s if k == "a" else s * 5 + 3 for s, k in zip(seqs, spk, strict=True)]
    out2 = speaker_standardise(seqs2, spk)
    for o, o2, k in zip(out, out2, spk, strict=True):
        if k == "a":
            np.testing.assert_array_equal(o, o2)
