"""BYOL-S: a pretrained speech encoder (AudioNTT2020, 512-d) as the ``byols`` feature set.

BYOL-S (SERAB, Scheidwasser-Clow et al., ICASSP 2022) is a 3-block CNN pretrained
self-supervised on the speech part of AudioSet; its weights (MIT licence, notice in
``ser/features/weights/BYOLS_LICENSE.txt``) ship with the package as
``ser/features/weights/byols.npz`` (converted from the original ``.pth`` by
``python -m ser.features.byols convert``; no pickle is involved in reading either).

Per clip:

1. Decoding exactly as the other sets (:func:`ser.audio.load_audio`, then
   :func:`ser.features.mfcc.prepare_signal`'s trim / ``max_seconds`` steps of the
   ``mfcc:`` section) but always at 16 kHz, the encoder's rate. At most
   ``max_seconds + READ_MARGIN_SECONDS`` are decoded (all with ``max_seconds: null``).
2. The original front end (torchaudio ``MelSpectrogram`` defaults otherwise): periodic
   Hann window of 400 samples centred in ``n_fft`` 1024, hop 160, centred frames with
   reflect padding, power 2, 64 HTK mel bands 60-7,800 Hz without filter normalisation
   (``librosa.filters.mel(htk=True, norm=None)``), then ``log(x + float32 eps)``
   (:func:`byols_logmel`).
3. Input standardisation ``(x - norm_mean) / norm_std`` with two scalars from the
   ``byols:`` section (see *Standardisation* below).
4. The encoder: three blocks Conv2D(3x3, 64) -> BatchNorm -> ReLU -> MaxPool(2) on
   (time, mel), frames of 8 mel x 64 channels (mel-major) -> Dense(512) ReLU -> Dense(512)
   ReLU, then mean + max over time: 512 values, written as ``feat_byols_000`` ...
   ``feat_byols_511``. Frozen embeddings are computed in NumPy, one clip at a time
   (:mod:`ser.features.byols_inference`: no JAX or Keras in extraction or prediction, so
   a clip's bytes never depend on the clips encoded with it and memory stays flat);
   the same network as a Keras 3 model (:func:`build_encoder`) is what fine-tuning
   (:mod:`ser.models.byols_ft`) trains, tested to give the same embeddings.

Standardisation
    The original standardises the log-mel input with a dataset mean and std (two
    scalars). Embeddings are extracted once per corpus, before any split exists, so the
    statistics are part of the feature definition: ``byols.norm_mean`` / ``norm_std``
    in ``params.yaml``, recorded in the features' fingerprint and therefore in every
    model card, and prediction reuses exactly the card's values. Compute them from your
    training recordings with ``python -m ser.features.byols stats <dir or files>``.
    The defaults were computed that way from the 12 RAVDESS actors of
    ``../shared/data/ravdess`` (unlabeled audio, no labels used); the real-data
    benchmark does not use them but recomputes them on each fold's training speakers
    only (benchmarks/real_data_bench.py).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import ConfigError, SerError
from ser.features.byols_encoder import build_encoder as build_encoder
from ser.features.byols_frontend import (
    F_MAX,
    F_MIN,
    HOP_LENGTH,
    LOG_EPS,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WIN_LENGTH,
    byols_logmel,
    logmel_from_file,
    prepare_byols_signal,
    signal_params,
)
from ser.features.byols_frontend import TIME_STRIDE as TIME_STRIDE
from ser.features.byols_frontend import mel_filterbank as mel_filterbank
from ser.features.byols_frontend import norm_stats as norm_stats
from ser.features.byols_inference import CHUNK_FRAMES as CHUNK_FRAMES
from ser.features.byols_inference import EMBEDDING_DIM, Encoder, get_encoder
from ser.features.byols_weights import ORIGINAL_COMMIT as ORIGINAL_COMMIT
from ser.features.byols_weights import ORIGINAL_FILE as ORIGINAL_FILE
from ser.features.byols_weights import ORIGINAL_SHA256 as ORIGINAL_SHA256
from ser.features.byols_weights import SHIPPED_SHA256 as SHIPPED_SHA256
from ser.features.byols_weights import SHIPPED_WEIGHTS as SHIPPED_WEIGHTS
from ser.features.byols_weights import arrays_sha256 as arrays_sha256
from ser.features.byols_weights import convert_checkpoint as convert_checkpoint
from ser.features.byols_weights import load_weights
from ser.features.byols_weights import weights_dir as weights_dir
from ser.features.mfcc import FeatureError

#: Bump when the embedding values the same parameters produce change (2: NumPy inference
#: with batch norm folded into the convolutions; values moved by < 1e-5).
BYOLS_VERSION = 2

#: Defaults of ``byols.norm_mean`` / ``norm_std`` (see the module docstring).
DEFAULT_NORM_MEAN = -6.172118
DEFAULT_NORM_STD = 4.193499

FEATURE_NAMES: list[str] = [f"feat_byols_{i:03d}" for i in range(EMBEDDING_DIM)]


# --------------------------------------------------------------------------- the feature set

def byols_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``byols:`` section (``params['options']`` of the feature-set params), defaulted
    and validated."""
    own = dict(params.get("options") or {})
    out = {"weights": own.get("weights"),
           "norm_mean": float(own.get("norm_mean", DEFAULT_NORM_MEAN)),
           "norm_std": float(own.get("norm_std", DEFAULT_NORM_STD))}
    if not out["norm_std"] > 0:
        raise ConfigError(f"byols.norm_std must be positive, got {out['norm_std']:g}")
    return out


