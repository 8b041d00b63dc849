"""The BYOL-S encoder network (AudioNTT2020) as a Keras 3 model, for fine-tuning
(:mod:`ser.models.byols_ft`). Frozen embeddings (the ``byols`` feature set) are computed
without Keras by :mod:`ser.features.byols_inference`; the two agree (tested).

Batches are padded clips with their lengths: padding is masked after every block (zeros,
exactly what a clip's own zero-padded convolution sees past its end) and the pooling
runs over each clip's own frames only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from ser.features.byols_frontend import N_MELS, TIME_STRIDE
from ser.features.byols_inference import BLOCKS, BN_EPS, EMBEDDING_DIM
from ser.features.byols_weights import check_architecture


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
    for block, (conv, bn) in enumerate(BLOCKS):
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
