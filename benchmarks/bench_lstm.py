"""Per-epoch cost of the project's LSTM training loop vs a bare ``model.fit``, and of
length-bucketed batches (``lstm_seed.bucket_frames``) vs batches padded to the longest clip.

All train the same architecture on the same in-memory tensors (clips of random length
between a fifth of ``--frames`` and ``--frames``, zero-padded and masked) with the same
batch size and validation data; ours adds class weights, early stopping and dvclive
logging. The first epoch (JIT compilation: once per bucket when bucketed) is excluded and
reported apart; the median of the remaining epochs is compared.

    python benchmarks/bench_lstm.py [--clips 400 --frames 200 --epochs 6 --bucket-frames 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ser.models.lstm import build_model, fit_lstm  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--coeffs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--bucket-frames", type=int, default=50)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.clips, args.frames, args.coeffs)).astype(np.float32)
    lengths = rng.integers(args.frames // 5, args.frames + 1, args.clips)
    X[np.arange(args.frames)[None, :] >= lengths[:, None]] = 0.0  # padding (masked)
    y = rng.integers(0, 7, args.clips).astype(np.int32)
    n_val = args.clips // 5
    train_idx, val_idx = np.arange(n_val, args.clips), np.arange(n_val)
    cfg = {"units": 64, "dense_units": 32, "dropout": 0.3, "learning_rate": 0.002,
           "batch_size": 32, "epochs": args.epochs, "patience": args.epochs + 1,
           "validation_share": 0.2, "class_weights": True}

    bare_timer = EpochTimer()
    keras.utils.set_random_seed(0)
    bare = build_model(n_frames=args.frames, n_coeffs=args.coeffs, n_classes=7,
                       units=cfg["units"], dense_units=cfg["dense_units"],
                       dropout=cfg["dropout"], learning_rate=cfg["learning_rate"])
    bare.fit(X[train_idx], y[train_idx], validation_data=(X[val_idx], y[val_idx]),
             epochs=args.epochs, batch_size=cfg["batch_size"], callbacks=[bare_timer],
             verbose=0)

    ours_timer = EpochTimer()
    with tempfile.TemporaryDirectory() as live:
        fit_lstm(X, y, n_classes=7, train_idx=train_idx, val_idx=val_idx, cfg=cfg, seed=0,
                 live_dir=Path(live), callbacks=[ours_timer], verbose=0)

    bucket_timer = EpochTimer()
    fit_lstm(X, y, n_classes=7, train_idx=train_idx, val_idx=val_idx,
             cfg=cfg | {"bucket_frames": args.bucket_frames}, seed=0,
             callbacks=[bucket_timer], verbose=0)

    bare_epoch = statistics.median(bare_timer.times[1:])
    ours_epoch = statistics.median(ours_timer.times[1:])
    bucket_epoch = statistics.median(bucket_timer.times[1:])
    print(f"data: {args.clips} clips x {args.frames} frames x {args.coeffs} coeffs, "
          f"batch {cfg['batch_size']}, backend {keras.backend.backend()}")
    print(f"bare model.fit : {bare_epoch:.3f} s/epoch (first epoch incl. compile "
          f"{bare_timer.times[0]:.1f} s)")
    print(f"our fit_lstm   : {ours_epoch:.3f} s/epoch (first epoch incl. compile "
          f"{ours_timer.times[0]:.1f} s)")
    print(f"ratio ours/bare: {ours_epoch / bare_epoch:.2f}x (target <= 1.2x)")
    print(f"bucketed       : {bucket_epoch:.3f} s/epoch (first epoch incl. compile "
          f"{bucket_timer.times[0]:.1f} s; buckets of {args.bucket_frames} frames)")
    print(f"ratio bucketed/padded (ours): {bucket_epoch / ours_epoch:.2f}x per epoch; "
          f"{args.epochs} epochs incl. compile: "
          f"{sum(bucket_timer.times) / sum(ours_timer.times):.2f}x")


if __name__ == "__main__":
    main()