def byols_fingerprint(params: Mapping[str, Any]) -> dict[str, Any]:
    """Definition of the ``byols`` embeddings: weights (content checksum), standardisation
    statistics, front end and decoding. Stored with the features and in model cards;
    prediction rebuilds the features from it (:func:`embedding_from_file`)."""
    from ser.features.mfcc import feature_params_fingerprint

    opts = byols_options(params)
    _, digest = load_weights(opts["weights"])
    return {"feature_set": "byols", "byols_version": BYOLS_VERSION,
            "weights": None if opts["weights"] is None else str(opts["weights"]),
            "weights_sha256": digest,
            "norm_mean": opts["norm_mean"], "norm_std": opts["norm_std"],
            "front_end": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT,
                          "win_length": WIN_LENGTH, "hop_length": HOP_LENGTH,
                          "n_mels": N_MELS, "f_min": F_MIN, "f_max": F_MAX,
                          "mel_scale": "htk", "mel_norm": None, "power": 2.0,
                          "center": True, "pad_mode": "reflect", "log_eps": LOG_EPS},
            "pooling": "mean+max over time",
            "signal": feature_params_fingerprint(signal_params(params))}


def _fingerprint_params(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """Feature-set params rebuilt from a stored fingerprint (model card)."""
    return {**fingerprint["signal"],
            "options": {"weights": fingerprint.get("weights"),
                        "norm_mean": fingerprint["norm_mean"],
                        "norm_std": fingerprint["norm_std"]}}


def _checked_encoder(fingerprint: Mapping[str, Any]) -> tuple[Encoder, dict[str, Any]]:
    """The encoder of a model whose card holds ``fingerprint`` (its weights checked against
    the stored checksum) and the rebuilt feature-set params."""
    params = _fingerprint_params(fingerprint)
    opts = byols_options(params)
    encoder = get_encoder(opts["weights"])
    _, digest = load_weights(opts["weights"])
    if digest != fingerprint.get("weights_sha256"):
        raise ConfigError(f"byols weights {opts['weights'] or 'shipped'} (sha256 "
                          f"{digest[:12]}...) are not the ones the model was trained with "
                          f"({str(fingerprint.get('weights_sha256'))[:12]}...)")
    return encoder, params


def embeddings_from_files(paths: Sequence[str | Path], *, fingerprint: Mapping[str, Any],
                          ) -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """``(ok_paths, (n, 512) embeddings, failures)`` of files, for a model whose card holds
    ``fingerprint``: its weights (checked against the stored checksum) and its exact
    standardisation statistics."""
    encoder, params = _checked_encoder(fingerprint)
    opts = byols_options(params)
    ok, mels, failures = [], [], []
    for path in paths:
        try:
            mels.append(logmel_from_file(path, params=params))
            ok.append(str(path))
        except SerError as exc:
            failures.append((str(path), str(exc)))
    emb = (encoder.embed(mels, norm_mean=opts["norm_mean"], norm_std=opts["norm_std"])
           if mels else np.empty((0, EMBEDDING_DIM), np.float32))
    return ok, emb, failures


def embedding_from_signal(y: np.ndarray, *, fingerprint: Mapping[str, Any]) -> np.ndarray:
    """The 512 embedding values of 16 kHz mono samples (a segment of a long recording),
    trimmed and cut as the extraction stage does."""
    encoder, params = _checked_encoder(fingerprint)
    opts = byols_options(params)
    mel = byols_logmel(prepare_byols_signal(y, signal_params(params)))
    return encoder.embed([mel], norm_mean=opts["norm_mean"], norm_std=opts["norm_std"])[0]


def embedding_from_file(path: str | Path, *, fingerprint: Mapping[str, Any]) -> np.ndarray:
    """The 512 embedding values of one file (raises its one-line error)."""
    _, emb, failures = embeddings_from_files([path], fingerprint=fingerprint)
    if failures:
        raise FeatureError(failures[0][1].removeprefix(f"{path}: "), path)
    return emb[0]


def _logmel_item(item: tuple[int, str], params: Mapping[str, Any],
                 ) -> tuple[int, np.ndarray | None, str]:
    index, path = item
    try:
        return index, logmel_from_file(path, params=params), ""
    except SerError as exc:
        return index, None, str(exc)


def _logmel_pool(workers: int):
    """A process pool for the front end (``None``: run in this process).

    Forked, with every worker started at once, when JAX is not loaded (the encoder does
    not load it; a caller such as a benchmark may have); otherwise forkserver (forking a
    process that runs JAX's threads can deadlock), with the front end's libraries
    preloaded in the server once.
    """
    if workers <= 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ser.features.corpus_sets import _init_worker

    if "jax" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                   mp_context=multiprocessing.get_context("fork"))
        pool.submit(int).result()  # fork context: launches every worker now
        return pool
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ser.features.byols", "librosa", "soxr"])
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, mp_context=ctx)


