"""``byols_ft``: the BYOL-S encoder fine-tuned for emotion (Keras 3, JAX).

The encoder of the ``byols`` feature set (:func:`ser.features.byols.build_encoder`,
initialised from the shipped or the user's weights) with a small head, trained on the
``byols_mel`` sequences (the encoder's own log-mel front end, :func:`byols_logmel`):

- **Input**: ``(n_frames, 64)`` raw log-mel frames, cropped from the start or padded
  with zeros (``fix_length(..., pad="zeros")``). A frame of exact zeros cannot come
  out of the front end (``log(x + eps)`` of a power spectrum), so the model finds
  each clip's length itself (:class:`FrameLengths`) and masks the padding after every
  block and in the pooling exactly as the frozen feature set does: the untrained
  model's pooled output *is* the ``byols`` embedding (tested).
- **Standardisation inside the model** (:class:`ScalarStandardize`): the log-mel mean
  and std (two scalars, as the original) of the fitting clips' frames, stored in the
  model's config.
- **Frozen front, trained tail**: the first ``frozen_blocks`` conv blocks (default 2 of
  3) keep their pretrained weights and batch-norm statistics; the last conv block and
  the two 512-unit layers are fine-tuned (``frozen_blocks: 3``: only the 512-unit
  layers). The last block's batch norm keeps its pretrained statistics (few clips,
  small batches). Then mean + max over time (as the embedding), a per-dimension
  standardisation of that embedding (statistics of the fitting clips' pretrained
  embeddings, stored in the model), dropout and a softmax layer.
- **Training on cached maps** (:func:`fit_byols_ft`): the frozen front is
  deterministic, so its output maps are computed once per training side and the tail
  is trained on them (several times cheaper than running the whole encoder every
  step). Augmentation therefore acts on those maps: SpecAugment-style time and
  frequency masks (widths given in input frames / mel bands, divided by the front's
  pooling) and mixup of the fitting batch (manifold mixup at the tail's input: maps
  and one-hot labels mixed with ``lambda ~ Beta(alpha, alpha)``, the pair's longer
  length kept). Neither touches validation or test clips.
- **Two phases** (linear probe, then fine-tuning; Kumar et al., 2022): the head alone
  with the encoder frozen (``head_epochs``, ``head_learning_rate``), then the tail and
  head together with a small learning rate (``epochs``, ``learning_rate``), both with
  AdamW and class weights. Early stopping watches the UAR of a validation split that
  shares no speaker with the fitting clips (:func:`ser.splits.protocols.validation_split`) over
  both phases; the best epoch's weights are kept.

Every custom layer is registered, there is no ``Lambda``, so the saved model loads with
``keras.saving.load_model(path, safe_mode=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
from keras import ops  # noqa: E402

from ser.features import byols, byols_encoder  # noqa: E402

PACKAGE = "ser"


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrameLengths(keras.layers.Layer):
    """``(batch,)`` int32: frames of each zero-padded ``(batch, time, bands)`` clip (the
    frames up to its last frame that is not all zeros)."""

    def call(self, inputs):
        real = ops.any(ops.not_equal(inputs, 0.0), axis=-1)  # (batch, time)
        steps = ops.arange(1, ops.shape(inputs)[1] + 1, dtype="int32")
        return ops.max(ops.where(real, steps[None, :], 0), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0],), dtype="int32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScalarStandardize(keras.layers.Layer):
    """``(x - mean) / std`` with two scalars of the fitting clips (kept in the config)."""

    def __init__(self, *, mean: float = 0.0, std: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mean, self.std = float(mean), float(std)

    def call(self, inputs):
        return (inputs - self.mean) / self.std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EmbeddingStandardize(keras.layers.Layer):
    """``(x - mean) * scale`` per dimension; ``mean`` and ``scale`` are non-trainable
    weights set from the fitting clips (:func:`embedding_statistics`), saved with the
    model."""

    def build(self, input_shape) -> None:
        dim = int(input_shape[-1])
        self.mean = self.add_weight(shape=(dim,), initializer="zeros", trainable=False,
                                    name="mean")
        self.scale = self.add_weight(shape=(dim,), initializer="ones", trainable=False,
                                     name="scale")

    def call(self, inputs):
        return (inputs - self.mean) * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape


def embedding_statistics(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and ``1 / std`` of embeddings; every std is floored at 5 % of
    the median one, so a nearly constant dimension (a rarely active unit) is not blown
    up into huge inputs of the softmax layer when masks and mixup move it."""
    emb = np.asarray(emb, np.float64)
    std = emb.std(axis=0)
    floor = max(0.05 * float(np.median(std)), 1e-6)
    return emb.mean(axis=0).astype(np.float32), (1.0 / np.maximum(std, floor)).astype(np.float32)


