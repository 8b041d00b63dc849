"""The LSTM on MFCC sequences (Keras 3, JAX backend).

Sequences are standardised with statistics of the training clips only, padded
to one length with zeros and masked, so padding never reaches the LSTM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

PAD_VALUE = 0.0


@dataclass(frozen=True)
class SequenceScaler:
    """Per-coefficient standardisation fit on training frames, plus the padded length."""

    mean: np.ndarray
    std: np.ndarray
    max_frames: int

    @classmethod
    def fit(cls, seqs: list[np.ndarray]) -> SequenceScaler:
        """Statistics over every frame of the training sequences."""
        frames = np.concatenate(seqs, axis=0).astype(np.float64)
        std = frames.std(axis=0)
        return cls(
            mean=frames.mean(axis=0),
            std=np.where(std > 1e-8, std, 1.0),
            max_frames=max(len(s) for s in seqs),
        )

    def transform(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Standardise, then truncate/zero-pad to ``max_frames``: ``(n, frames, coeffs)``."""
        out = np.full((len(seqs), self.max_frames, len(self.mean)), PAD_VALUE, np.float32)
        for i, seq in enumerate(seqs):
            seq = ((seq[: self.max_frames] - self.mean) / self.std).astype(np.float32)
            # An exact all-zero frame would be read as padding by the mask.
            seq[np.all(seq == PAD_VALUE, axis=1)] = 1e-6
            out[i, : len(seq)] = seq
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "max_frames": self.max_frames}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequenceScaler:
        return cls(np.asarray(d["mean"]), np.asarray(d["std"]), int(d["max_frames"]))


def build_model(
    *,
    n_frames: int,
    n_coeffs: int,
    n_classes: int,
    units: int,
    dense_units: int,
    dropout: float,
    learning_rate: float,
):
    """Masking -> LSTM -> dense -> softmax, compiled with Adam."""
    import keras

    inputs = keras.Input(shape=(n_frames, n_coeffs), name="mfcc")
    x = keras.layers.Masking(mask_value=PAD_VALUE)(inputs)
    x = keras.layers.LSTM(units)(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(dense_units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    model = keras.Model(inputs, outputs, name="ser_lstm")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _live_callback(live_dir: Path):
    """A Keras callback logging epoch metrics with dvclive (``dvc plots`` reads them).

    dvclive's own Keras callback imports TensorFlow; this one needs only Keras 3.
    """
    import keras
    from dvclive import Live

    class LiveCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for name, value in (logs or {}).items():
                self.live.log_metric(name, float(value))
            self.live.next_step()

        def on_train_end(self, logs: dict | None = None) -> None:
            self.live.end()

    return LiveCallback()


def fit_lstm(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: dict[str, Any],
    seed: int,
    live_dir: Path | None = None,
    callbacks: list | None = None,
    verbose: int = 2,
):
    """Train on ``X[train_idx]``, early-stop on ``X[val_idx]``; return ``(model, history)``.

    Parameters
    ----------
    X, y
        Padded standardised sequences ``(n, frames, coeffs)`` and integer labels.
    cfg
        The ``lstm:`` section of params.yaml.
    live_dir
        Where dvclive writes the training curves (``None``: not logged).
    callbacks
        Extra Keras callbacks (e.g. timing in ``benchmarks/bench_lstm.py``).
    """
    import keras
    from sklearn.utils.class_weight import compute_class_weight

    keras.utils.set_random_seed(seed)
    model = build_model(n_frames=X.shape[1], n_coeffs=X.shape[2], n_classes=n_classes,
                        units=cfg["units"], dense_units=cfg["dense_units"],
                        dropout=cfg["dropout"], learning_rate=cfg["learning_rate"])
    class_weight = None
    if cfg["class_weights"]:
        present = np.unique(y[train_idx])
        weights = compute_class_weight("balanced", classes=present, y=y[train_idx])
        class_weight = {int(c): float(w) for c, w in zip(present, weights, strict=True)}
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"],
                                               restore_best_weights=True), *(callbacks or [])]
    if live_dir is not None:
        callbacks.append(_live_callback(live_dir))
    history = model.fit(
        X[train_idx], y[train_idx],
        validation_data=(X[val_idx], y[val_idx]),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], shuffle=True,
        class_weight=class_weight, callbacks=callbacks, verbose=verbose,
    )
    return model, history
