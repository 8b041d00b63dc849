"""Speaker normalisation uses only the speaker's own rows, never labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ser.features.speaker_norm import (
    normalization_metadata,
    normalize_by_speaker,
    normalize_frame_by_speaker,
    speaker_statistics,
)


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(["s1", "s2", "s3"], 10)
    X = rng.normal(size=(30, 5)) * np.array([1, 2, 3, 4, 5]) + np.repeat([[0], [10], [-5]],
                                                                            10, axis=0)
    labels = rng.choice(["angry", "sad"], size=30)
    return X, groups, labels


def test_each_speaker_is_standardised_with_its_own_statistics():
    X, g, _ = _data()
    Z = normalize_by_speaker(X, g)
    for spk in np.unique(g):
        rows = g == spk
        np.testing.assert_allclose(Z[rows].mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(Z[rows].std(axis=0), 1, atol=1e-12)
        np.testing.assert_allclose(Z[rows], (X[rows] - X[rows].mean(0)) / X[rows].std(0))
    stats = speaker_statistics(X, g)
    np.testing.assert_allclose(stats["s2"][0], X[g == "s2"].mean(axis=0))


def test_other_speakers_and_labels_never_enter_a_speakers_statistics():
    X, g, labels = _data()
    Z = normalize_by_speaker(X, g)
    # change every row of the other speakers: s1's rows stay identical
    X2 = X.copy()
    X2[g != "s1"] = np.random.default_rng(9).normal(size=((g != "s1").sum(), 5)) * 100
    np.testing.assert_array_equal(normalize_by_speaker(X2, g)[g == "s1"], Z[g == "s1"])
    # drop the other speakers entirely: same rows
    np.testing.assert_array_equal(normalize_by_speaker(X[g == "s1"], g[g == "s1"]),
                                  Z[g == "s1"])
    # labels are no input; a table's label column may be permuted freely
    frame = pd.DataFrame(X, columns=list("abcde")).assign(speaker=g, emotion=labels)
    cols = list("abcde")
    a = normalize_frame_by_speaker(frame, cols)
    b = normalize_frame_by_speaker(frame.assign(emotion=np.random.default_rng(2)
                                                .permutation(labels)), cols)
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())


def test_constant_feature_is_centred_not_blown_up():
    X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    Z = normalize_by_speaker(X, ["a", "a", "a"])
    assert np.all(np.isfinite(Z)) and np.all(Z[:, 1] == 0)


def test_metadata_says_transductive():
    assert normalization_metadata("speaker")["transductive"] is True
    assert normalization_metadata("none") == {"speaker_norm": "none", "transductive": False}
    with pytest.raises(ValueError):
        normalization_metadata("global")
