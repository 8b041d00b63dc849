"""Corpus extractors of the feature sets beyond ``mfcc`` (see :mod:`ser.features.sets`).

Each writes one output folder atomically, with the conventions of the MFCC stage
(:mod:`ser.features.extract`):

``summary.parquet``
    Every manifest column, then (summary sets) one float32 ``feat_*`` column per
    feature of :mod:`ser.features.summaries`; the ``logmel`` set writes the manifest
    columns plus ``n_frames`` (it has no summary features: it is for sequence models).
``sequences.parquet`` (``logmel`` only)
    ``path, n_frames, n_coeffs, mfcc`` like the MFCC sequences (the ``mfcc`` column name
    is the table's convention; it holds log-mel bands + deltas here).
``skipped.csv``
    ``path,reason`` of every clip that could not be decoded.

Both Parquet files carry the feature set's fingerprint under the schema-metadata key
:data:`ser.features.extract.METADATA_KEY`. ``params`` is the ``mfcc:`` section (decoding,
trimming and ``max_seconds`` are shared by every set) with the set's own section under
``options``; see
:func:`ser.features.sets.feature_set_params`.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ser.errors import SerError
from ser.features.extract import (
    METADATA_KEY,
    ROW_GROUP_ROWS,
    SEQUENCES_FILE,
    SKIPPED_FILE,
    SUMMARY_FILE,
    ExtractionResult,
    resolve_workers,
    sequences_writer,
)
from ser.features.mfcc import FeatureParams, feature_params_fingerprint
from ser.outputs import atomic_path

#: Version of the log-mel table definition (bump when its values change).
LOGMEL_VERSION = 1


def _manifest(manifest: str | Path | pd.DataFrame,
              rows: tuple[int, int] | None = None) -> pd.DataFrame:
    if isinstance(manifest, pd.DataFrame):
        table = manifest.reset_index(drop=True)
    else:
        from ser.parquet_tables import read_table

        table = read_table(manifest, what="manifest", hint="run the manifest stage first")
    if rows is not None:  # one shard: a contiguous slice of the rows
        table = table.iloc[rows[0]:rows[1]].reset_index(drop=True)
    return table


def _with_metadata(table: pa.Table, fingerprint: dict[str, Any]) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(fingerprint, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def write_summary_frame(frame: pd.DataFrame, fingerprint: dict[str, Any],
                        path: str | Path) -> None:
    """Write a summary table built in memory (summary sets, logmel's clip index) with its
    fingerprint; the shard merge writes the pooled shards through it too."""
    pq.write_table(_with_metadata(pa.Table.from_pandas(frame, preserve_index=False),
                                  fingerprint), path)


def _write_skipped(path: Path, skipped: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "reason"])
        writer.writerows(skipped)


def _check_rows(n_rows: int, n_files: int, skipped: list[tuple[str, str]], *,
                shard: bool = False) -> None:
    if n_rows == 0 and not shard:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise SerError(f"none of the {n_files} files could be decoded{first}; "
                       "check the manifest paths and the audio files")


def extract_summary_set(manifest: str | Path | pd.DataFrame, out_dir: str | Path, *,
                        name: str, params: Mapping[str, Any], workers: int | None = None,
                        progress: bool = True, desc: str | None = None,
                        rows: tuple[int, int] | None = None) -> ExtractionResult:
    """Write ``summary.parquet`` + ``skipped.csv`` of summary feature set ``name``.

    Parameters
    ----------
    manifest
        Manifest Parquet path or frame (``path`` column and the other manifest columns).
    out_dir
        Output folder, replaced atomically on success only.
    name
        A set of :data:`ser.features.summaries.SUMMARY_VECTORS` (``egemaps``, ...).
    params
        The ``mfcc:`` section with the set's ``workers`` (and its section as ``options``).
    workers
        Processes (``None``: ``params['workers']``; 0: all cores).
    progress, desc
        tqdm progress bar on stderr and its label.
    rows
        ``(start, stop)``: only these manifest rows (one shard, see
        :mod:`ser.features.shards`); a shard of which no clip decodes writes only
        ``skipped.csv``.
    """
    from ser.features.summaries import extract_feature_set, feature_set_fingerprint

    start = time.perf_counter()
    table = _manifest(manifest, rows)
    n_workers = resolve_workers(workers, params={"workers": params.get("workers", 1)})
    paths = [str(p) for p in table["path"]]
    feats, skipped = extract_feature_set(paths, name, params=params, workers=n_workers,
                                         progress=progress)
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    _check_rows(len(feats), len(paths), skipped, shard=rows is not None)
    base = table.set_index(table["path"].astype(str)).loc[feats["path"]].reset_index(drop=True)
    out = pd.concat([base, feats.drop(columns="path").reset_index(drop=True)], axis=1)
    fingerprint = feature_set_fingerprint(name, params)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if len(out):
            write_summary_frame(out, fingerprint, tmp / SUMMARY_FILE)
        _write_skipped(tmp / SKIPPED_FILE, skipped)
    return ExtractionResult(out_dir=Path(out_dir), n_files=len(paths), n_rows=len(out),
                            skipped=skipped, workers=n_workers,
                            seconds=time.perf_counter() - start)


#: The extractors named in :data:`ser.features.sets.FEATURE_SETS`.
extract_mfcc_stats = functools.partial(extract_summary_set, name="mfcc_stats")
extract_egemaps = functools.partial(extract_summary_set, name="egemaps")
extract_egemaps_mfcc = functools.partial(extract_summary_set, name="egemaps_mfcc")


def logmel_fingerprint(params: Mapping[str, Any]) -> dict[str, Any]:
    """Definition of the ``logmel`` sequences: bands, deltas and the decoding settings."""
    return {"feature_set": "logmel", "logmel_version": LOGMEL_VERSION,
            "n_mels": int(params["options"]["n_mels"]),
            "deltas": int(params["options"]["deltas"]),
            "signal": feature_params_fingerprint(params)}


def _logmel_one(item: tuple[int, str], fp: FeatureParams, n_mels: int, deltas: int,
                ) -> tuple[int, np.ndarray | None, str]:
    from ser.features.logmel import logmel_from_file

    index, path = item
    try:
        return index, logmel_from_file(path, params=fp, n_mels=n_mels, deltas=deltas), ""
    except SerError as exc:
        return index, None, str(exc)


def _init_worker() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def extract_logmel(manifest: str | Path | pd.DataFrame, out_dir: str | Path, *,
                   params: Mapping[str, Any], workers: int | None = None,
                   progress: bool = True, desc: str = "logmel",
                   rows: tuple[int, int] | None = None) -> ExtractionResult:
    """Write the ``logmel`` sequences (``n_mels`` bands + ``deltas``) of every clip.

    The ``logmel:`` section gives ``n_mels`` and ``deltas``. Sequences keep their length;
    sequence models crop/pad them (:func:`ser.features.logmel.fix_length`). A shard of
    which no clip decodes writes only ``skipped.csv``. Sequences are written in row
    groups of :data:`ser.features.extract.ROW_GROUP_ROWS` rows, so a merge of shards can
    stream.

    Parameters
    ----------
    manifest
        Manifest Parquet path or frame (``path`` column and the other manifest columns).
    out_dir
        Output folder, replaced atomically on success only.
    params
        The ``mfcc:`` section (decoding) with the ``logmel:`` section under ``options``
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

    start = time.perf_counter()
    fp = FeatureParams.from_mapping(params)
    n_mels, deltas = int(params["options"]["n_mels"]), int(params["options"]["deltas"])
    table = _manifest(manifest, rows)
    items = [(i, str(p)) for i, p in enumerate(table["path"])]
    n_workers = resolve_workers(workers, params={"workers": params.get("workers", 1)})
    results: list[tuple[int, np.ndarray | None, str]] = []
    with tqdm(total=len(items), unit="file", desc=desc, disable=not progress,
              file=sys.stderr) as bar:
        if n_workers == 1 or len(items) < 2:
            for item in items:
                results.append(_logmel_one(item, fp, n_mels, deltas))
                bar.update()
        else:
            fn = functools.partial(_logmel_one, fp=fp, n_mels=n_mels, deltas=deltas)
            with ProcessPoolExecutor(max_workers=min(n_workers, len(items)),
                                     initializer=_init_worker) as pool:
                for res in pool.map(fn, items, chunksize=4):
                    results.append(res)
                    bar.update()
    skipped = [(items[i][1], reason) for i, seq, reason in results if seq is None]
    for path, reason in skipped:
        print(f"warning: skipped {path}: {reason}", file=sys.stderr)
    good = [(i, seq) for i, seq, _ in results if seq is not None]
    _check_rows(len(good), len(items), skipped, shard=rows is not None)
    index = write_sequence_set(table, good, skipped, logmel_fingerprint(params), out_dir)
    return ExtractionResult(out_dir=Path(out_dir), n_files=len(items), n_rows=len(index),
                            skipped=skipped, workers=n_workers,
                            seconds=time.perf_counter() - start)


def write_sequence_set(table: Any, good: list[tuple[int, np.ndarray]],
                       skipped: list[tuple[str, str]], fingerprint: dict[str, Any],
                       out_dir: str | Path) -> Any:
    """Write a sequence set's ``summary.parquet`` (clip index), ``sequences.parquet`` and
    ``skipped.csv`` as the folder ``out_dir``; ``good``: ``(manifest row, (frames, coeffs))``
    pairs. Returns the clip index."""
    import pyarrow as pa

    from ser.features.extract import (
        SKIPPED_FILE,
        SUMMARY_FILE,
    )
    from ser.outputs import atomic_path

    index = table.iloc[[i for i, _ in good]].reset_index(drop=True)
    index["n_frames"] = np.array([s.shape[0] for _, s in good], dtype=np.int32)
    seqs = pa.table({
        "path": pa.array(index["path"].astype(str)),
        "n_frames": pa.array(index["n_frames"], pa.int32()),
        "n_coeffs": pa.array([s.shape[1] for _, s in good], pa.int32()),
        "mfcc": pa.array([s.ravel() for _, s in good], pa.list_(pa.float32())),
    })
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if good:
            write_summary_frame(index, fingerprint, tmp / SUMMARY_FILE)
            seqs = _with_metadata(seqs, fingerprint)
            with sequences_writer(tmp / SEQUENCES_FILE, seqs.schema) as writer:
                writer.write_table(seqs, row_group_size=ROW_GROUP_ROWS)
        _write_skipped(tmp / SKIPPED_FILE, skipped)
    return index
