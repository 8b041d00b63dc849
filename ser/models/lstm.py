"""The LSTM on MFCC sequences (Keras 3, JAX backend).

Sequences are standardised with statistics of the training clips only, padded
to one length with zeros and masked, so padding never reaches the LSTM.

With ``bucket_frames`` (params.yaml ``lstm_seed:``), training batches hold clips of
similar length, each batch cut to its bucket's length: Keras on JAX steps through masked
padding, so a batch padded to the longest clip of the corpus costs as much as one of
long clips. Each bucket is one input shape (JAX compiles the training step once per
bucket): every batch is full, the last one of a bucket topped up with clips of that
bucket weighted 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

PAD_VALUE = 0.0

#: How training holds its clips' MFCC frames: float16 halves the memory of the file's
#: float32 (about 170 MB less for 10k clips, the largest train job's margin under 1.5 GB);
#: rounding moves a frame by about 1e-3 of its coefficient's spread (tested), and each
#: batch is standardised in float64 and cast to float32 when drawn.
SEQUENCE_DTYPE = np.float16

#: Clips per validation batch (forward passes only: larger batches are cheaper per clip;
#: the validation loss does not depend on the batching).
VALIDATION_BATCH = 128


@dataclass(frozen=True)
class SequenceScaler:
    """Per-coefficient standardisation fit on training frames, plus the padded length."""

    mean: np.ndarray
    std: np.ndarray
    max_frames: int

    @classmethod
    def fit(cls, seqs: list[np.ndarray], *, chunk: int = 512) -> SequenceScaler:
        """Statistics over every frame of the training sequences (two passes over chunks
        of ``chunk`` sequences, so memory does not grow with the corpus)."""
        def chunks():
            for start in range(0, len(seqs), chunk):
                yield np.concatenate(seqs[start:start + chunk], axis=0).astype(np.float64)

        n = sum(len(s) for s in seqs)
        mean = sum(frames.sum(axis=0) for frames in chunks()) / n
        var = sum(np.square(frames - mean).sum(axis=0) for frames in chunks()) / n
        std = np.sqrt(var)
        return cls(mean=mean, std=np.where(std > 1e-8, std, 1.0),
                   max_frames=max(len(s) for s in seqs))

    def standardize(self, seqs: list[np.ndarray]) -> list[np.ndarray]:
        """Standardised float32 sequences, truncated to ``max_frames``, not padded."""
        out = []
        for seq in seqs:
            seq = ((seq[: self.max_frames] - self.mean) / self.std).astype(np.float32)
            # An exact all-zero frame would be read as padding by the mask.
            seq[np.all(seq == PAD_VALUE, axis=1)] = 1e-6
            out.append(seq)
        return out

    def transform(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Standardise, then truncate/zero-pad to ``max_frames``: ``(n, frames, coeffs)``."""
        return pad_sequences(self.standardize(seqs), self.max_frames, len(self.mean))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "max_frames": self.max_frames}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequenceScaler:
        return cls(np.asarray(d["mean"]), np.asarray(d["std"]), int(d["max_frames"]))


class StandardizedSequences:
    """Sequences standardised by ``scaler`` when read (:meth:`SequenceScaler.standardize`):
    training holds the raw sequences only, not a standardised copy of them.

    List-like for :func:`fit_lstm`: ``len``, ``[i]`` and :meth:`lengths`.
    """

    def __init__(self, seqs: list[np.ndarray], scaler: SequenceScaler) -> None:
        self.seqs, self.scaler = seqs, scaler

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.scaler.standardize([self.seqs[i]])[0]

    def lengths(self) -> np.ndarray:
        """Frames of each standardised sequence (cut to the scaler's ``max_frames``)."""
        return np.array([min(len(s), self.scaler.max_frames) for s in self.seqs], np.int64)


def training_inputs(seqs: list[np.ndarray], fit_idx: np.ndarray, *,
                    bucket_frames: int | None):
    """What :func:`fit_lstm` reads, as training prepares it: ``(scaler, X)``.

    The clips are held as :data:`SEQUENCE_DTYPE`; the scaler's statistics come from the
    fitting clips ``seqs[fit_idx]`` only. With length buckets ``X`` standardises each clip
    when its batch is drawn (no padded tensor nor standardised copy of the corpus is
    held); without, it is the padded tensor.
    """
    seqs = [np.asarray(s, SEQUENCE_DTYPE) for s in seqs]
    scaler = SequenceScaler.fit([seqs[i] for i in fit_idx])
    X = StandardizedSequences(seqs, scaler) if bucket_frames else scaler.transform(seqs)
    return scaler, X


