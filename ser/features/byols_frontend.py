"""The BYOL-S front end: 16 kHz signal -> log-mel frames exactly as the original computes
them (see :mod:`ser.features.byols`, step 2).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SerError
from ser.features.blas_threads import single_threaded_blas
from ser.features.mfcc import FeatureError
from ser.features.mfcc_params import FeatureParams

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 64
F_MIN = 60.0
F_MAX = 7800.0
LOG_EPS = float(np.finfo(np.float32).eps)
#: Time downsampling of the encoder (three 2x2 max-pools).
TIME_STRIDE = 8
#: Front-end blocks of frames (bounds the STFT's temporaries on long clips).
_STFT_BLOCK = 4096


@functools.cache
def mel_filterbank() -> np.ndarray:
    """``(64, 513)`` float32 HTK mel filters 60-7,800 Hz, no normalisation (read-only)."""
    import librosa

    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN,
                             fmax=F_MAX, htk=True, norm=None, dtype=np.float32)
    fb.setflags(write=False)
    return fb


@functools.cache
def _window() -> np.ndarray:
    # torch.hann_window(400) (periodic); torch.stft centres it in the n_fft frame, but the
    # power spectrum does not depend on where the 400 non-zero samples sit in the frame.
    n = np.arange(WIN_LENGTH)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)
    w.setflags(write=False)
    return w


def n_frames_of(n_samples: int) -> int:
    """Frames of the centred STFT of ``n_samples`` samples."""
    return 1 + n_samples // HOP_LENGTH


def byols_logmel(y: np.ndarray) -> np.ndarray:
    """The original front end of a 16 kHz mono clip: ``(frames, 64)`` float32 log-mel.

    ``frames = 1 + len(y) // 160``; the clip needs at least ``N_FFT // 2 + 1`` samples
    (reflect padding) - :func:`prepare_byols_signal` refuses shorter ones.
    """
    y = np.asarray(y, np.float32)
    half = N_FFT // 2
    if y.ndim != 1 or y.shape[0] <= half:
        raise FeatureError(f"need a mono clip of more than {half} samples, got {y.shape}")
    padded = np.pad(y, half, mode="reflect")
    n = n_frames_of(y.shape[0])
    offset = (N_FFT - WIN_LENGTH) // 2
    fb, win = mel_filterbank(), _window()
    out = np.empty((n, N_MELS), np.float32)
    for start in range(0, n, _STFT_BLOCK):
        stop = min(n, start + _STFT_BLOCK)
        seg = padded[start * HOP_LENGTH + offset:(stop - 1) * HOP_LENGTH + offset + WIN_LENGTH]
        frames = np.lib.stride_tricks.as_strided(
            seg, shape=(stop - start, WIN_LENGTH), strides=(HOP_LENGTH * 4, 4),
            writeable=False)
        spec = np.fft.rfft(frames * win, n=N_FFT, axis=-1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        with single_threaded_blas():  # a small product: threads only cost (and vary)
            mel = power @ fb.T
        out[start:stop] = np.log(mel + np.float32(LOG_EPS))
    return out


def signal_params(params: Mapping[str, Any] | FeatureParams) -> FeatureParams:
    """The ``mfcc:`` decoding settings (trim, ``max_seconds``, pad) at 16 kHz."""
    fp = params if isinstance(params, FeatureParams) else FeatureParams.from_mapping(params)
    return FeatureParams.from_mapping(asdict(fp) | {"sample_rate": SAMPLE_RATE,
                                                    "fmin": 0.0, "fmax": None})


def prepare_byols_signal(y: np.ndarray, fp: FeatureParams) -> np.ndarray:
    """Trim / truncate / pad a 16 kHz clip like the other sets; refuse too short ones."""
    from ser.features.mfcc import prepare_signal

    y = prepare_signal(np.asarray(y, np.float32), params=fp)
    need = TIME_STRIDE * HOP_LENGTH
    if y.shape[0] < need:
        raise FeatureError(f"too short for the BYOL-S encoder ({y.shape[0] / SAMPLE_RATE:.3f} s "
                           f"after trimming; need {need / SAMPLE_RATE:.2f} s)")
    return y


def logmel_from_file(path: str | Path, *, params: Mapping[str, Any] | FeatureParams,
                     ) -> np.ndarray:
    """Decode ``path`` (16 kHz, at most ``max_seconds`` + margin) -> :func:`byols_logmel`."""
    from ser.audio import load_audio
    from ser.features.mfcc import read_seconds

    fp = signal_params(params)
    y, _ = load_audio(path, sr=SAMPLE_RATE, max_seconds=read_seconds(fp))
    try:
        return byols_logmel(prepare_byols_signal(y, fp))
    except FeatureError as exc:
        raise FeatureError(exc.reason, path) from None


def norm_stats(logmels: Sequence[np.ndarray]) -> tuple[float, float]:
    """Mean and std of every log-mel value of the given clips (float64 accumulation)."""
    count, total, squares = 0, 0.0, 0.0
    for m in logmels:
        m64 = np.asarray(m, np.float64)
        count += m64.size
        total += float(m64.sum())
        squares += float(np.square(m64).sum())
    if count == 0:
        raise SerError("no frames to compute statistics from")
    mean = total / count
    return mean, float(np.sqrt(max(squares / count - mean * mean, 0.0)))
