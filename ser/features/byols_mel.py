"""``byols_mel``: the BYOL-S front end's log-mel frames, for the ``byols_ft`` model.

A sequences-only feature set: per clip the ``(frames, 64)`` log-mel of
:func:`ser.features.byols.byols_logmel` (16 kHz, 64 HTK bands 60-7,800 Hz, hop 10 ms,
``log(x + eps)``), *not* standardised: the model standardises its input with
statistics of its own training clips. Decoding follows the ``mfcc:`` section (trim,
``max_seconds``) at 16 kHz as the ``byols`` set does. Written like the ``logmel`` set
(:func:`ser.features.corpus_sets.extract_logmel`): ``summary.parquet`` (manifest
columns + ``n_frames``), ``sequences.parquet`` and ``skipped.csv``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ser.features import byols

#: Bump when the values the same parameters produce change.
BYOLS_MEL_VERSION = 1


def byols_mel_fingerprint(params: Mapping[str, Any]) -> dict[str, Any]:
    """Definition of the ``byols_mel`` sequences: the front end and the decoding."""
    from ser.features.mfcc import feature_params_fingerprint

    full = byols.byols_fingerprint(params | {"options": {}})
    return {"feature_set": "byols_mel", "byols_mel_version": BYOLS_MEL_VERSION,
            "n_coeffs": byols.N_MELS, "front_end": full["front_end"],
            "signal": feature_params_fingerprint(byols.signal_params(params))}


def sequence_from_file(path: str | Path, *, fingerprint: Mapping[str, Any]) -> np.ndarray:
    """The ``(frames, 64)`` log-mel of one file for a model whose card holds
    ``fingerprint`` (raises the one-line :class:`~ser.features.mfcc.FeatureError`)."""
    return byols.logmel_from_file(path, params=dict(fingerprint["signal"]))


def extract_byols_mel(manifest: Any, out_dir: str | Path, *, params: Mapping[str, Any],
                      workers: int | None = None, progress: bool = True,
                      desc: str = "byols_mel", rows: tuple[int, int] | None = None):
    """Write the ``byols_mel`` sequences of every clip (see the module docstring).

    Writes ``summary.parquet`` (manifest columns + ``n_frames``), ``sequences.parquet``
    and ``skipped.csv``.

    Parameters
    ----------
    manifest
        Manifest Parquet path or frame (``path`` column and the other manifest columns).
    out_dir
        Output folder, replaced atomically on success only.
    params
        The ``mfcc:`` section (decoding) with the ``byols_mel:`` section under ``options``
        (:func:`ser.features.sets.feature_set_params`).
    workers
        Processes; ``None``: the set's ``workers``.
    progress
        Show a progress bar on stderr.
    desc
        Progress-bar label.
    rows
        ``(start, stop)``: only these manifest rows (one shard, :mod:`ser.features.shards`).

    Returns
    -------
    ExtractionResult
    """
    from tqdm import tqdm

    from ser.features.corpus_sets import (
        _check_rows,
        _manifest,
        write_sequence_set,
    )
    from ser.features.extract import (
        ExtractionResult,
        resolve_workers,
    )

    start = time.perf_counter()
    table = _manifest(manifest, rows)
    n_workers = resolve_workers(workers, params={"workers": params.get("workers", 1)})
    items = [(i, str(p)) for i, p in enumerate(table["path"])]
    good: list[tuple[int, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    pool = byols._logmel_pool(n_workers if len(items) > 1 else 1)
    with tqdm(total=len(items), unit="file", desc=desc, disable=not progress,
              file=sys.stderr) as bar, contextlib.ExitStack() as stack:
        if pool is not None:
            stack.enter_context(pool)
        for i, mel, reason in byols._iter_logmels(items, dict(params), pool):
            if mel is None:
                skipped.append((items[i][1], reason))
            else:
                good.append((i, mel))
            bar.update()
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    _check_rows(len(good), len(items), skipped, shard=rows is not None)
    index = write_sequence_set(table, good, skipped, byols_mel_fingerprint(params), out_dir)
    return ExtractionResult(out_dir=Path(out_dir), n_files=len(items), n_rows=len(index),
                            skipped=skipped, workers=n_workers,
                            seconds=time.perf_counter() - start)
