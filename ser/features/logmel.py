"""Frame-sequence features for sequence models: log-mel spectrograms (+ deltas).

The signal goes through the project's own decoding, exactly as for the MFCC
features (:mod:`ser.features.mfcc`), so sample rate, silence trimming and
``max_seconds`` mean the same thing for every feature set:

1. :func:`ser.audio.load_audio` decodes, mixes to mono and resamples to
   ``sample_rate`` (the ``mfcc:`` section of ``params.yaml``).
2. :func:`ser.features.mfcc.prepare_signal` trims / truncates / pads.
3. The power spectrogram (Hann window ``n_fft``, hop ``hop_length``, centred
   frames) is projected on the cached Slaney mel filterbank of
   :func:`ser.features.mfcc.analysis_kernels` (``n_mels`` bands between
   ``fmin`` and ``fmax``) and converted to dB with librosa's ``power_to_db``
   conventions (ref 1.0, amin 1e-10, top_db 80): these are the log-mel values
   the MFCCs are the DCT of.
4. With ``deltas`` 1 (2), Savitzky-Golay deltas (and delta-deltas) of width 9
   (``librosa.feature.delta``, ``mode="interp"``) are stacked after the
   ``n_mels`` bands.

A sequence has shape ``(frames, n_mels * (1 + deltas))``, float32. Any
``n_mels`` may be asked for; by default the ``mfcc:`` section's is used.

:func:`fix_length` crops/pads sequences to one number of frames, so a model
is compiled once and never sees masked padding. :func:`speaker_standardise`
is the optional per-speaker normalisation of sequences (no labels used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.audio import load_audio
from ser.features.mfcc import (
    DELTA_WIDTH,
    FeatureError,
    FeatureParams,
    analysis_kernels,
    checked_signal,
    read_seconds,
    single_threaded_blas,
)

#: dB floor below the clip's loudest bin (``power_to_db``'s ``top_db``).
TOP_DB = 80.0


def _log_mel(y: np.ndarray, fp: FeatureParams, n_mels: int) -> np.ndarray:
    """``(n_mels, frames)`` log-mel power in dB of a prepared signal."""
    import librosa

    window, mel_basis = analysis_kernels(fp.sample_rate, fp.n_fft, n_mels, fp.fmin, fp.fmax)
    spec = librosa.stft(y, n_fft=fp.n_fft, hop_length=fp.hop_length, window=window,
                        center=True, pad_mode="constant")
    power = np.abs(spec) ** 2
    with single_threaded_blas():
        mel = mel_basis @ power
    log_mel = 10.0 * np.log10(np.maximum(1e-10, mel))
    return np.maximum(log_mel, log_mel.max() - TOP_DB)


def logmel_sequence(y: np.ndarray, sr: int, *, params: Mapping[str, Any] | FeatureParams,
                    n_mels: int | None = None, deltas: int = 0) -> np.ndarray:
    """Log-mel sequence of a mono clip (see the module docstring).

    Parameters
    ----------
    y
        Mono samples at ``params.sample_rate``.
    sr
        Their rate; must equal ``params.sample_rate`` (never resampled here).
    params
        The ``mfcc:`` section (decoding: rate, n_fft, hop, trim, max_seconds).
    n_mels
        Mel bands (default: ``params.n_mels``).
    deltas
        0, 1 or 2: stack deltas / delta-deltas after the bands.

    Returns
    -------
    np.ndarray, shape (frames, n_mels * (1 + deltas)), float32

    Raises
    ------
    FeatureError
        Wrong rate, not mono, no samples (before or after trimming).
    """
    fp = FeatureParams.from_mapping(params)
    n_mels = fp.n_mels if n_mels is None else int(n_mels)
    if deltas not in (0, 1, 2):
        raise FeatureError(f"deltas must be 0, 1 or 2, got {deltas}")
    if n_mels < 1:
        raise FeatureError(f"n_mels must be positive, got {n_mels}")
    m = _log_mel(checked_signal(y, sr, fp), fp, n_mels)
    if deltas:
        import librosa

        n = m.shape[-1]
        width = min(DELTA_WIDTH, n if n % 2 else n - 1)
        blocks = [m]
        for order in range(1, deltas + 1):
            blocks.append(librosa.feature.delta(m, width=width, order=order, axis=-1,
                                                mode="interp") if width >= 3
                          else np.zeros_like(m))
        m = np.concatenate(blocks)
    return np.ascontiguousarray(m.T, dtype=np.float32)


def logmel_from_file(path: str | Path, *, params: Mapping[str, Any] | FeatureParams,
                     n_mels: int | None = None, deltas: int = 0) -> np.ndarray:
    """Load a recording (at most :func:`~ser.features.mfcc.read_seconds` of it) and
    return its :func:`logmel_sequence`.

    Raises
    ------
    AudioError
        If the file cannot be decoded.
    FeatureError
        If it decodes but yields no frames (the message names the file).
    """
    fp = FeatureParams.from_mapping(params)
    # At most max_seconds + the trim margin, as for the MFCCs (flat memory).
    y, sr = load_audio(path, sr=fp.sample_rate, max_seconds=read_seconds(fp))
    try:
        return logmel_sequence(y, sr, params=fp, n_mels=n_mels, deltas=deltas)
    except FeatureError as exc:
        raise FeatureError(exc.reason, path) from None


def fix_length(seqs: Sequence[np.ndarray], n_frames: int, *,
               pad: str = "edge") -> np.ndarray:
    """Crop (from the start) or pad sequences to ``n_frames``: ``(n, n_frames, coeffs)``.

    Parameters
    ----------
    seqs
        ``(frames, coeffs)`` arrays with equal ``coeffs``.
    n_frames
        Frames of every output sequence.
    pad
        ``"edge"``: repeat from the clip's start (wrap), so pooled statistics
        see speech, not an artificial constant; ``"min"``: each band's minimum
        of the clip (silence-like); ``"zeros"``.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    if not seqs:
        raise ValueError("no sequences")
    n_coeffs = seqs[0].shape[1]
    out = np.empty((len(seqs), n_frames, n_coeffs), np.float32)
    for i, seq in enumerate(seqs):
        seq = np.asarray(seq, np.float32)[:n_frames]
        if seq.ndim != 2 or seq.shape[1] != n_coeffs or seq.shape[0] == 0:
            raise ValueError(f"sequence {i} has shape {seq.shape}; expected (frames >= 1, "
                             f"{n_coeffs})")
        missing = n_frames - seq.shape[0]
        if missing:
            if pad == "edge":
                seq = np.pad(seq, ((0, missing), (0, 0)), mode="wrap")
            elif pad == "min":
                seq = np.concatenate([seq, np.repeat(seq.min(axis=0, keepdims=True),
                                                     missing, axis=0)])
            elif pad == "zeros":
                seq = np.pad(seq, ((0, missing), (0, 0)))
            else:
                raise ValueError(f"pad must be 'edge', 'min' or 'zeros', got {pad!r}")
        out[i] = seq
    return out


