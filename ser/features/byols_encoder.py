"""The BYOL-S encoder network (AudioNTT2020, Keras 3) and its bucketed, masked batching
(see :mod:`ser.features.byols`, step 4).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.features.byols_frontend import N_MELS, TIME_STRIDE
from ser.features.byols_weights import check_architecture, load_weights
from ser.features.mfcc import FeatureError

EMBEDDING_DIM = 512
#: Bucketed clips are padded to a multiple of this many frames (few compiled shapes).
BUCKET_FRAMES = 64
#: Longer clips are encoded in windows of this many frames (20.48 s) ...
CHUNK_FRAMES = 2048
#: ... with this much context on each side (the receptive field is 22 frames).
CONTEXT_FRAMES = 64
BN_EPS = 1e-5


def _keras():
    # Without Keras' unused optional integrations (:mod:`ser.models.keras_import`).
    from ser.models.keras_import import import_keras_for_inference

    return import_keras_for_inference()


@functools.cache
def _layers() -> dict[str, type]:
    """The encoder's two small custom layers (defined on first use: Keras imports JAX)."""
    keras = _keras()
    from keras import ops

    @keras.saving.register_keras_serializable(package="ser_byols")
    class TimeMask(keras.layers.Layer):
        """Zero every time step at or past ``lengths // stride`` (bucket padding)."""

        def __init__(self, stride: int = 1, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, x, lengths):
            valid = ops.floor_divide(ops.cast(lengths, "int32"), self.stride)
            steps = ops.arange(ops.shape(x)[1], dtype="int32")
            mask = ops.cast(ops.expand_dims(steps, 0) < ops.expand_dims(valid, 1), x.dtype)
            return x * ops.reshape(mask, (ops.shape(x)[0], ops.shape(x)[1])
                                   + (1,) * (len(x.shape) - 2))

        def get_config(self) -> dict[str, Any]:
            return super().get_config() | {"stride": self.stride}

    @keras.saving.register_keras_serializable(package="ser_byols")
    class MeanMaxPool(keras.layers.Layer):
        """Mean + max over each clip's own frames (``lengths // stride`` of them)."""

        def __init__(self, stride: int = TIME_STRIDE, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, x, lengths):
            valid = ops.maximum(ops.floor_divide(ops.cast(lengths, "int32"), self.stride), 1)
            steps = ops.arange(ops.shape(x)[1], dtype="int32")
            mask = ops.expand_dims(ops.expand_dims(steps, 0) < ops.expand_dims(valid, 1), -1)
            total = ops.sum(ops.where(mask, x, 0.0), axis=1)
            mean = total / ops.cast(ops.expand_dims(valid, -1), x.dtype)
            return mean + ops.max(ops.where(mask, x, -np.inf), axis=1)

        def get_config(self) -> dict[str, Any]:
            return super().get_config() | {"stride": self.stride}

    return {"TimeMask": TimeMask, "MeanMaxPool": MeanMaxPool}


def build_encoder(arrays: Mapping[str, np.ndarray], *, pooled: bool = True,
                  dropout: float = 0.3):
    """The AudioNTT2020 encoder as a Keras model with the given weights.

    Parameters
    ----------
    arrays
        The state dict (:func:`load_weights`; torch names and layouts).
    pooled
        ``True``: outputs the ``(batch, 512)`` clip embedding (mean + max over time);
        ``False``: the ``(batch, frames // 8, 512)`` frame outputs of the last layer.
    dropout
        Rate of the Dropout between the two Dense layers (active only when training,
        e.g. fine-tuning; the original's rate is not in the checkpoint).

    Inputs are ``logmel`` ``(batch, frames, 64)`` (standardised log-mel, zero-padded past
    each clip's end) and ``lengths`` ``(batch,)`` int32 (each clip's own frame count).
    The layers use Keras' channels-last layout with (time, mel) as the image axes, so the
    flattened frame vector is ``mel * 64 + channel`` exactly as in the original.
    """
    keras = _keras()
    L = keras.layers
    custom = _layers()
    arrays = check_architecture(arrays, "weights")
    logmel = keras.Input((None, N_MELS), name="logmel")
    lengths = keras.Input((), dtype="int32", name="lengths")
    x = custom["TimeMask"](1, name="input_mask")(logmel, lengths)
    x = L.Reshape((-1, N_MELS, 1), name="as_image")(x)
    for block, (conv, bn) in enumerate(((0, 1), (4, 5), (8, 9))):
        w = arrays[f"features.{conv}.weight"]  # (out, in, mel, time) -> (time, mel, in, out)
        c = L.Conv2D(64, 3, padding="same", name=f"conv{block}")
        x = c(x)
        c.set_weights([np.transpose(w, (3, 2, 1, 0)), arrays[f"features.{conv}.bias"]])
        b = L.BatchNormalization(epsilon=BN_EPS, momentum=0.9, name=f"bn{block}")
        x = b(x)
        b.set_weights([arrays[f"features.{bn}.{k}"]
                       for k in ("weight", "bias", "running_mean", "running_var")])
        x = L.ReLU(name=f"relu{block}")(x)
        x = L.MaxPooling2D(2, name=f"pool{block}")(x)
        x = custom["TimeMask"](2 ** (block + 1), name=f"mask{block}")(x, lengths)
    x = L.Reshape((-1, 8 * 64), name="frames")(x)
    for name, key, drop in (("fc0", "fc.0", True), ("fc1", "fc.3", False)):
        d = L.Dense(EMBEDDING_DIM, activation="relu", name=name)
        x = d(x)
        d.set_weights([arrays[f"{key}.weight"].T, arrays[f"{key}.bias"]])
        if drop:
            x = L.Dropout(dropout, name="dropout")(x)
    if pooled:
        x = custom["MeanMaxPool"](TIME_STRIDE, name="mean_max")(x, lengths)
    return keras.Model([logmel, lengths], x, name="byols_audiontt2020")


