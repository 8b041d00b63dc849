"""Training-time augmentation of frame sequences (numpy, deterministic by seed).

:func:`augment_batch` returns a perturbed copy of fixed-length sequences
``(n, frames, coeffs)`` (log-mel bands, optionally followed by delta blocks).
It is meant for the *fitting* clips of a training run only:
:func:`ser.models.crnn.fit_crnn` calls it once per epoch on ``X[train_idx]``,
so validation speakers and test clips are never augmented.

Per clip, each with its own random draw from ``rng``:

- **time shift**: circular roll by up to ``max_shift`` frames (sequences are
  wrap-padded by :func:`ser.features.logmel.fix_length`, so a roll keeps speech
  continuous);
- **band shift**: the mel bands move up or down by up to ``max_band_shift``
  bands, edge bands repeated, in every delta block alike -- a cheap
  vocal-tract-length / pitch perturbation that makes speaker differences less
  informative;
- **gain**: a constant offset of up to ``gain`` standard deviations of the
  static block, added to the static bands (a level change in dB);
- **noise**: Gaussian noise of ``noise`` standard deviations, per value.

All magnitudes are relative to the spread of the batch itself, so the same
settings work for raw dB values and for speaker-standardised sequences.
"""

from __future__ import annotations

import numpy as np


def augment_batch(X: np.ndarray, rng: np.random.Generator, *, max_shift: int = 30,
                  max_band_shift: int = 2, gain: float = 0.3, noise: float = 0.05,
                  n_bands: int | None = None) -> np.ndarray:
    """Return an augmented copy of ``X`` ``(n, frames, coeffs)`` (``X`` is left unchanged).

    Parameters
    ----------
    X
        Fixed-length sequences.
    rng
        Source of randomness (``np.random.default_rng(seed)``): equal seeds give
        equal outputs.
    max_shift
        Largest circular time shift in frames (0: none).
    max_band_shift
        Largest shift of the bands (0: none).
    gain
        Largest level offset, in standard deviations of the static block.
    noise
        Standard deviation of additive noise, in standard deviations of each
        coefficient.
    n_bands
        Coefficients per block (static bands, then equally sized delta blocks);
        ``None``: all coefficients form one block.
    """
    X = np.asarray(X, np.float32)
    if X.ndim != 3:
        raise ValueError(f"expected (n, frames, coeffs), got shape {X.shape}")
    n, n_frames, n_coeffs = X.shape
    bands = n_coeffs if n_bands is None else int(n_bands)
    if n_coeffs % bands:
        raise ValueError(f"{n_coeffs} coefficients do not split into blocks of {bands}")
    out = X.copy()
    if n == 0:
        return out
    std = X.reshape(-1, n_coeffs).std(axis=0).astype(np.float32) + 1e-6
    static_std = float(std[:bands].mean())
    shifts = rng.integers(-max_shift, max_shift + 1, size=n) if max_shift else np.zeros(n, int)
    band_shifts = (rng.integers(-max_band_shift, max_band_shift + 1, size=n)
                   if max_band_shift else np.zeros(n, int))
    gains = rng.uniform(-gain, gain, size=n).astype(np.float32) * static_std
    base = np.arange(bands)
    for i in range(n):
        seq = out[i]
        if shifts[i]:
            seq = np.roll(seq, shifts[i], axis=0)
        if band_shifts[i]:
            src = np.clip(base - band_shifts[i], 0, bands - 1)
            cols = np.concatenate([src + b * bands for b in range(n_coeffs // bands)])
            seq = seq[:, cols]
        seq = np.array(seq, np.float32)
        seq[:, :bands] += gains[i]
        out[i] = seq
    if noise:
        out += rng.standard_normal(out.shape, dtype=np.float32) * (noise * std)
    return out