def frame_statistics(seqs: Sequence[np.ndarray], *, eps: float = 1e-6,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each coefficient over all frames of ``seqs``
    (float64); a standard deviation at or below ``eps`` (a constant coefficient) becomes 1.
    One speaker's statistics in :func:`speaker_standardise` and
    :mod:`ser.predict.speaker_profile`."""
    frames = np.concatenate([np.asarray(s, np.float64) for s in seqs])
    std = frames.std(axis=0)
    return frames.mean(axis=0), np.where(std > eps, std, 1.0)


def speaker_standardise(seqs: Sequence[np.ndarray], speakers: Sequence[Any], *,
                        eps: float = 1e-6) -> list[np.ndarray]:
    """Standardise each speaker's sequences with that speaker's own frame statistics.

    For every speaker, the mean and standard deviation of each coefficient are
    computed over all frames of all of that speaker's clips, and that
    speaker's frames are standardised with them. No label is used and no
    other speaker's clip enters a speaker's statistics; for a test speaker the
    statistics come from their unlabeled test clips (a *transductive* setting:
    report it as such, beside plain runs).

    Parameters
    ----------
    seqs
        ``(frames, coeffs)`` arrays (variable frames allowed).
    speakers
        Speaker key of each sequence (e.g. ``corpus:speaker``).

    Returns
    -------
    list of np.ndarray
        float32 sequences in the input order.
    """
    speakers = np.asarray([str(s) for s in speakers])
    if len(speakers) != len(seqs):
        raise ValueError(f"{len(seqs)} sequences but {len(speakers)} speaker keys")
    out: list[np.ndarray] = [np.empty(0, np.float32)] * len(seqs)
    for spk in np.unique(speakers):
        idx = np.flatnonzero(speakers == spk)
        mean, std = frame_statistics([seqs[i] for i in idx], eps=eps)
        for i in idx:
            out[i] = ((np.asarray(seqs[i], np.float64) - mean) / std).astype(np.float32)
    return out