def pad_sequences(seqs: list[np.ndarray], frames: int, n_coeffs: int) -> np.ndarray:
    """``(n, frames, n_coeffs)`` float32: each sequence cut to ``frames``, zero-padded."""
    out = np.full((len(seqs), frames, n_coeffs), PAD_VALUE, np.float32)
    for i, seq in enumerate(seqs):
        seq = seq[:frames]
        out[i, : len(seq)] = seq
    return out


def sequence_lengths(X: np.ndarray) -> np.ndarray:
    """Frames before the padding of each padded sequence of ``X`` ``(n, frames, coeffs)``
    (:meth:`SequenceScaler.transform` never leaves a padding frame inside a clip)."""
    real = np.any(X != PAD_VALUE, axis=2)
    last = X.shape[1] - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 0).astype(np.int64)


def bucket_batches(lengths: np.ndarray, *, batch_size: int, bucket_frames: int,
                   max_frames: int, rng: np.random.Generator,
                   ) -> list[tuple[np.ndarray, int, int]]:
    """One epoch of batches of clips of similar length.

    A clip's bucket is its length rounded up to a multiple of ``bucket_frames`` (at most
    ``max_frames``). Clips are shuffled within their bucket and cut into batches of
    ``batch_size``; a bucket's last batch is topped up with clips drawn again from that
    bucket; the batch order is shuffled. Returns ``(positions, n_real, frames)`` per
    batch: positions into ``lengths``, how many of them count (the rest are top-ups), and
    the length every clip of the batch is cut or padded to.
    """
    buckets = np.minimum(-(-lengths // bucket_frames) * bucket_frames, max_frames)
    buckets = np.maximum(buckets, 1)
    batches = []
    for frames in np.unique(buckets):
        members = rng.permutation(np.flatnonzero(buckets == frames))
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            n_real = len(chunk)
            if n_real < batch_size:
                chunk = np.concatenate([chunk, rng.choice(members, batch_size - n_real)])
            batches.append((chunk, n_real, int(frames)))
    return [batches[i] for i in rng.permutation(len(batches))]


def length_sorted_batches(lengths: np.ndarray, *, batch_size: int, bucket_frames: int,
                          max_frames: int) -> list[tuple[np.ndarray, int]]:
    """Batches for evaluating (no shuffling, no top-ups): clips in order of length, cut
    into batches of ``batch_size``, each padded to its longest clip rounded up to a
    multiple of ``bucket_frames`` (at most ``max_frames``). Returns ``(positions,
    frames)`` per batch; every clip is in exactly one batch, so a mean over the batches
    weighted by their sizes is the mean over the clips. The shapes are one per bucket
    plus the last batch's, so few compiles."""
    order = np.argsort(lengths, kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        longest = int(lengths[chunk].max()) if len(chunk) else 1
        frames = min(-(-longest // bucket_frames) * bucket_frames, max_frames)
        batches.append((chunk, max(frames, 1)))
    return batches


def _validation_dataset(seqs, positions: np.ndarray, y: np.ndarray, lengths: np.ndarray, *,
                        n_coeffs: int, batch_size: int, bucket_frames: int,
                        max_frames: int):
    """A Keras ``PyDataset`` of :func:`length_sorted_batches` over ``seqs[positions]``:
    validation steps through about the clips' own lengths, not every clip padded to the
    longest (masking makes the loss the same)."""
    import keras

    plan = length_sorted_batches(lengths, batch_size=batch_size,
                                 bucket_frames=bucket_frames, max_frames=max_frames)

    class SortedByLength(keras.utils.PyDataset):
        def __len__(self) -> int:
            return len(plan)

        def __getitem__(self, i: int):
            idx, frames = plan[i]
            batch = pad_sequences([seqs[positions[j]] for j in idx], frames, n_coeffs)
            return batch, y[idx]

    return SortedByLength()


def _bucket_dataset(seqs, positions: np.ndarray, y: np.ndarray, weights: np.ndarray,
                    lengths: np.ndarray, *, n_coeffs: int, batch_size: int,
                    bucket_frames: int, seed: int):
    """A Keras ``PyDataset`` of :func:`bucket_batches` over the standardised, unpadded
    sequences ``seqs[positions]`` (each batch padded to its bucket when drawn), re-drawn
    each epoch (seeded). ``y``, ``weights`` and ``lengths`` go with ``positions``."""
    import keras

    max_frames = int(lengths.max())

    class LengthBuckets(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.plan()

        def plan(self) -> None:
            rng = np.random.default_rng([seed, self.epoch])
            self.batches = bucket_batches(lengths, batch_size=batch_size,
                                          bucket_frames=bucket_frames,
                                          max_frames=max_frames, rng=rng)

        def __len__(self) -> int:
            return len(self.batches)

        def __getitem__(self, i: int):
            idx, n_real, frames = self.batches[i]
            w = weights[idx].astype(np.float32)
            w[n_real:] = 0.0  # top-ups fill the shape but do not count
            batch = pad_sequences([seqs[positions[j]] for j in idx], frames, n_coeffs)
            return batch, y[idx], w

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.plan()

    return LengthBuckets()


def build_model(
    *,
    n_frames: int | None,
    n_coeffs: int,
    n_classes: int,
    units: int,
    dense_units: int,
    dropout: float,
    learning_rate: float,
):
    """Masking -> LSTM -> dense -> softmax, compiled with Adam (``n_frames=None``: any
    sequence length)."""
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
        Padded standardised sequences ``(n, frames, coeffs)`` (or, with
        ``cfg["bucket_frames"]``, standardised unpadded ones: a list from
        :meth:`SequenceScaler.standardize`, or :class:`StandardizedSequences`, which
        standardises each clip when its batch is drawn) and integer labels.
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
    bucket = cfg.get("bucket_frames")
    if not bucket and not isinstance(X, np.ndarray):
        raise ValueError("unpadded sequences need cfg['bucket_frames']")
    n_coeffs = X.shape[2] if isinstance(X, np.ndarray) else X[0].shape[1]
    model = build_model(n_frames=None if bucket else X.shape[1], n_coeffs=n_coeffs,
                        n_classes=n_classes, units=cfg["units"],
                        dense_units=cfg["dense_units"], dropout=cfg["dropout"],
                        learning_rate=cfg["learning_rate"])
    class_weight = None
    if cfg["class_weights"]:
        present = np.unique(y[train_idx])
        weights = compute_class_weight("balanced", classes=present, y=y[train_idx])
        class_weight = {int(c): float(w) for c, w in zip(present, weights, strict=True)}
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"],
                                               restore_best_weights=True), *(callbacks or [])]
    if live_dir is not None:
        callbacks.append(_live_callback(live_dir))
    if bucket:
        sample_weight = np.ones(len(train_idx), np.float32)
        if class_weight is not None:
            sample_weight = np.array([class_weight[int(c)] for c in y[train_idx]], np.float32)
        if isinstance(X, np.ndarray):  # views of the padded rows, no copy
            lengths = sequence_lengths(X)
            seqs = [X[i, : lengths[i]] for i in range(len(X))]
        else:
            seqs = X
            lengths = X.lengths() if hasattr(X, "lengths") else \
                np.array([len(s) for s in X], np.int64)
        data = _bucket_dataset(seqs, np.asarray(train_idx), y[train_idx], sample_weight,
                               lengths[train_idx], n_coeffs=n_coeffs,
                               batch_size=cfg["batch_size"], bucket_frames=int(bucket),
                               seed=seed)
        # Validation runs each epoch: in batches of similar length, padded per batch
        # (a padded copy of the validation clips is neither computed on nor held).
        val_data = _validation_dataset(seqs, np.asarray(val_idx), y[val_idx],
                                       lengths[val_idx], n_coeffs=n_coeffs,
                                       batch_size=VALIDATION_BATCH,
                                       bucket_frames=int(bucket),
                                       max_frames=int(lengths.max()))
        history = model.fit(data, validation_data=val_data, epochs=cfg["epochs"],
                            callbacks=callbacks, verbose=verbose)
        return model, history
    history = model.fit(
        X[train_idx], y[train_idx],
        validation_data=(X[val_idx], y[val_idx]),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], shuffle=True,
        class_weight=class_weight, callbacks=callbacks, verbose=verbose,
    )
    return model, history