class Encoder:
    """Frozen BYOL-S inference: bucketed, jit-compiled, chunked for long clips."""

    def __init__(self, arrays: Mapping[str, np.ndarray], *, batch_size: int = 16) -> None:
        import jax

        self.model = build_encoder(arrays, pooled=False)
        self.batch_size = max(1, int(batch_size))
        self._tv = [v.value for v in self.model.trainable_variables]
        self._ntv = [v.value for v in self.model.non_trainable_variables]
        model = self.model

        def frames(tv, ntv, x, lengths):
            out, _ = model.stateless_call(tv, ntv, [x, lengths], training=False)
            return out

        self._frames = jax.jit(frames)

    def frame_outputs(self, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``(n, frames // 8, 512)`` last-layer outputs of a padded, standardised batch."""
        n = batch.shape[0]
        # Always batch_size rows: one compiled shape per width, and a clip's values never
        # depend on how many clips share its batch (XLA's batch-1 convolution rounds
        # differently), so shards of a corpus give the same bytes as one job.
        rows = max(self.batch_size, n)
        if n < rows:
            batch = np.concatenate([batch, np.zeros((rows - n, *batch.shape[1:]), np.float32)])
            lengths = np.concatenate([lengths, np.zeros(rows - n, np.int32)])
        out = self._frames(self._tv, self._ntv, batch, lengths.astype(np.int32))
        return np.asarray(out)[:n]

    def _long_clip(self, x: np.ndarray) -> np.ndarray:
        """Embedding of one long standardised clip, in overlapping windows of one width."""
        n_out = x.shape[0] // TIME_STRIDE
        width = _round_up(CHUNK_FRAMES + 2 * CONTEXT_FRAMES)
        windows, keep = [], []
        for start in range(0, n_out * TIME_STRIDE, CHUNK_FRAMES):
            lo = max(0, start - CONTEXT_FRAMES)
            hi = min(x.shape[0], start + CHUNK_FRAMES + CONTEXT_FRAMES)
            windows.append(x[lo:hi])
            first = (start - lo) // TIME_STRIDE
            keep.append((first, min(n_out, (start + CHUNK_FRAMES) // TIME_STRIDE)
                         - lo // TIME_STRIDE))
        total = np.zeros(EMBEDDING_DIM, np.float64)
        peak = np.full(EMBEDDING_DIM, -np.inf, np.float32)
        for b in range(0, len(windows), self.batch_size):
            group = windows[b:b + self.batch_size]
            batch = np.stack([_pad_to(w, width) for w in group])
            lens = np.array([w.shape[0] for w in group], np.int32)
            out = self.frame_outputs(batch, lens)
            for row, (first, last) in enumerate(keep[b:b + self.batch_size]):
                part = out[row, first:last]
                total += part.sum(axis=0, dtype=np.float64)
                peak = np.maximum(peak, part.max(axis=0))
        return (total / n_out + peak).astype(np.float32)

    def embed(self, logmels: Sequence[np.ndarray], *, norm_mean: float, norm_std: float,
              ) -> np.ndarray:
        """``(n, 512)`` embeddings of log-mel clips (:func:`byols_logmel` outputs), in
        length buckets (clips padded to the same multiple of :data:`BUCKET_FRAMES`
        batched together); every clip needs at least 8 frames."""
        out = np.empty((len(logmels), EMBEDDING_DIM), np.float32)
        std = np.float32(norm_std)
        mean = np.float32(norm_mean)
        buckets: dict[int, list[int]] = {}
        for i, m in enumerate(logmels):
            if m.shape[0] < TIME_STRIDE:
                raise FeatureError(f"a clip has {m.shape[0]} frames; the encoder needs "
                                   f"{TIME_STRIDE}")
            if m.shape[0] > CHUNK_FRAMES:
                out[i] = self._long_clip((m - mean) / std)
            else:
                buckets.setdefault(_round_up(m.shape[0]), []).append(i)
        for width, members in sorted(buckets.items()):
            for b in range(0, len(members), self.batch_size):
                idx = members[b:b + self.batch_size]
                lens = np.array([logmels[i].shape[0] for i in idx], np.int32)
                batch = np.stack([_pad_to((logmels[i] - mean) / std, width) for i in idx])
                frames = self.frame_outputs(batch, lens)
                for row, i in enumerate(idx):
                    valid = frames[row, :lens[row] // TIME_STRIDE]
                    out[i] = valid.mean(axis=0) + valid.max(axis=0)
        return out


def _round_up(n: int) -> int:
    return max(BUCKET_FRAMES, -(-n // BUCKET_FRAMES) * BUCKET_FRAMES)


def _pad_to(x: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((width, x.shape[1]), np.float32)
    out[:x.shape[0]] = x
    return out


@functools.lru_cache(maxsize=2)
def _encoder(weights_key: str, batch_size: int, weights: str | None) -> Encoder:
    arrays, _ = load_weights(weights)
    return Encoder(arrays, batch_size=batch_size)


def get_encoder(weights: str | Path | None = None, *, batch_size: int = 16) -> Encoder:
    """A cached :class:`Encoder` of the shipped (or the user's) weights."""
    _, digest = load_weights(weights)
    return _encoder(digest, int(batch_size), None if weights is None else str(weights))