@dataclass(frozen=True)
class ByolsFTConfig:
    """Hyper-parameters of :func:`build_byols_ft` and :func:`fit_byols_ft`."""

    n_frames: int = 320             # fixed input length (10 ms frames; zero-padded)
    weights: str | None = None      # None: the shipped BYOL-S weights; else a .npz/.pth
    frozen_blocks: int = 2          # conv blocks kept frozen (2: last block + fc trained)
    dropout: float = 0.3            # before the softmax layer
    encoder_dropout: float = 0.3    # between the encoder's two 512-unit layers
    time_masks: int = 2             # masks on the cached maps, widths in input frames ...
    time_width: int = 24
    freq_masks: int = 1             # ... and in mel bands
    freq_width: int = 8
    mixup_alpha: float = 0.4        # 0: no mixup
    head_epochs: int = 8            # phase 1: head only
    head_learning_rate: float = 2e-3
    epochs: int = 20                # phase 2: tail + head
    learning_rate: float = 1e-4
    weight_decay: float = 1e-2
    batch_size: int = 32
    patience: int = 6               # phase-2 epochs without a better validation UAR
    validation_share: float = 0.2
    class_weights: bool = True

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> ByolsFTConfig:
        """Build from a mapping, rejecting unknown keys and bad values in one line."""
        from ser.errors import ConfigError

        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"byols_ft: unknown setting(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
        out = cls(**cfg)
        if out.frozen_blocks not in (0, 1, 2, 3):
            raise ConfigError(f"byols_ft.frozen_blocks must be 0-3, got {out.frozen_blocks}")
        if out.n_frames < byols.TIME_STRIDE:
            raise ConfigError(f"byols_ft.n_frames must be at least {byols.TIME_STRIDE}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Layers of each conv block of the encoder (names of :func:`byols.build_encoder`).
def _block_layers(i: int) -> tuple[str, ...]:
    return (f"conv{i}", f"bn{i}", f"relu{i}", f"pool{i}", f"mask{i}")


_MASKS = frozenset({"input_mask"} | {f"mask{i}" for i in range(3)})


class _Graph:
    """The encoder's layers (with the pretrained weights) applied to new tensors."""

    def __init__(self, arrays: Mapping[str, np.ndarray], *, encoder_dropout: float) -> None:
        self.encoder = byols.build_encoder(arrays, pooled=True, dropout=encoder_dropout)
        self.pool = self.encoder.get_layer("mean_max")

    def apply(self, names: Sequence[str], x, lengths):
        for name in names:
            layer = self.encoder.get_layer(name)
            x = layer(x, lengths) if name in _MASKS else layer(x)
        return x


def front_layers(frozen_blocks: int) -> list[str]:
    """Encoder layers from the standardised input to the cached maps (frozen)."""
    names = ["input_mask", "as_image"]
    for i in range(frozen_blocks):
        names += _block_layers(i)
    return names


def tail_layers(frozen_blocks: int) -> list[str]:
    """Encoder layers from the cached maps to the frame outputs (trained)."""
    names: list[str] = []
    for i in range(frozen_blocks, 3):
        names += _block_layers(i)
    return names + ["frames", "fc0", "dropout", "fc1"]


def map_shape(frozen_blocks: int, n_frames: int) -> tuple[int, int, int]:
    """Shape of one cached map (time, mel, channels) after ``frozen_blocks`` blocks."""
    s = 2 ** frozen_blocks
    return n_frames // s, byols.N_MELS // s, 1 if frozen_blocks == 0 else 64


@dataclass(frozen=True)
class ByolsFT:
    """The networks of one fine-tuned model; they share their layers.

    ``model``: raw log-mel ``(batch, n_frames, 64)`` -> class probabilities (what is saved
    and predicts). ``tail``: ``{"maps", "lengths"}`` (cached front outputs and clip
    lengths in frames) -> probabilities (what is trained). ``front``: raw log-mel ->
    ``(maps, lengths)`` (the frozen part, cached). ``embedding``: raw log-mel -> the
    pooled encoder output (before fine-tuning: the ``byols`` embedding);
    ``tail_embedding``: the same from cached maps.
    """

    model: keras.Model
    tail: keras.Model
    front: keras.Model
    embedding: keras.Model
    tail_embedding: keras.Model


def build_byols_ft(*, n_classes: int, cfg: ByolsFTConfig, norm_mean: float, norm_std: float,
                   arrays: Mapping[str, np.ndarray] | None = None) -> ByolsFT:
    """The networks (:class:`ByolsFT`); encoder layers start from ``arrays`` (default: the
    ``cfg.weights`` checkpoint) and the front is frozen."""
    if arrays is None:
        arrays, _ = byols.load_weights(cfg.weights)
    graph = _Graph(arrays, encoder_dropout=cfg.encoder_dropout)
    scaler = EmbeddingStandardize(name="embedding_scaler")
    head_drop = keras.layers.Dropout(cfg.dropout, name="head_dropout")
    head = keras.layers.Dense(n_classes, activation="softmax", name="emotion")

    raw = keras.Input((cfg.n_frames, byols.N_MELS), name="logmel")
    lengths = FrameLengths(name="lengths")(raw)
    x = ScalarStandardize(mean=norm_mean, std=norm_std, name="standardize")(raw)
    front_out = graph.apply(front_layers(cfg.frozen_blocks), x, lengths)
    x = graph.apply(tail_layers(cfg.frozen_blocks), front_out, lengths)
    pooled = graph.pool(x, lengths)
    model = keras.Model(raw, head(head_drop(scaler(pooled))), name="byols_ft")

    maps = keras.Input(map_shape(cfg.frozen_blocks, cfg.n_frames), name="maps")
    tail_len = keras.Input((), dtype="int32", name="lengths")
    t = graph.apply(tail_layers(cfg.frozen_blocks), maps, tail_len)
    t_pooled = graph.pool(t, tail_len)
    tail = keras.Model({"maps": maps, "lengths": tail_len}, head(head_drop(scaler(t_pooled))),
                       name="byols_ft_tail")
    for name in front_layers(cfg.frozen_blocks):
        model.get_layer(name).trainable = False
    return ByolsFT(model=model, tail=tail,
                   front=keras.Model(raw, [front_out, lengths], name="byols_ft_front"),
                   embedding=keras.Model(raw, pooled, name="byols_ft_embedding"),
                   tail_embedding=keras.Model({"maps": maps, "lengths": tail_len}, t_pooled,
                                              name="byols_ft_tail_embedding"))


def frame_norm_stats(X: np.ndarray) -> tuple[float, float]:
    """Mean and std of the real (non-padding) frames of zero-padded clips ``X``."""
    real = np.any(X != 0.0, axis=-1)
    return byols.norm_stats([x[r] for x, r in zip(X, real, strict=True)])


def cache_front(front: keras.Model, X: np.ndarray, *, batch_size: int = 32,
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(maps, lengths)`` of clips ``X`` through the frozen front (inference mode)."""
    maps, lengths = front.predict(X, batch_size=batch_size, verbose=0)
    return np.asarray(maps, np.float32), np.asarray(lengths, np.int32)


def _span_mask(rng: np.random.Generator, n: int, length: int, n_masks: int,
               width: int) -> np.ndarray:
    """``(n, length)`` float32: 0 inside ``n_masks`` random spans of up to ``width``."""
    keep = np.ones((n, length), np.float32)
    if width <= 0:
        return keep
    pos = np.arange(length)[None, :]
    for _ in range(n_masks):
        w = rng.integers(0, width + 1, size=(n, 1))
        start = np.floor(rng.random((n, 1)) * np.maximum(length - w, 1))
        keep[(pos >= start) & (pos < start + w)] = 0.0
    return keep


class MapBatches(keras.utils.PyDataset):
    """Shuffled batches of cached maps with masks and mixup (fitting clips only)."""

    def __init__(self, maps: np.ndarray, lengths: np.ndarray, y_onehot: np.ndarray,
                 weights: np.ndarray, *, cfg: ByolsFTConfig, seed: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.maps, self.lengths, self.y, self.w = maps, lengths, y_onehot, weights
        self.cfg = cfg
        self.batch_size = min(cfg.batch_size, len(maps))
        self.stride = 2 ** cfg.frozen_blocks
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(maps))

    def __len__(self) -> int:
        # Full batches only: one compiled shape (the tail rotates in via shuffling).
        return max(1, len(self.maps) // self.batch_size)

    def __getitem__(self, i: int):
        cfg, rng = self.cfg, self.rng
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        x, lens = self.maps[idx].copy(), self.lengths[idx].copy()
        y, w = self.y[idx].copy(), self.w[idx].copy()
        n, t, m = x.shape[:3]
        x *= _span_mask(rng, n, t, cfg.time_masks, cfg.time_width // self.stride)[:, :, None,
                                                                                   None]
        x *= _span_mask(rng, n, m, cfg.freq_masks, cfg.freq_width // self.stride)[:, None, :,
                                                                                   None]
        if cfg.mixup_alpha > 0:
            lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, size=n).astype(np.float32)
            lam = np.maximum(lam, 1.0 - lam)  # the first clip dominates its mix
            other = rng.permutation(n)
            x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[other]
            y = lam[:, None] * y + (1 - lam[:, None]) * y[other]
            w = lam * w + (1 - lam) * w[other]
            lens = np.maximum(lens, lens[other])
        return {"maps": x, "lengths": lens}, y, w

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.maps))


class BestValidationUAR(keras.callbacks.Callback):
    """Track the validation UAR over both phases, keep the best weights, stop a phase
    after ``patience`` epochs without improvement (``None``: never stop)."""

    def __init__(self, inputs: dict[str, np.ndarray], y: np.ndarray) -> None:
        super().__init__()
        self.inputs, self.y = inputs, np.asarray(y)
        self.best, self.best_weights, self.best_epoch = -1.0, None, 0
        self.patience: int | None = None
        self.phase, self.epoch_count, self.wait = "", 0, 0
        self.log: list[dict[str, Any]] = []

    def start_phase(self, phase: str, patience: int | None) -> None:
        self.phase, self.patience, self.wait = phase, patience, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from sklearn.metrics import balanced_accuracy_score

        self.epoch_count += 1
        pred = np.asarray(self.model.predict(self.inputs, batch_size=64, verbose=0))
        uar = float(balanced_accuracy_score(self.y, pred.argmax(axis=1)))
        picked = pred[np.arange(len(self.y)), self.y]
        val_loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
        val_accuracy = float(np.mean(pred.argmax(axis=1) == self.y))
        if logs is not None:
            logs |= {"val_uar": uar, "val_loss": val_loss, "val_accuracy": val_accuracy}
        self.log.append({"epoch": self.epoch_count, "phase": self.phase,
                         "loss": float((logs or {}).get("loss", np.nan)), "val_loss": val_loss,
                         "val_accuracy": val_accuracy, "val_uar": uar})
        if uar > self.best:
            self.best, self.best_epoch, self.wait = uar, self.epoch_count, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                self.model.stop_training = True


def _set_tail_trainable(model: keras.Model, cfg: ByolsFTConfig, trainable: bool) -> None:
    for name in tail_layers(cfg.frozen_blocks):
        # Batch norm keeps its pretrained statistics (inference mode when frozen).
        model.get_layer(name).trainable = trainable and not name.startswith("bn")


def _compile(tail: keras.Model, *, learning_rate: float, weight_decay: float) -> None:
    tail.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
                 loss=keras.losses.CategoricalCrossentropy())


def fit_byols_ft(X: np.ndarray, y: np.ndarray, *, n_classes: int, train_idx: np.ndarray,
                 val_idx: np.ndarray, cfg: ByolsFTConfig, seed: int,
                 arrays: Mapping[str, np.ndarray] | None = None, verbose: int = 0,
                 ) -> tuple[keras.Model, list[dict[str, Any]], dict[str, Any]]:
    """Fit on ``X[train_idx]``, early-stop on ``X[val_idx]``; ``(model, epochs, facts)``.

    ``X``: ``(n, cfg.n_frames, 64)`` zero-padded raw log-mel clips of the training side;
    the standardisation statistics come from the fitting clips only. ``epochs``: one
    row per epoch (phase, loss, val_uar); ``facts``: the statistics, the best epoch and
    its validation UAR.
    """
    from sklearn.utils.class_weight import compute_class_weight

    if X.shape[1:] != (cfg.n_frames, byols.N_MELS):
        raise ValueError(f"X has shape {X.shape[1:]}, the config ({cfg.n_frames}, 64)")
    train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
    if np.intersect1d(train_idx, val_idx).size:
        raise ValueError("fitting and validation indices overlap")
    keras.utils.set_random_seed(seed)
    mean, std = frame_norm_stats(X[train_idx])
    nets = build_byols_ft(n_classes=n_classes, cfg=cfg, norm_mean=mean, norm_std=std,
                          arrays=arrays)
    model, tail = nets.model, nets.tail
    maps, lengths = cache_front(nets.front, X)
    # The head sees the embedding standardised per dimension with the fitting clips'
    # statistics (as a StandardScaler before a linear model on frozen embeddings).
    model.get_layer("embedding_scaler").set_weights(list(embedding_statistics(
        nets.tail_embedding.predict({"maps": maps[train_idx], "lengths": lengths[train_idx]},
                                    batch_size=32, verbose=0))))
    y_fit = y[train_idx]
    weights = np.ones(len(train_idx), np.float32)
    if cfg.class_weights:
        present = np.unique(y_fit)
        cw = compute_class_weight("balanced", classes=present, y=y_fit)
        weights = cw[np.searchsorted(present, y_fit)].astype(np.float32)
    batches = MapBatches(maps[train_idx], lengths[train_idx],
                         np.eye(n_classes, dtype=np.float32)[y_fit], weights, cfg=cfg,
                         seed=seed)
    watch = BestValidationUAR({"maps": maps[val_idx], "lengths": lengths[val_idx]},
                              y[val_idx]) if len(val_idx) else None
    cbs = [watch] if watch is not None else []
    phases = [("head", cfg.head_epochs, cfg.head_learning_rate, False, None),
              ("fine-tune", cfg.epochs, cfg.learning_rate, True, cfg.patience)]
    for phase, epochs, lr, tail_trainable, patience in phases:
        if epochs <= 0:
            continue
        _set_tail_trainable(model, cfg, tail_trainable)
        _compile(tail, learning_rate=lr, weight_decay=cfg.weight_decay)
        if watch is not None:
            watch.start_phase(phase, patience)
        tail.fit(batches, epochs=epochs, callbacks=cbs, verbose=verbose)
    facts: dict[str, Any] = {"norm_mean": mean, "norm_std": std}
    if watch is not None and watch.best_weights is not None:
        tail.set_weights(watch.best_weights)
        facts |= {"best_epoch": watch.best_epoch, "best_val_uar": watch.best}
    for layer in model.layers:  # a saved model is for inference
        layer.trainable = False
    return model, (watch.log if watch is not None else []), facts


def predict_proba(model: keras.Model, X: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` (inference mode)."""
    return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))


byols_encoder._layers()  # registers the encoder's TimeMask and MeanMaxPool (for safe loading)