def _iter_logmels(items: list[tuple[int, str]], params: Mapping[str, Any], pool: Any,
                  ) -> Iterator[tuple[int, np.ndarray | None, str]]:
    if pool is None or len(items) < 2:
        for item in items:
            yield _logmel_item(item, params)
        return
    yield from pool.map(functools.partial(_logmel_item, params=params), items, chunksize=4)


#: Clips whose log-mels are held at once during extraction (memory flat in corpus size).
BLOCK_CLIPS = 256


def extract_byols(manifest: Any, out_dir: str | Path, *, params: Mapping[str, Any],
                  workers: int | None = None, progress: bool = True, desc: str = "byols",
                  rows: tuple[int, int] | None = None):
    """Write ``summary.parquet`` (manifest columns + ``feat_byols_*``) and ``skipped.csv``.

    Log-mels are computed by ``workers`` processes, ``BLOCK_CLIPS`` clips at
    a time, and encoded in this process (NumPy, one clip at a time).

    Parameters
    ----------
    manifest
        Manifest Parquet path or frame (``path`` column and the other manifest columns).
    out_dir
        Output folder, replaced atomically on success only.
    params
        The ``mfcc:`` section (decoding) with the ``byols:`` section under ``options``
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
    import pandas as pd
    from tqdm import tqdm

    from ser.features.corpus_sets import (
        _check_rows,
        _manifest,
        _write_skipped,
        write_summary_frame,
    )
    from ser.features.extract import SKIPPED_FILE, SUMMARY_FILE, ExtractionResult, resolve_workers
    from ser.outputs import atomic_path

    start = time.perf_counter()
    table = _manifest(manifest, rows)
    opts = byols_options(params)
    fingerprint = byols_fingerprint(params)
    n_workers = resolve_workers(workers, params={"workers": params.get("workers", 1)})
    items = [(i, str(p)) for i, p in enumerate(table["path"])]
    good_idx: list[int] = []
    embeddings: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    encoder = get_encoder(opts["weights"])
    pool = _logmel_pool(n_workers if len(items) > 1 else 1)
    with tqdm(total=len(items), unit="file", desc=desc, disable=not progress,
              file=sys.stderr) as bar, contextlib.ExitStack() as stack:
        if pool is not None:
            stack.enter_context(pool)
        for b in range(0, len(items), BLOCK_CLIPS):
            block = items[b:b + BLOCK_CLIPS]
            mels: list[np.ndarray] = []
            for i, mel, reason in _iter_logmels(block, params, pool):
                if mel is None:
                    skipped.append((items[i][1], reason))
                else:
                    good_idx.append(i)
                    mels.append(mel)
                bar.update()
            if mels:
                embeddings.append(encoder.embed(mels, norm_mean=opts["norm_mean"],
                                                norm_std=opts["norm_std"]))
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    _check_rows(len(good_idx), len(items), skipped, shard=rows is not None)
    base = table.iloc[good_idx].reset_index(drop=True)
    feats = (np.concatenate(embeddings) if embeddings
             else np.empty((0, EMBEDDING_DIM), np.float32))
    out = pd.concat([base, pd.DataFrame(feats, columns=FEATURE_NAMES)], axis=1)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if len(out):
            write_summary_frame(out, fingerprint, tmp / SUMMARY_FILE)
        _write_skipped(tmp / SKIPPED_FILE, skipped)
    return ExtractionResult(out_dir=Path(out_dir), n_files=len(items), n_rows=len(out),
                            skipped=skipped, workers=n_workers,
                            seconds=time.perf_counter() - start)


if __name__ == "__main__":  # python -m ser.features.byols: the command is ser/cli/byols.py
    from ser.cli.byols import main

    sys.exit(main())
