"""Frozen BYOL-S inference in NumPy: the ``byols`` embeddings without JAX or Keras.

The feature set's embeddings (:mod:`ser.features.byols`, step 4) are computed here, one
clip at a time, with the same arithmetic as the original PyTorch model: three blocks
``conv 3x3 (zero padding) -> batch norm (running statistics, folded into the
convolution) -> ReLU -> max-pool 2x2``
on the (time, mel) image, frames of 8 mel x 64 channels (mel-major), two ``Dense(512)``
ReLU layers, then mean + max over time.

Why NumPy rather than the Keras model of :mod:`ser.features.byols_encoder` (which
fine-tuning, :mod:`ser.models.byols_ft`, still uses): importing JAX and Keras costs
about 360 MB before the first clip, which kept extraction and ``predict.py`` above
0.5 GB peak memory; here the whole process stays near the other feature sets'.

Each clip is encoded alone, so there is no padding to mask and a clip's embedding
never depends on which clips are encoded with it (shards merge to exactly one job's
output). BLAS runs on one thread (:func:`ser.features.blas_threads.single_threaded_blas`):
its multi-threaded ``sgemm`` rounds differently, which would tie the bytes to the
machine. Memory is flat in the clip's length: convolutions are computed
:data:`CONV_ROWS` time steps at a time, and clips longer than :data:`CHUNK_FRAMES`
frames go through the network in overlapping windows (:data:`CONTEXT_FRAMES` of
context each side, beyond the encoder's receptive field of 22 frames), whose kept
frames are exactly those of the whole clip.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ser.features.blas_threads import single_threaded_blas
from ser.features.byols_frontend import N_MELS, TIME_STRIDE
from ser.features.byols_weights import check_architecture, load_weights
from ser.features.mfcc import FeatureError

EMBEDDING_DIM = 512
#: Longer clips are encoded in windows of this many frames (20.48 s) ...
CHUNK_FRAMES = 2048
#: ... with this much context on each side (a multiple of the 8-frame pooling stride).
CONTEXT_FRAMES = 64
#: Time steps per im2col block of a convolution (at most ~5 MB of columns).
CONV_ROWS = 64
BN_EPS = 1e-5
#: (conv, batch-norm) indices of the three blocks in the original ``features`` list.
BLOCKS = ((0, 1), (4, 5), (8, 9))


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3x3 convolution with zero padding of a ``(time, mel, in)`` map.

    ``kernel`` is ``(9 * in, out)``, rows ordered (time offset, mel offset, in channel).
    """
    steps, mels, channels = x.shape
    padded = np.zeros((steps + 2, mels + 2, channels), np.float32)
    padded[1:-1, 1:-1] = x
    out = np.empty((steps, mels, kernel.shape[1]), np.float32)
    for t0 in range(0, steps, CONV_ROWS):
        t1 = min(steps, t0 + CONV_ROWS)
        # (t, mel, in, dt, dm) views -> (t * mel, dt * dm * in) columns
        win = sliding_window_view(padded[t0:t1 + 2], (3, 3), axis=(0, 1))
        cols = np.ascontiguousarray(win.transpose(0, 1, 3, 4, 2)).reshape(-1, kernel.shape[0])
        out[t0:t1] = (cols @ kernel).reshape(t1 - t0, mels, -1)
    out += bias
    return out


def _pool2(x: np.ndarray) -> np.ndarray:
    """2x2 max-pooling of a ``(time, mel, channels)`` map (an odd last row is dropped)."""
    steps = x.shape[0] - x.shape[0] % 2
    rows = np.maximum(x[0:steps:2], x[1:steps:2])
    return np.maximum(rows[:, 0::2], rows[:, 1::2])


