"""speaker_cv folds and their per-speaker metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ser.errors import ConfigError
from ser.evaluation.metrics import speaker_cv_metrics
from ser.splits.protocols import speaker_cv_split, speaker_folds


def _manifest(n_speakers: int = 6, per_class: int = 3) -> pd.DataFrame:
    rows = []
    for s in range(n_speakers):
        for emo in ("angry", "happy", "sad", "neutral"):
            for i in range(per_class):
                rows.append({"path": f"/x/{s:02d}_{emo}_{i}.wav", "corpus": "toy",
                             "speaker": f"{s:02d}", "emotion": emo})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_folds", [2, 3, None])
def test_folds_never_share_a_speaker(n_folds):
    m = speaker_cv_split(_manifest(), n_folds=n_folds, seed=1)
    k = m["fold"].nunique()
    assert k == (n_folds or 6)
    assert set(m["fold"]) == set(range(k))
    # every speaker sits in exactly one fold
    assert (m.groupby("speaker")["fold"].nunique() == 1).all()
    # so a fold's test speakers are never in its training side
    for f in range(k):
        assert not set(m.loc[m.fold == f, "speaker"]) & set(m.loc[m.fold != f, "speaker"])


def test_leave_one_speaker_out_and_determinism():
    m = _manifest()
    folds = speaker_folds(m["speaker"], m["emotion"], seed=3)
    assert (pd.Series(folds).groupby(m["speaker"]).nunique() == 1).all()
    assert len(set(folds)) == 6
    a = speaker_folds(m["speaker"], m["emotion"], n_folds=3, seed=5)
    b = speaker_folds(m["speaker"], m["emotion"], n_folds=3, seed=5)
    np.testing.assert_array_equal(a, b)


def test_folds_reject_bad_counts():
    m = _manifest(n_speakers=3)
    with pytest.raises(ConfigError, match="n_folds"):
        speaker_folds(m["speaker"], n_folds=4, seed=0)
    with pytest.raises(ConfigError, match="two speakers"):
        speaker_folds(["a"] * 5, seed=0)


def test_speaker_cv_metrics_pooled_and_per_speaker():
    preds = pd.DataFrame({
        "speaker": ["a"] * 4 + ["b"] * 4,
        "actual": ["x", "x", "y", "y"] * 2,
        # speaker a: all right (UAR 1); speaker b: x right, y wrong (UAR 0.5)
        "predicted": ["x", "x", "y", "y", "x", "x", "x", "x"],
    })
    summary, table = speaker_cv_metrics(preds)
    assert list(table["speaker"]) == ["a", "b"]
    assert list(table["uar"]) == [1.0, 0.5]
    assert summary["mean_speaker_uar"] == 0.75
    assert summary["sd_speaker_uar"] == pytest.approx(np.std([1.0, 0.5], ddof=1), abs=1e-4)
    # pooled: recall x = 4/4, recall y = 2/4
    assert summary["pooled_uar"] == 0.75
    assert summary["n_clips"] == 8 and summary["n_speakers"] == 2
