"""``crnn``: a small convolutional sequence model with statistics pooling (Keras 3, JAX).

Designed to recognise emotion in voices it never heard, on a CPU:

- **Input**: fixed-length frame sequences ``(n_frames, n_coeffs)`` (log-mel
  bands, optionally + deltas, from :mod:`ser.features.logmel`), cropped or
  padded with :func:`ser.features.logmel.fix_length`, so the model is
  compiled once and never steps through masked padding.
- **Scaler inside the model**: a :class:`keras.layers.Normalization` layer
  holding per-coefficient mean and variance computed from the frames of the
  fitting part of the training clips only; it is saved with the model.
- **SpecAugment** (:class:`SpecAugment`): random time and frequency masks,
  active only while training (Keras passes ``training=True`` in ``fit`` only).
- **Front end**: 1-D convolutions over time (TDNN / x-vector style: the
  coefficients are channels), batch normalisation, ReLU, dilations for a wide
  context, optionally followed by a bidirectional GRU.
- **Pooling**: attentive statistics pooling (:class:`AttentiveStatsPooling`):
  attention-weighted mean and standard deviation over time (``attention=False``:
  plain mean + std).
- **Training** (:func:`fit_crnn`): label smoothing, AdamW with a cosine
  learning-rate schedule, class weights (as sample weights), early stopping on
  a validation split that shares no speaker with the fitting part
  (:func:`ser.splits.protocols.validation_split`), and a fresh feature-space
  augmentation of the fitting clips every epoch (:func:`ser.models.augment.augment_batch`)
  applied to the fitting indices only, never to validation or test clips.

Every custom layer is registered with
``keras.saving.register_keras_serializable``, there is no ``Lambda`` layer, so
``keras.saving.load_model(path, safe_mode=True)`` loads a saved model.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
from keras import ops  # noqa: E402

PACKAGE = "ser"


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking of ``(batch, time, coeffs)`` inputs, training only.

    Parameters
    ----------
    time_masks, time_width
        Number of time masks per example and their maximum width in frames.
    freq_masks, freq_width
        Number of coefficient masks and their maximum width in coefficients.
    n_bands
        Masks span the first ``n_bands`` coefficients and the same positions in
        every following delta block (``None``: all coefficients are one block).
    seed
        Seed of the layer's random generator.

    Masked values are set to 0, the training mean after the model's
    normalisation layer.
    """

    def __init__(self, *, time_masks: int = 2, time_width: int = 20, freq_masks: int = 2,
                 freq_width: int = 8, n_bands: int | None = None, seed: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.time_masks = int(time_masks)
        self.time_width = int(time_width)
        self.freq_masks = int(freq_masks)
        self.freq_width = int(freq_width)
        self.n_bands = None if n_bands is None else int(n_bands)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def _mask(self, batch, length: int, n_masks: int, width: int):
        """``(batch, length)`` float mask: 0 inside any of ``n_masks`` random spans."""
        keep = ops.ones((batch, length))
        pos = ops.arange(length, dtype="float32")[None, :]
        for _ in range(n_masks):
            w = ops.floor(keras.random.uniform((batch, 1), 0.0, width + 1.0,
                                               seed=self.seed_generator))
            start = ops.floor(keras.random.uniform((batch, 1), 0.0, 1.0,
                                                   seed=self.seed_generator)
                              * ops.maximum(length - w, 1.0))
            inside = ops.logical_and(pos >= start, pos < start + w)
            keep = keep * (1.0 - ops.cast(inside, "float32"))
        return keep

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        batch, n_time, n_coeffs = shape[0], inputs.shape[1], inputs.shape[2]
        keep = ops.ones_like(inputs)
        if self.time_masks and self.time_width:
            keep = keep * self._mask(batch, n_time, self.time_masks, self.time_width)[:, :, None]
        if self.freq_masks and self.freq_width:
            bands = self.n_bands or n_coeffs
            fmask = self._mask(batch, bands, self.freq_masks, self.freq_width)
            if n_coeffs % bands == 0:
                fmask = ops.tile(fmask, (1, n_coeffs // bands))
            else:
                fmask = ops.concatenate([fmask, ops.ones((batch, n_coeffs - bands))], axis=1)
            keep = keep * fmask[:, None, :]
        return inputs * ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "time_masks": self.time_masks,
                "time_width": self.time_width, "freq_masks": self.freq_masks,
                "freq_width": self.freq_width, "n_bands": self.n_bands, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimeCentering(keras.layers.Layer):
    """Subtract each clip's own mean over time from every coefficient (cepstral mean
    normalisation per utterance): removes a clip's fixed spectral colouring
    (microphone, room, part of the voice), keeps its dynamics."""

    def call(self, inputs):
        return inputs - ops.mean(inputs, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentiveStatsPooling(keras.layers.Layer):
    """Pool ``(batch, time, channels)`` to ``(batch, 2 * channels)``: weighted mean and std.

    With ``attention=True`` a small scoring network (``channels -> units ->
    1``, tanh) gives each frame a softmax weight over time (Okabe et al.,
    2018, attentive statistics pooling); otherwise every frame weighs the same.
    """

    def __init__(self, *, attention: bool = True, units: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attention = bool(attention)
        self.units = int(units)

    def build(self, input_shape) -> None:
        channels = int(input_shape[-1])
        if self.attention:
            self.w = self.add_weight(shape=(channels, self.units), initializer="glorot_uniform",
                                     name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")
            self.v = self.add_weight(shape=(self.units, 1), initializer="glorot_uniform",
                                     name="v")

    def call(self, inputs):
        if self.attention:
            scores = ops.matmul(ops.tanh(ops.matmul(inputs, self.w) + self.b), self.v)
            weights = ops.softmax(scores, axis=1)  # (batch, time, 1)
            mean = ops.sum(weights * inputs, axis=1)
            var = ops.sum(weights * ops.square(inputs), axis=1) - ops.square(mean)
        else:
            mean = ops.mean(inputs, axis=1)
            var = ops.mean(ops.square(inputs), axis=1) - ops.square(mean)
        std = ops.sqrt(ops.maximum(var, 1e-6))
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "attention": self.attention, "units": self.units}


@dataclass(frozen=True)
class CRNNConfig:
    """Hyper-parameters of :func:`build_crnn` and :func:`fit_crnn` (all have defaults)."""

    n_frames: int = 160            # fixed input length (frames of 10 ms)
    channels: int = 64             # channels of each conv block
    n_blocks: int = 3              # conv blocks (kernel 5, then 3 with dilation 1, 2, ...)
    stride: int = 2                # time stride of the first block (2: 20 ms steps)
    rnn_units: int = 0             # > 0: a bidirectional GRU after the convolutions
    attention: bool = True         # attentive (True) or plain (False) statistics pooling
    dense_units: int = 64
    clip_centering: bool = False   # subtract each clip's mean frame (per-utterance CMN)
    dropout: float = 0.2
    time_masks: int = 2
    time_width: int = 20
    freq_masks: int = 2
    freq_width: int = 8
    label_smoothing: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-3
    batch_size: int = 32
    epochs: int = 30
    patience: int = 10
    monitor: str = "val_uar"       # early stopping on validation UAR or "val_loss"
    min_epochs: int = 8            # epochs before early stopping may stop
    validation_share: float = 0.2
    class_weights: bool = True
    augment: bool = True           # feature-space augmentation of the fitting clips
    n_bands: int | None = None     # coefficients per block (for masks across deltas)

    @classmethod
    def from_mapping(cls, cfg: dict[str, Any] | None) -> CRNNConfig:
        """Build from a mapping, rejecting unknown keys with a readable message."""
        from ser.errors import ConfigError

        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"crnn: unknown setting(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
        return cls(**cfg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_crnn(*, n_coeffs: int, n_classes: int, cfg: CRNNConfig,
               mean: np.ndarray | None = None, variance: np.ndarray | None = None,
               seed: int = 0) -> keras.Model:
    """Build and compile the model.

    Parameters
    ----------
    n_coeffs
        Coefficients per frame.
    n_classes
        Output classes.
    cfg
        Hyper-parameters.
    mean, variance
        Per-coefficient statistics of the fitting frames for the built-in
        normalisation layer (``None``: identity, 0 and 1).
    seed
        Seed of the masking layer.
    """
    mean = np.zeros(n_coeffs) if mean is None else np.asarray(mean, np.float64)
    variance = np.ones(n_coeffs) if variance is None else np.asarray(variance, np.float64)
    inputs = keras.Input(shape=(cfg.n_frames, n_coeffs), name="frames")
    x = keras.layers.Normalization(axis=-1, mean=mean.tolist(), variance=variance.tolist(),
                                   name="scaler")(inputs)
    if cfg.clip_centering:
        x = TimeCentering(name="clip_centering")(x)
    x = SpecAugment(time_masks=cfg.time_masks, time_width=cfg.time_width,
                    freq_masks=cfg.freq_masks, freq_width=cfg.freq_width,
                    n_bands=cfg.n_bands, seed=seed, name="spec_augment")(x)
    for i in range(cfg.n_blocks):
        kernel, dilation, stride = (5, 1, cfg.stride) if i == 0 else (3, i, 1)
        x = keras.layers.Conv1D(cfg.channels, kernel, strides=stride, dilation_rate=dilation,
                                padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"relu{i}")(x)
        x = keras.layers.SpatialDropout1D(cfg.dropout / 2, name=f"drop{i}")(x)
    if cfg.rnn_units:
        x = keras.layers.Bidirectional(keras.layers.GRU(cfg.rnn_units, return_sequences=True),
                                       name="bigru")(x)
    x = AttentiveStatsPooling(attention=cfg.attention, name="pooling")(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop_pool")(x)
    x = keras.layers.Dense(cfg.dense_units, activation="relu", name="embedding")(x)
    x = keras.layers.Dropout(cfg.dropout, name="drop_emb")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="ser_crnn")


class _EpochData(keras.utils.PyDataset):
    """Batches of the fitting clips, re-augmented and reshuffled every epoch.

    ``augment(X_fit, rng)`` is called once per epoch with the fitting clips
    only (``X[fit_idx]``); validation and test clips never pass through it.
    """

    def __init__(self, X: np.ndarray, y_onehot: np.ndarray, weights: np.ndarray, *,
                 batch_size: int, augment: Callable | None, seed: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.X, self.y, self.w = X, y_onehot, weights
        self.batch_size = batch_size
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.order = self.rng.permutation(len(self.X))
        self.Xe = self.X if self.augment is None else self.augment(self.X, self.rng)

    def __len__(self) -> int:
        # Full batches only: one compiled shape (the tail rotates in via shuffling).
        return max(1, len(self.X) // self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.Xe[idx], self.y[idx], self.w[idx]

    def on_epoch_end(self) -> None:
        self._new_epoch()


class ValidationUAR(keras.callbacks.Callback):
    """Add ``val_uar`` (unweighted average recall on the validation clips) to the epoch logs.

    Validation speakers are few, so their loss is noisy and dominated by
    over-confident errors; their UAR is what the model is judged on. Place
    this callback before :class:`keras.callbacks.EarlyStopping` monitoring
    ``val_uar``.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, *, batch_size: int = 64) -> None:
        super().__init__()
        self.X, self.y, self.batch_size = X, np.asarray(y), batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from sklearn.metrics import balanced_accuracy_score

        pred = np.asarray(self.model.predict(self.X, batch_size=self.batch_size, verbose=0))
        if logs is not None:
            logs["val_uar"] = float(balanced_accuracy_score(self.y, pred.argmax(axis=1)))


def frame_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and variance over every frame of ``X`` ``(n, frames, coeffs)``."""
    frames = X.reshape(-1, X.shape[-1]).astype(np.float64)
    var = frames.var(axis=0)
    return frames.mean(axis=0), np.where(var > 1e-12, var, 1.0)


def fit_crnn(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: CRNNConfig,
    seed: int,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    callbacks: list | None = None,
    verbose: int = 0,
):
    """Fit on ``X[train_idx]``, early-stop on ``X[val_idx]``; return ``(model, history)``.

    Parameters
    ----------
    X
        ``(n, cfg.n_frames, coeffs)`` fixed-length sequences of the whole
        training side (unscaled: the scaler is fitted here on ``train_idx``).
    y
        Integer labels ``0 .. n_classes-1``.
    train_idx, val_idx
        Fitting and validation indices into ``X`` (speaker-disjoint: see
        :func:`ser.splits.protocols.validation_split`).
    cfg
        Hyper-parameters.
    seed
        Seeds Keras (weights, dropout, masks) and the augmentation generator.
    augment
        ``augment(X_fit, rng) -> X_fit_augmented``, called every epoch on the
        fitting clips only. ``None``: :func:`ser.models.augment.augment_batch` if
        ``cfg.augment``, else no augmentation.
    """
    from sklearn.utils.class_weight import compute_class_weight

    from ser.models.augment import augment_batch

    if X.shape[1] != cfg.n_frames:
        raise ValueError(f"X has {X.shape[1]} frames, the config {cfg.n_frames}")
    train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
    if np.intersect1d(train_idx, val_idx).size:
        raise ValueError("fitting and validation indices overlap")
    keras.utils.set_random_seed(seed)
    X_fit, y_fit = X[train_idx], y[train_idx]
    mean, var = frame_statistics(X_fit)
    model = build_crnn(n_coeffs=X.shape[2], n_classes=n_classes, cfg=cfg, mean=mean,
                       variance=var, seed=seed)
    weights = np.ones(len(train_idx), np.float32)
    if cfg.class_weights:
        present = np.unique(y_fit)
        cw = compute_class_weight("balanced", classes=present, y=y_fit)
        weights = cw[np.searchsorted(present, y_fit)].astype(np.float32)
    if augment is None and cfg.augment:
        augment = functools.partial(augment_batch, n_bands=cfg.n_bands)
    batches = _EpochData(X_fit, np.eye(n_classes, dtype=np.float32)[y_fit], weights,
                         batch_size=min(cfg.batch_size, len(train_idx)), augment=augment,
                         seed=seed)
    steps = len(batches) * cfg.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate * 0.1, decay_steps=max(1, steps - len(batches)), alpha=0.02,
        warmup_target=cfg.learning_rate, warmup_steps=len(batches))
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"])
    cbs = list(callbacks or [])
    validation = None
    if len(val_idx):
        validation = (X[val_idx], np.eye(n_classes, dtype=np.float32)[y[val_idx]])
        monitor, mode = "val_loss", "min"
        if cfg.monitor == "val_uar":
            cbs.insert(0, ValidationUAR(X[val_idx], y[val_idx]))
            monitor, mode = "val_uar", "max"
        cbs.insert(1 if cfg.monitor == "val_uar" else 0, keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=cfg.patience, restore_best_weights=True,
            start_from_epoch=cfg.min_epochs))
    history = model.fit(batches, validation_data=validation, epochs=cfg.epochs,
                        callbacks=cbs, verbose=verbose)
    return model, history


def predict_proba(model: keras.Model, X: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` (inference mode: no masking, no dropout)."""
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))