class Encoder:
    """Frozen BYOL-S (AudioNTT2020) inference on standardised log-mel clips.

    Parameters
    ----------
    arrays
        The state dict (:func:`ser.features.byols_weights.load_weights`; torch names and
        layouts), checked against the architecture.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        arrays = check_architecture(arrays, "weights")
        self.blocks = []
        for conv, bn in BLOCKS:
            w = arrays[f"features.{conv}.weight"]  # (out, in, mel, time)
            kernel = np.ascontiguousarray(np.transpose(w, (3, 2, 1, 0)).reshape(-1, w.shape[0]))
            # batch norm (running statistics) folded into the convolution, in float64
            scale = (arrays[f"features.{bn}.weight"].astype(np.float64)
                     / np.sqrt(arrays[f"features.{bn}.running_var"].astype(np.float64) + BN_EPS))
            bias = ((arrays[f"features.{conv}.bias"] - arrays[f"features.{bn}.running_mean"])
                    * scale + arrays[f"features.{bn}.bias"])
            self.blocks.append(((kernel * scale).astype(np.float32), bias.astype(np.float32)))
        self.dense = [(np.ascontiguousarray(arrays[f"{key}.weight"].T), arrays[f"{key}.bias"])
                      for key in ("fc.0", "fc.3")]

    def frame_outputs(self, x: np.ndarray) -> np.ndarray:
        """``(frames // 8, 512)`` last-layer outputs of one standardised ``(frames, 64)``
        log-mel clip, computed whole (long clips are windowed by :meth:`embed`)."""
        h = np.asarray(x, np.float32)[:, :, None]
        with single_threaded_blas():
            for kernel, bias in self.blocks:
                h = _conv_same(h, kernel, bias)
                np.maximum(h, 0, out=h)
                h = _pool2(h)
            h = h.reshape(h.shape[0], -1)  # mel-major: mel * 64 + channel, as the original
            for weight, bias in self.dense:
                h = h @ weight
                h += bias
                np.maximum(h, 0, out=h)
        return h

    def _pooled(self, x: np.ndarray) -> np.ndarray:
        """Mean + max over time of a standardised clip of any length; long clips go
        through the network in overlapping windows and are pooled as they come (memory
        flat in the clip's length)."""
        if x.shape[0] <= CHUNK_FRAMES:
            frames = self.frame_outputs(x)
            return frames.mean(axis=0) + frames.max(axis=0)
        n_out = x.shape[0] // TIME_STRIDE
        total = np.zeros(EMBEDDING_DIM, np.float64)
        peak = np.full(EMBEDDING_DIM, -np.inf, np.float32)
        for start in range(0, n_out * TIME_STRIDE, CHUNK_FRAMES):
            lo = max(0, start - CONTEXT_FRAMES)
            hi = min(x.shape[0], start + CHUNK_FRAMES + CONTEXT_FRAMES)
            out = self.frame_outputs(x[lo:hi])
            first = (start - lo) // TIME_STRIDE
            last = min(n_out, (start + CHUNK_FRAMES) // TIME_STRIDE) - lo // TIME_STRIDE
            total += out[first:last].sum(axis=0, dtype=np.float64)
            peak = np.maximum(peak, out[first:last].max(axis=0))
        return (total / n_out).astype(np.float32) + peak

    def embed(self, logmels: Sequence[np.ndarray], *, norm_mean: float, norm_std: float,
              ) -> np.ndarray:
        """``(n, 512)`` embeddings (mean + max over time of the last layer) of log-mel
        clips (:func:`ser.features.byols_frontend.byols_logmel` outputs, each at least
        8 frames), standardised as ``(x - norm_mean) / norm_std``."""
        out = np.empty((len(logmels), EMBEDDING_DIM), np.float32)
        mean, std = np.float32(norm_mean), np.float32(norm_std)
        for i, m in enumerate(logmels):
            if m.shape[0] < TIME_STRIDE:
                raise FeatureError(f"a clip has {m.shape[0]} frames; the encoder needs "
                                   f"{TIME_STRIDE}")
            if m.shape[1] != N_MELS:
                raise FeatureError(f"a clip has {m.shape[1]} mel bands; the encoder needs "
                                   f"{N_MELS}")
            out[i] = self._pooled((np.asarray(m, np.float32) - mean) / std)
        return out


@functools.lru_cache(maxsize=2)
def _encoder(weights_key: str, weights: str | None) -> Encoder:
    arrays, _ = load_weights(weights)
    return Encoder(arrays)


def get_encoder(weights: str | Path | None = None) -> Encoder:
    """A cached :class:`Encoder` of the shipped (or the user's) weights."""
    _, digest = load_weights(weights)
    return _encoder(digest, None if weights is None else str(weights))
