"""One recording's features, per feature set: what ``predict.py`` and ``ser evaluate`` compute
for a clip that is not in a feature table.

Each function takes mono samples ``y`` at ``fp.sample_rate`` (already resampled), the
decoding settings ``fp`` (:class:`ser.features.mfcc.FeatureParams`) and the model's
``feature_params`` (its card's fingerprint) and returns ``(sequence, summary)``, ``None``
for the part a set does not have. A feature set names its function in
:attr:`ser.features.sets.FeatureSetSpec.signal`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Features = tuple[np.ndarray | None, np.ndarray | None]


def mfcc(y: np.ndarray, sr: int, *, fp: Any, feature_params: dict[str, Any]) -> Features:
    """MFCC frames and their summary (:mod:`ser.features.mfcc`)."""
    from ser.features.mfcc import mfcc_sequence, mfcc_summary

    seq = mfcc_sequence(y, sr, params=fp)
    return seq, mfcc_summary(seq)


def summary_vector(y: np.ndarray, sr: int, *, fp: Any, feature_params: dict[str, Any]
                   ) -> Features:
    """A per-clip vector of :mod:`ser.features.summaries` (``mfcc_stats``, ``egemaps``, ...)."""
    from ser.features.summaries import signal_feature_vector

    return None, signal_feature_vector(feature_params["feature_set"], y, sr, params=fp)[0]


def logmel(y: np.ndarray, sr: int, *, fp: Any, feature_params: dict[str, Any]) -> Features:
    """Log-mel frames (:mod:`ser.features.logmel`) with the model's band count and deltas."""
    from ser.features.logmel import logmel_sequence

    return logmel_sequence(y, sr, params=fp, n_mels=feature_params["n_mels"],
                           deltas=feature_params["deltas"]), None


def byols(y: np.ndarray, sr: int, *, fp: Any, feature_params: dict[str, Any]) -> Features:
    """The BYOL-S embedding with the model's input standardisation (:mod:`ser.features.byols`)."""
    from ser.features.byols import embedding_from_signal

    return None, embedding_from_signal(y, fingerprint=feature_params)


def byols_mel(y: np.ndarray, sr: int, *, fp: Any, feature_params: dict[str, Any]) -> Features:
    """The BYOL-S front end's log-mel frames (for the fine-tuned encoder)."""
    from ser.features.byols import byols_logmel, prepare_byols_signal

    return byols_logmel(prepare_byols_signal(y, fp)), None
