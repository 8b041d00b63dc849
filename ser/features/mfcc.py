"""The MFCC feature definition: the single place that turns audio into features.

Training (``scripts/extract_features.py``) and prediction on new recordings
both call these functions, so a model always sees features computed the same
way. The definition is fixed by the ``mfcc:`` section of ``params.yaml``:

1. :func:`ser.audio.load_audio` decodes the file, mixes it to mono (float32)
   and resamples it to ``sample_rate`` (soxr, ``soxr_hq``). Only the first
   ``max_seconds + READ_MARGIN_SECONDS`` are decoded (all if ``max_seconds``
   is null), so a long recording costs no more memory than a short one.
2. If ``trim_db`` is set, leading and trailing silence quieter than
   ``trim_db`` below the clip's peak is cut (``librosa.effects.trim`` with its
   defaults: 2048-sample frames, hop 512, reference = the loudest frame).
3. If ``max_seconds`` is set, the clip is truncated to that many seconds;
   with ``pad: zeros`` shorter clips are zero-padded at the end to it, so all
   sequences then have the same number of frames.
4. MFCCs exactly as ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=..., n_fft=...,
   hop_length=..., n_mels=..., fmin=..., fmax=...)`` computes them (Hann
   window, centred frames with zero padding, power spectrogram, Slaney mel
   filterbank, ``power_to_db`` with ref 1.0 / amin 1e-10 / top_db 80 over the
   clip, orthonormal DCT-II, no liftering). The window and the mel filterbank
   are built once per parameter set and cached (:func:`analysis_kernels`)
   instead of on every call; the arithmetic is otherwise librosa's, in the
   same order and precision, so the result is bit-for-bit identical to
   ``librosa.feature.mfcc`` run with single-threaded BLAS (checked in
   ``tests/unit/features/test_features.py``). The mel projection always runs on one BLAS
   thread (:func:`single_threaded_blas`): OpenBLAS's multi-threaded product
   rounds differently, by up to ~1e-7 relative, so librosa's own output
   depends on the machine's thread count while ours does not.
5. With ``deltas: 1`` (``2``) the deltas (and delta-deltas) from
   ``librosa.feature.delta`` (Savitzky-Golay, width 9, ``mode="interp"``) are
   stacked after the MFCCs as extra coefficients. Sequences shorter than 9
   frames use the largest odd width that fits (at least 3); a sequence of 1
   or 2 frames gets zero deltas.

A sequence has shape ``(frames, coeffs)``, ``coeffs = n_mfcc * (1 + deltas)``,
ordered ``mfcc00..mfccNN``, then ``mfcc00_d1..``, then ``mfcc00_d2..``
(:func:`coefficient_names`).

:func:`mfcc_summary` reduces a sequence to a fixed-length vector: for every
coefficient, in this order, its mean, standard deviation (population,
``ddof=0``), median, 10th percentile, 90th percentile and inter-quartile range
(75th - 25th percentile); percentiles interpolate linearly between order
statistics (numpy's default ``linear`` method), statistics are
computed in float64 and stored as float32. :func:`summary_names` gives the
matching column names, ``feat_<coefficient>_<statistic>``, e.g.
``feat_mfcc00_mean``.

:func:`feature_params_fingerprint` is the complete, JSON-serialisable
description of the definition (the parameters above plus the fixed choices),
stored with the features and with every trained model;
:func:`check_feature_params` compares a stored fingerprint with the current
parameters.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ser.audio import load_audio
from ser.errors import ConfigError, SerError
from ser.features.blas_threads import single_threaded_blas
from ser.features.mfcc_params import FeatureParams

#: Bump when the code changes the features that the same parameters produce.
DEFINITION_VERSION = 1

#: Summary statistics, in the order they appear per coefficient.
SUMMARY_STATS: tuple[str, ...] = ("mean", "std", "median", "p10", "p90", "iqr")

#: Percentiles computed for the summary (all from one sort).
_PERCENTILES = (10.0, 25.0, 50.0, 75.0, 90.0)

#: Prefix of every feature column of ``summary.parquet``.
FEATURE_PREFIX = "feat_"

#: Width of the delta window (``librosa.feature.delta``'s default).
DELTA_WIDTH = 9

#: The fixed parts of the definition (librosa's defaults, spelled out).
_FIXED_DEFINITION: dict[str, Any] = {
    "window": "hann",
    "center": True,
    "pad_mode": "constant",
    "power": 2.0,
    "mel_htk": False,
    "mel_norm": "slaney",
    "db_ref": 1.0,
    "db_amin": 1e-10,
    "db_top_db": 80.0,
    "dct_type": 2,
    "dct_norm": "ortho",
    "lifter": 0,
    "trim_frame_length": 2048,
    "trim_hop_length": 512,
    "delta_width": DELTA_WIDTH,
    "summary_stats": list(SUMMARY_STATS),
}


class FeatureError(SerError):
    """Audio that decodes but cannot yield features (e.g. no samples)."""

    def __init__(self, reason: str, path: str | Path | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(reason if path is None else f"{path}: {reason}")


def feature_params_fingerprint(params: Mapping[str, Any] | FeatureParams) -> dict[str, Any]:
    """Return the exact, JSON-serialisable definition of the features.

    Parameters
    ----------
    params
        Anything :meth:`FeatureParams.from_mapping` accepts.

    Returns
    -------
    dict
        ``feature_set``, ``definition_version``, every parameter of
        :class:`FeatureParams` (numbers normalised: ``trim_db: 30`` becomes
        ``30.0``), ``n_coeffs`` and the fixed choices (window, dB floor, DCT,
        summary statistics, ...). Excludes settings that do not change the
        features, such as ``workers``. Equal dicts mean equal features.
    """
    fp = FeatureParams.from_mapping(params)
    return {
        "feature_set": "mfcc",
        "definition_version": DEFINITION_VERSION,
        **asdict(fp),
        "n_coeffs": fp.n_coeffs,
        **_FIXED_DEFINITION,
    }


def check_feature_params(stored: Mapping[str, Any],
                         params: Mapping[str, Any] | FeatureParams) -> None:
    """Check that features stored with ``stored`` match ``params``.

    Parameters
    ----------
    stored
        A fingerprint read back from a model or from
        :func:`ser.features.read_feature_params`.
    params
        The parameters new features would be computed with.

    Raises
    ------
    ConfigError
        Naming every differing key, if the definitions differ.
    """
    current = feature_params_fingerprint(params)
    keys = sorted(set(stored) | set(current))
    diffs = [f"{k}: stored {stored.get(k)!r}, now {current.get(k)!r}"
             for k in keys if stored.get(k) != current.get(k)]
    if diffs:
        raise ConfigError("MFCC feature definition differs from the one the model/features "
                          "were made with (" + "; ".join(diffs) + "); re-extract features "
                          "and retrain, or restore the mfcc: parameters")


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, ``htk=False``)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)),
                    (200.0 / 3) * mel)


def empty_mel_band(params: FeatureParams, n_mels: int) -> int | None:
    """The first of ``n_mels`` Slaney mel bands (between ``fmin`` and ``fmax``) that holds
    no FFT bin of ``n_fft`` (its filter would be all zeros), or ``None``; the same test as
    librosa's "Empty filters detected" warning, without importing librosa."""
    fmax = params.sample_rate / 2 if params.fmax is None else params.fmax
    edges = _mel_to_hz(np.linspace(_hz_to_mel(params.fmin), _hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, params.sample_rate / 2, 1 + params.n_fft // 2)
    for band in range(n_mels):
        if not np.any((bins > edges[band]) & (bins < edges[band + 2])):
            return band
    return None


@functools.lru_cache(maxsize=16)
def analysis_kernels(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                     fmax: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the cached analysis window and mel filterbank for one parameter set.

    Parameters
    ----------
    sample_rate, n_fft, n_mels, fmin, fmax
        As in ``librosa.filters.mel`` (``fmax=None``: ``sample_rate / 2``).

    Returns
    -------
    window : np.ndarray, shape (n_fft,), float64
        ``librosa.filters.get_window("hann", n_fft, fftbins=True)``.
    mel_basis : np.ndarray, shape (n_mels, 1 + n_fft // 2), float32
        ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels,
        fmin=fmin, fmax=fmax)`` (Slaney scale and normalisation).

    Both arrays are read-only: they are shared by every later call.
    """
    import librosa

    window = np.asarray(librosa.filters.get_window("hann", n_fft, fftbins=True))
    window = librosa.util.pad_center(window, size=n_fft)
    mel_basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels,
                                    fmin=fmin, fmax=fmax)
    window.setflags(write=False)
    mel_basis.setflags(write=False)
    return window, mel_basis


def _kernels(fp: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    return analysis_kernels(fp.sample_rate, fp.n_fft, fp.n_mels, fp.fmin, fp.fmax)


def prepare_signal(y: np.ndarray, *, params: Mapping[str, Any] | FeatureParams) -> np.ndarray:
    """Apply the trim / truncate / pad steps of the definition to a mono signal.

    Parameters
    ----------
    y
        Mono float32 samples at ``params.sample_rate``.
    params
        Anything :meth:`FeatureParams.from_mapping` accepts.

    Returns
    -------
    np.ndarray
        The signal the MFCCs are computed from (float32, 1-D).
    """
    fp = FeatureParams.from_mapping(params)
    if fp.trim_db is not None:
        import librosa

        y, _ = librosa.effects.trim(y, top_db=fp.trim_db)
    limit = fp.max_samples
    if limit is not None:
        if y.shape[0] > limit:
            y = y[:limit]
        elif fp.pad == "zeros" and y.shape[0] < limit:
            y = np.pad(y, (0, limit - y.shape[0]))
    return y


#: Largest work buffer (bytes) kept for reuse between calls, per thread.
_SCRATCH_MAX_BYTES = 64 * 1024 * 1024
_scratch = threading.local()


def _work_array(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """An uninitialised array backed by a per-thread buffer reused across calls.

    The STFT's temporaries are megabytes per clip; glibc serves such sizes with
    fresh ``mmap`` pages, so allocating them anew costs ~800 page faults per
    clip (about as much CPU as the FFT). Reusing one grow-only buffer per
    thread avoids that; callers never let these arrays escape.
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    if nbytes > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dt)
    buffer = getattr(_scratch, name, None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(max(nbytes, 1 << 20), np.uint8)
        setattr(_scratch, name, buffer)
    return buffer[:nbytes].view(dt).reshape(shape)


def _mfcc(y: np.ndarray, fp: FeatureParams) -> np.ndarray:
    """``librosa.feature.mfcc`` for 1-D float32 ``y`` with cached kernels: (n_mfcc, t)."""
    import scipy.fft

    window, mel_basis = _kernels(fp)
    n_fft, hop, half = fp.n_fft, fp.hop_length, fp.n_fft // 2
    # librosa.stft(center=True, pad_mode="constant"): frames centred on
    # y[t * hop], zero-padded by n_fft // 2 on both sides; the window is
    # float64, so the FFT runs in float64 and is then stored as complex64.
    # Same operations as librosa, written into reused buffers.
    n = y.shape[0]
    padded = _work_array("padded", (n + 2 * half,), np.float32)
    padded[:half] = 0.0
    padded[half:half + n] = y
    padded[half + n:] = 0.0
    n_frames = 1 + (padded.shape[0] - n_fft) // hop
    n_bins = 1 + n_fft // 2
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, n_fft), strides=(hop * padded.strides[0], padded.strides[0]),
        writeable=False)
    windowed = np.multiply(frames, window, out=_work_array("windowed", frames.shape, np.float64))
    spec128 = np.fft.rfft(windowed, axis=-1,
                          out=_work_array("spec128", (n_frames, n_bins), np.complex128))
    spec = _work_array("spec", (n_frames, n_bins), np.complex64)  # (t, f)
    spec[...] = spec128
    power = np.abs(spec, out=_work_array("power", (n_frames, n_bins), np.float32))
    np.square(power, out=power)  # what ``** 2.0`` computes
    # librosa's einsum("...ft,mf->...mt", S, mel_basis, optimize=True) is this
    # one BLAS product, with S in the same memory layout (f, t) Fortran order.
    with single_threaded_blas():
        mel = np.dot(mel_basis, power.T)
    # librosa.power_to_db(mel) with its defaults ref=1.0 (subtracts 0 dB),
    # amin=1e-10, top_db=80, written out (its wrapper costs more than this).
    log_mel = 10.0 * np.log10(np.maximum(1e-10, mel))
    log_mel = np.maximum(log_mel, log_mel.max() - 80.0)
    return scipy.fft.dct(log_mel, axis=-2, type=2, norm="ortho")[: fp.n_mfcc]


def _deltas(m: np.ndarray, order: int) -> np.ndarray:
    import librosa

    n = m.shape[-1]
    width = min(DELTA_WIDTH, n if n % 2 else n - 1)
    if width < 3:
        return np.zeros_like(m)
    return librosa.feature.delta(m, width=width, order=order, axis=-1, mode="interp")


def checked_signal(y: np.ndarray, sr: int, fp: FeatureParams) -> np.ndarray:
    """Check a clip against the feature definition, then trim / truncate / pad it.

    Shared by every frame-level feature (MFCC, log-mel) so they refuse the same
    inputs with the same messages.

    Raises
    ------
    FeatureError
        ``sr`` differs from ``fp.sample_rate``, ``y`` is not 1-D, or it holds no
        samples before or after trimming.
    """
    if int(sr) != fp.sample_rate:
        raise FeatureError(f"audio is at {sr} Hz but the features are defined at "
                           f"{fp.sample_rate} Hz; load it with sr={fp.sample_rate}")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise FeatureError(f"expected mono audio (1-D), got shape {y.shape}")
    if y.shape[0] == 0:
        raise FeatureError("holds no audio samples")
    y = prepare_signal(y, params=fp)
    if y.shape[0] == 0:
        raise FeatureError("no samples left after trimming")
    return y


def mfcc_sequence(y: np.ndarray, sr: int, *,
                  params: Mapping[str, Any] | FeatureParams) -> np.ndarray:
    """Compute the MFCC sequence of a clip (see the module docstring).

    Parameters
    ----------
    y
        Mono samples, already at ``params.sample_rate`` (cast to float32).
    sr
        Their sample rate; must equal ``params.sample_rate`` (the loader
        resamples, this function never does).
    params
        The ``mfcc:`` section (or anything :meth:`FeatureParams.from_mapping`
        accepts).

    Returns
    -------
    np.ndarray, shape (frames, n_mfcc * (1 + deltas)), float32
        One row per frame, C-contiguous.

    Raises
    ------
    FeatureError
        If ``sr`` is not ``params.sample_rate``, ``y`` is not 1-D, or it holds
        no samples.
    """
    fp = FeatureParams.from_mapping(params)
    m = _mfcc(checked_signal(y, sr, fp), fp)
    if fp.deltas:
        m = np.concatenate([m] + [_deltas(m, order) for order in range(1, fp.deltas + 1)])
    return np.ascontiguousarray(m.T, dtype=np.float32)


def mfcc_summary(seq: np.ndarray) -> np.ndarray:
    """Reduce a sequence to robust per-coefficient statistics.

    Parameters
    ----------
    seq
        ``(frames, coeffs)`` as returned by :func:`mfcc_sequence`.

    Returns
    -------
    np.ndarray, shape (coeffs * 6,), float32
        For each coefficient in turn: mean, std (ddof=0), median, 10th and
        90th percentile, IQR (:data:`SUMMARY_STATS`); names from
        :func:`summary_names`.
    """
    x = np.asarray(seq, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a (frames >= 1, coeffs) sequence, got shape {x.shape}")
    # Percentiles by linear interpolation between order statistics (numpy's
    # default method), from one sort: 3x faster than np.percentile here.
    x = np.sort(x, axis=0)
    pos = (x.shape[0] - 1) * np.asarray(_PERCENTILES) / 100.0
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, x.shape[0] - 1)
    p10, p25, p50, p75, p90 = x[lo] + (x[hi] - x[lo]) * (pos - lo)[:, None]
    stats = np.stack([x.mean(axis=0), x.std(axis=0), p50, p10, p90, p75 - p25], axis=1)
    return stats.astype(np.float32).ravel()


def coefficient_names(n_coeffs: int, *, deltas: int = 0) -> list[str]:
    """Names of a sequence's coefficients: ``mfcc00``, ..., ``mfcc00_d1``, ...

    Parameters
    ----------
    n_coeffs
        Coefficients per frame, ``n_mfcc * (1 + deltas)``.
    deltas
        0, 1 or 2, as in the parameters.
    """
    blocks = deltas + 1
    if n_coeffs < 1 or n_coeffs % blocks:
        raise ValueError(f"{n_coeffs} coefficients do not split into {blocks} equal blocks")
    n_mfcc = n_coeffs // blocks
    width = max(2, len(str(n_mfcc - 1)))
    base = [f"mfcc{i:0{width}d}" for i in range(n_mfcc)]
    return base + [f"{name}_d{order}" for order in range(1, blocks) for name in base]


def summary_names(n_coeffs: int, *, deltas: int = 0) -> list[str]:
    """Column names of :func:`mfcc_summary`'s vector, e.g. ``feat_mfcc00_mean``.

    Parameters
    ----------
    n_coeffs
        Coefficients per frame of the summarised sequence.
    deltas
        0, 1 or 2: how many delta blocks the coefficients hold (names only).
    """
    return [f"{FEATURE_PREFIX}{coef}_{stat}"
            for coef in coefficient_names(n_coeffs, deltas=deltas) for stat in SUMMARY_STATS]


#: Seconds decoded beyond ``max_seconds``, so the leading silence that
#: ``trim_db`` cuts can still be cut: a clip up to ``max_seconds + READ_MARGIN_SECONDS``
#: long is decoded whole (features bit-identical to decoding everything); a
#: longer one is read only that far, so memory is flat in the clip's length.
READ_MARGIN_SECONDS = 2.0

#: Default of ``mfcc.min_rms_db``: clips whose level (DC removed) is below this
#: many dB re full scale are skipped as silent. It selects clips and does not
#: change any feature value, so it is not part of the fingerprint.
DEFAULT_MIN_RMS_DB = -60.0


def read_seconds(params: Mapping[str, Any] | FeatureParams) -> float | None:
    """How many seconds of a file feature extraction decodes (``None``: all of it)."""
    fp = FeatureParams.from_mapping(params)
    return None if fp.max_seconds is None else fp.max_seconds + READ_MARGIN_SECONDS


def file_features(path: str | Path, *, params: Mapping[str, Any] | FeatureParams,
                  min_rms_db: float | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Like :func:`features_from_file`, also returning the clip's duration in seconds.

    At most :func:`read_seconds` of audio is decoded. With ``min_rms_db`` set,
    a clip whose level (DC removed, :func:`ser.audio.rms_db`) is below it
    raises :class:`FeatureError` ("silent"), so extraction skips it with that
    reason.
    """
    fp = FeatureParams.from_mapping(params)
    limit = read_seconds(fp)
    y, sr = load_audio(path, sr=fp.sample_rate, max_seconds=limit)
    duration = y.shape[0] / sr
    if limit is not None and duration >= limit:  # cut: take the length from the header
        from ser.audio import audio_info

        info = audio_info(path)
        duration = max(duration, info.frames / info.samplerate)
    if min_rms_db is not None:
        from ser.audio import rms_db

        level = rms_db(y)
        if level < min_rms_db:
            shown = "-inf" if level == float("-inf") else f"{level:.1f}"
            raise FeatureError(f"silent or near-silent clip (level {shown} dBFS, below "
                               f"mfcc.min_rms_db {min_rms_db:g}); skipped", path)
    try:
        seq = mfcc_sequence(y, sr, params=fp)
    except FeatureError as exc:
        raise FeatureError(exc.reason, path) from None
    return seq, mfcc_summary(seq), duration


def features_from_file(path: str | Path, *, params: Mapping[str, Any] | FeatureParams,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Load a recording and compute its features.

    Parameters
    ----------
    path
        Any audio file :func:`ser.audio.load_audio` reads.
    params
        The ``mfcc:`` section (or a stored fingerprint).

    Returns
    -------
    seq : np.ndarray, shape (frames, coeffs), float32
        :func:`mfcc_sequence` of the resampled audio.
    summary : np.ndarray, shape (coeffs * 6,), float32
        :func:`mfcc_summary` of ``seq``.

    Raises
    ------
    AudioError
        If the file is missing, empty, corrupt or not audio.
    FeatureError
        If it decodes but yields no features.
    """
    seq, summary, _ = file_features(path, params=params)
    return seq, summary
