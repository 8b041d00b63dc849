"""Speaker normalisation: each speaker's features z-scored with that speaker's own statistics.

A voice's pitch, loudness and timbre shift every feature; standardising each
speaker's clips with the mean and standard deviation of *that speaker's*
clips removes much of it and leaves what varies within a speaker, which is
where emotion lives.

The statistics of a speaker use only that speaker's feature rows: no label
and no other speaker's clip ever enters them (``tests/test_normalize.py``
proves it). Applied to test speakers this is **transductive**: their
statistics come from their own (unlabeled) test clips, so the model needs a
batch of a new speaker's recordings before it can classify one (:mod:`ser.speaker`
computes them for predict.py, ``ser timeline`` and ``ser evaluate``). Every result
produced with it must say so: :func:`normalization_metadata` gives the fields
to store with metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Value of ``speaker_norm`` for plain runs and for speaker-normalised ones.
SPEAKER_NORM_MODES: tuple[str, ...] = ("none", "speaker")


def speaker_statistics(X: np.ndarray, groups: np.ndarray | pd.Series, *,
                       min_std: float = 1e-8) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-speaker feature mean and standard deviation (``ddof=0``).

    Parameters
    ----------
    X
        Features, ``(clips, features)``.
    groups
        Speaker key per clip.
    min_std
        Standard deviations below this (a constant feature) become 1, so the
        feature is centred but not blown up.

    Returns
    -------
    dict
        ``speaker -> (mean, std)``, each of shape ``(features,)``, float64.
    """
    X = np.asarray(X, dtype=np.float64)
    g = np.asarray(groups).astype(str)
    if X.ndim != 2 or len(g) != X.shape[0]:
        raise ValueError(f"expected X (clips, features) and one group per clip, got "
                         f"{X.shape} and {len(g)}")
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for spk in np.unique(g):
        rows = X[g == spk]
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        std = np.where(std < min_std, 1.0, std)
        stats[str(spk)] = (mean, std)
    return stats


def normalize_by_speaker(X: np.ndarray, groups: np.ndarray | pd.Series, *,
                         min_std: float = 1e-8) -> np.ndarray:
    """Z-score every speaker's rows with that speaker's own mean and std.

    Parameters
    ----------
    X
        Features, ``(clips, features)``; rows of any number of speakers.
    groups
        Speaker key per clip (``corpus:speaker`` when pooling corpora).
    min_std
        See :func:`speaker_statistics`.

    Returns
    -------
    np.ndarray, float64, same shape as ``X``
        Row ``i`` is ``(X[i] - mean_s) / std_s`` for its speaker ``s``.
        Labels are not an input, so they cannot leak into the statistics; a
        speaker's rows depend on that speaker's rows only.
    """
    X = np.asarray(X, dtype=np.float64)
    g = np.asarray(groups).astype(str)
    out = np.empty_like(X)
    for spk, (mean, std) in speaker_statistics(X, g, min_std=min_std).items():
        rows = g == spk
        out[rows] = (X[rows] - mean) / std
    return out


def normalize_frame_by_speaker(frame: pd.DataFrame, columns: list[str], *,
                               speaker_column: str = "speaker") -> pd.DataFrame:
    """:func:`normalize_by_speaker` on a table's ``columns``; other columns untouched.

    Speakers are keyed ``corpus:speaker`` when a ``corpus`` column with more
    than one corpus is present.
    """
    key = frame[speaker_column].astype(str)
    if "corpus" in frame and frame["corpus"].nunique() > 1:
        key = frame["corpus"].astype(str) + ":" + key
    out = frame.copy()
    out[columns] = normalize_by_speaker(frame[columns].to_numpy(), key.to_numpy()
                                        ).astype(np.float32)
    return out


def normalization_metadata(mode: str) -> dict[str, Any]:
    """Fields to store with a run's metrics: what normalisation it used and whether it is
    transductive (test speakers' statistics from their own unlabeled test clips)."""
    if mode not in SPEAKER_NORM_MODES:
        raise ValueError(f"speaker_norm must be one of {', '.join(SPEAKER_NORM_MODES)}, "
                         f"got {mode!r}")
    if mode == "none":
        return {"speaker_norm": "none", "transductive": False}
    return {
        "speaker_norm": "speaker",
        "transductive": True,
        "speaker_norm_note": (
            "each speaker's features z-scored with that speaker's own mean/std; for test "
            "speakers computed from their unlabeled test clips (transductive: needs a batch "
            "of a new speaker's recordings)"),
    }
