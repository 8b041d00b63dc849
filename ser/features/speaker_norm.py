"""Speaker normalisation: each speaker's features z-scored with that speaker's own statistics.

A voice's pitch, loudness and timbre shift every feature; standardising each
speaker's clips with the mean and standard deviation of *that speaker's*
clips removes much of it and leaves what varies within a speaker, which is
where emotion lives.

The statistics of a speaker use only that speaker's feature rows: no label
and no other speaker's clip ever enters them (``tests/unit/features/test_normalize.py``
proves it). Applied to test speakers this is **transductive**: their
statistics come from their own (unlabeled) test clips, so the model needs a
batch of a new speaker's recordings before it can classify one (:mod:`ser.predict.speaker_profile`
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

    Parameters
    ----------
    frame : pandas.DataFrame
        Feature rows with a speaker column.
    columns : list of str
        The feature columns to normalise.
    speaker_column : str
        The column naming each row's speaker.
    """
    key = frame[speaker_column].astype(str)
    if "corpus" in frame and frame["corpus"].nunique() > 1:
        key = frame["corpus"].astype(str) + ":" + key
    out = frame.copy()
    out[columns] = normalize_by_speaker(frame[columns].to_numpy(), key.to_numpy()
                                        ).astype(np.float32)
    return out


#: Pseudo-clips of the training speakers' typical within-speaker spread mixed into a new
#: speaker's standard deviation when it comes from a few enrolment clips
#: (:func:`shrunk_statistics`; ``benchmarks/enrolment_bench.py`` measures the effect).
STD_PRIOR_CLIPS = 10


def speaker_prior(X: np.ndarray, groups: np.ndarray | pd.Series) -> dict[str, Any]:
    """What the training speakers' statistics look like, for a new speaker's few clips.

    Returns (JSON-ready, one value per feature): ``mean_of_means`` and ``between_var``
    (mean and sample variance across speakers of the speaker means), ``within_var`` (mean
    across speakers of the within-speaker variance) and ``n_speakers``. Computed from the
    training side only; stored in the model card of speaker-normalised models.

    Parameters
    ----------
    X : numpy.ndarray
        Training features, one row per clip.
    groups : numpy.ndarray or pandas.Series
        Each row's speaker key.
    """
    stats = speaker_statistics(X, groups)
    means = np.array([m for m, _ in stats.values()])
    stds = np.array([s for _, s in stats.values()])
    between = means.var(axis=0, ddof=1) if len(means) > 1 else np.zeros(means.shape[1])
    return {"n_speakers": len(stats),
            "mean_of_means": [float(v) for v in means.mean(axis=0)],
            "between_var": [float(v) for v in between],
            "within_var": [float(v) for v in (stds ** 2).mean(axis=0)]}


def shrunk_statistics(mean: np.ndarray, std: np.ndarray, n: int, prior: dict[str, Any], *,
                      std_clips: int = STD_PRIOR_CLIPS, min_std: float = 1e-8,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A speaker's mean and std from ``n`` clips, shrunk toward the training speakers.

    The mean is the posterior mean of a Gaussian prior over speaker means (training
    speakers' ``mean_of_means``, ``between_var``) given ``n`` clips with the typical
    within-speaker variance: per feature, ``(n * mean + k * mean_of_means) / (n + k)`` with
    ``k = within_var / between_var``, so a feature on which speakers differ a lot keeps
    the clips' mean. The variance mixes in ``std_clips`` pseudo-clips of the training
    speakers' ``within_var``: ``(n * std**2 + std_clips * within_var) / (n + std_clips)``.
    With many clips both tend to the clips' own statistics. A result below ``min_std``
    becomes 1, as in :func:`speaker_statistics`.

    Parameters
    ----------
    mean, std : numpy.ndarray
        The speaker's clips' own per-feature statistics.
    n : int
        Number of clips they come from.
    prior : dict
        :func:`speaker_prior` of the training speakers (from the model card).
    std_clips : int
        Pseudo-clips of the training speakers' variance (see above).
    min_std : float
        Smallest std kept as is.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    mu0 = np.asarray(prior["mean_of_means"], dtype=np.float64)
    within = np.asarray(prior["within_var"], dtype=np.float64)
    between = np.asarray(prior["between_var"], dtype=np.float64)
    if not (mean.shape == std.shape == mu0.shape == within.shape == between.shape):
        raise ValueError(f"speaker prior has {len(mu0)} features, statistics {len(mean)}")
    if int(prior.get("n_speakers", 0)) > 1:
        k = np.divide(within, between, out=np.zeros_like(within), where=between > 0)
        mean = (n * mean + k * mu0) / (n + k)
    var = (n * std ** 2 + std_clips * within) / (n + std_clips)
    shrunk = np.sqrt(var)
    return mean, np.where(shrunk < min_std, 1.0, shrunk)


def normalization_metadata(mode: str) -> dict[str, Any]:
    """Fields to store with a run's metrics: what normalisation it used and whether it is
    transductive (test speakers' statistics from their own unlabeled test clips).

    Parameters
    ----------
    mode : str
        One of :data:`SPEAKER_NORM_MODES` (``"speaker"`` for ``*_spk`` sets, ``"none"``).
    """
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
