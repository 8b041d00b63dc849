"""Parallel MFCC extraction of a whole corpus into Parquet, and the loaders.

:func:`extract_features` reads a manifest, computes every clip's features
with :func:`ser.features.mfcc.file_features` in a process pool, and writes one
output folder atomically (a failed or interrupted run leaves the previous
folder, or none, never a half-written one):

``summary.parquet``
    One row per successfully decoded clip, in manifest order: every manifest
    column (same Arrow types), then ``n_frames`` (int32, frames of the
    sequence), ``duration_s`` (float64, decoded length before trimming), then
    one float32 column per summary statistic, ``feat_<coef>_<stat>`` (see
    :func:`ser.features.mfcc.summary_names`). Select the model inputs with
    :func:`feature_columns`.
``sequences.parquet``
    The same rows in the same order: ``path`` (string), ``n_frames`` (int32),
    ``n_coeffs`` (int32) and ``mfcc`` (``list<float32>``): the
    ``(n_frames, n_coeffs)`` sequence flattened row-major (frame after frame).
    :func:`load_sequences` gives them back as arrays without decoding audio.
``skipped.csv``
    ``path,reason`` for every file that could not be decoded (header only if
    none); such files are left out of both Parquet files.

Both Parquet files carry the feature definition
(:func:`ser.features.mfcc.feature_params_fingerprint`) as JSON under the
schema-metadata key ``ser_feature_params``; read it with
:func:`read_feature_params`.

Files go to ``workers`` forked processes in chunks of ``chunk_size``; at
most four chunks per worker are in flight, results are consumed in manifest
order and buffered rows are written one row group at a time, so memory stays
bounded whatever the corpus size. Both files are snappy-compressed.

Output is deterministic: rows follow the manifest, row groups hold
:data:`ROW_GROUP_ROWS` rows whatever the number of workers or chunk size, and
no timestamps are stored, so a rerun writes byte-identical files.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ser.errors import AudioError, SerError
from ser.features.mfcc import (
    DEFAULT_MIN_RMS_DB,
    FEATURE_PREFIX,
    FeatureError,
    FeatureParams,
    feature_params_fingerprint,
    file_features,
    mfcc_sequence,
    mfcc_summary,
    single_threaded_blas,
    summary_names,
)
from ser.outputs import atomic_path

#: Schema-metadata key holding the feature definition (JSON).
METADATA_KEY = b"ser_feature_params"

#: Rows per Parquet row group (fixed, so output bytes do not depend on workers).
ROW_GROUP_ROWS = 1024

#: Files per task sent to a worker.
DEFAULT_CHUNK_SIZE = 8

# The file names of a feature folder (ser.layout owns them).
from ser.layout import SEQUENCES_FILE, SKIPPED_FILE, SUMMARY_FILE  # noqa: E402

_ADDED_COLUMNS = ("n_frames", "duration_s")


@dataclass(frozen=True)
class ExtractionResult:
    """What :func:`extract_features` wrote."""

    out_dir: Path
    n_files: int
    n_rows: int
    skipped: list[tuple[str, str]]
    workers: int
    seconds: float


# --------------------------------------------------------------------------- workers

#: (manifest row, sequence or None, summary or None, duration_s, skip reason)
_Result = tuple[int, np.ndarray | None, np.ndarray | None, float, str]


def keep_freed_memory() -> None:
    """Make glibc reuse freed buffers instead of returning them to the kernel.

    Every clip allocates a few arrays of ~1-2 MB (frames, spectra). By default
    glibc serves those with fresh ``mmap`` pages or trims them off the heap
    when freed, so every clip pays thousands of page faults (measured: ~190k
    faults, ~1 s of CPU for 238 clips). A fixed 32 MB mmap threshold and a
    high trim threshold keep them on the heap for reuse. No-op off glibc.

    Called in every worker; the stage script also calls it for its own
    process (``--workers 1``). It is process-wide, so library callers decide.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD (glibc's maximum)
        libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group: let the parent alone handle it
    # (it cancels the pool and removes the partial output).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    # One BLAS thread for the worker's whole life (the pool already uses the
    # cores). Left at the inherited count, OpenBLAS would start a thread pool
    # in each forked worker that competes with the other workers.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(limits=1, user_api="blas")


def _extract_chunk(items: list[tuple[int, str]], fp: FeatureParams,
                   min_rms_db: float | None = None) -> list[_Result]:
    """Features of a few files; undecodable or silent files become skip records."""
    results: list[_Result] = []
    for index, path in items:
        try:
            seq, summary, duration = file_features(path, params=fp, min_rms_db=min_rms_db)
        except (AudioError, FeatureError) as exc:
            results.append((index, None, None, 0.0, exc.reason))
        else:
            results.append((index, seq, summary, duration, ""))
    return results


def resolve_workers(workers: int | None, *, params: Mapping[str, Any] | None = None) -> int:
    """Number of processes: ``workers``, else ``mfcc.workers``; 0 means all cores; never
    more than the cores this process may run on.

    Parameters
    ----------
    workers
        Explicit count (e.g. from ``--workers``), or ``None`` to use ``params``.
    params
        The ``mfcc:`` section or the whole parameters mapping.
    """
    if workers is None:
        section: Mapping[str, Any] = params or {}
        if "mfcc" in section and isinstance(section["mfcc"], Mapping):
            section = section["mfcc"]
        workers = int(section.get("workers", 0))
    if workers < 0:
        raise SerError(f"workers must be >= 0 (0 = all cores), got {workers}")
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    # More processes than cores only adds memory (each worker holds its own buffers).
    return max(1, cores if workers == 0 else min(workers, cores))


def _warm_up(fp: FeatureParams) -> None:
    """Do every first-call cost here, once, before the workers are forked.

    librosa loads its submodules lazily; running the pipeline on a short
    synthetic signal imports them, builds the cached filterbank and the BLAS
    controller, so forked workers inherit all of it instead of each paying
    for it again.
    """
    import librosa

    librosa.resample(np.zeros(512, np.float32), orig_sr=2 * fp.sample_rate,
                     target_sr=fp.sample_rate, res_type="soxr_hq")
    y = 0.1 * np.random.default_rng(0).standard_normal(4 * fp.n_fft).astype(np.float32)
    mfcc_summary(mfcc_sequence(y, fp.sample_rate, params=fp))


#: Libraries whose own background threads make a plain fork() unsafe.
_FORK_UNSAFE_MODULES = ("jax", "tensorflow", "torch")


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork on Linux (workers start in milliseconds and inherit the imported
    libraries and cached filterbank), unless a library that runs its own
    threads (JAX, ...) is loaded in this process: then forkserver, which forks
    from a clean single-threaded server, or spawn where that is missing."""
    if sys.platform.startswith("linux") and not any(m in sys.modules
                                                    for m in _FORK_UNSAFE_MODULES):
        return multiprocessing.get_context("fork")
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ser.features.extract"])
        return context
    return multiprocessing.get_context("spawn")


class _Results:
    """Chunk results in submission order, with at most a few chunks in flight.

    The pool's processes are started here, in the constructor, so that they
    are forked before the progress bar starts its monitor thread.
    """

    def __init__(self, chunks: Iterable[list[tuple[int, str]]], fp: FeatureParams, *,
                 workers: int, min_rms_db: float | None = None) -> None:
        self.chunks = iter(chunks)
        self.fp = fp
        self.min_rms_db = min_rms_db
        self.pool: ProcessPoolExecutor | None = None
        self.pending: deque = deque()
        if workers > 1:
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(),
                                            initializer=_init_worker)
            try:
                self._submit(4 * workers)
            except BaseException:
                self.close()
                raise

    def _submit(self, n: int) -> None:
        assert self.pool is not None
        for chunk in islice(self.chunks, n):
            self.pending.append(self.pool.submit(_extract_chunk, chunk, self.fp,
                                                  self.min_rms_db))

    def __iter__(self) -> Iterator[list[_Result]]:
        if self.pool is None:
            # One BLAS limit for the whole run instead of one per clip.
            with single_threaded_blas():
                for chunk in self.chunks:
                    yield _extract_chunk(chunk, self.fp, self.min_rms_db)
            return
        while self.pending:
            try:
                results = self.pending.popleft().result()
            except BrokenProcessPool:
                raise SerError("a feature-extraction worker died (out of memory?); "
                               "rerun with --workers 1 to find the file") from None
            self._submit(1)
            if not self.pending:  # all done: let the workers exit while we write
                self.pool.shutdown(wait=False)
            yield results

    def close(self) -> None:
        """Cancel what has not started and wait for the running tasks."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            self.pending.clear()


# --------------------------------------------------------------------------- writing

def _read_manifest(manifest: str | Path | pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(manifest, pa.Table):
        table = manifest
    elif isinstance(manifest, pd.DataFrame):
        table = pa.Table.from_pandas(manifest, preserve_index=False)
    else:
        path = Path(manifest)
        if not path.is_file():
            raise SerError(f"{path}: manifest not found; run the manifest stage first")
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise SerError(f"{path}: not a readable Parquet manifest ({exc})") from None
    table = table.drop_columns([c for c in table.column_names
                                if c.startswith("__index_level_")])
    table = table.replace_schema_metadata(None)
    if "path" not in table.column_names:
        raise SerError("manifest has no 'path' column")
    clash = [c for c in table.column_names
             if c in _ADDED_COLUMNS or c.startswith(FEATURE_PREFIX)]
    if clash:
        raise SerError(f"manifest columns {clash} clash with the feature columns")
    if table.num_rows == 0:
        raise SerError("manifest has no rows; nothing to extract")
    if table.column("path").null_count:
        raise SerError("manifest has rows without a path")
    return table.combine_chunks()


def summary_writer(path: str | Path, schema: pa.Schema) -> pq.ParquetWriter:
    """The writer of a streamed ``summary.parquet`` (also used by the shard merge).

    Dictionary-encodes only the text columns (never the floats) and uses snappy:
    zstd saves ~7% on float data but doubles write time.
    """
    text = [f.name for f in schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]
    return pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=text)


def sequences_writer(path: str | Path, schema: pa.Schema) -> pq.ParquetWriter:
    """The writer of every ``sequences.parquet`` (snappy, no dictionary); tables are
    written in row groups of :data:`ROW_GROUP_ROWS` rows."""
    return pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=False)


class _ParquetSink:
    """Buffers finished rows and writes fixed-size row groups to both files."""

    def __init__(self, folder: Path, manifest: pa.Table, fp: FeatureParams) -> None:
        self.manifest = manifest
        self.names = summary_names(fp.n_coeffs, deltas=fp.deltas)
        self.n_coeffs = fp.n_coeffs
        metadata = {METADATA_KEY: json.dumps(feature_params_fingerprint(fp),
                                             sort_keys=True).encode()}
        self.summary_schema = pa.schema(
            list(manifest.schema)
            + [pa.field("n_frames", pa.int32()), pa.field("duration_s", pa.float64())]
            + [pa.field(name, pa.float32()) for name in self.names],
            metadata=metadata)
        self.seq_schema = pa.schema(
            [pa.field("path", pa.string()), pa.field("n_frames", pa.int32()),
             pa.field("n_coeffs", pa.int32()), pa.field("mfcc", pa.list_(pa.float32()))],
            metadata=metadata)
        self.summary_writer = summary_writer(folder / SUMMARY_FILE, self.summary_schema)
        self.seq_writer = sequences_writer(folder / SEQUENCES_FILE, self.seq_schema)
        self.rows: list[int] = []
        self.seqs: list[np.ndarray] = []
        self.summaries: list[np.ndarray] = []
        self.durations: list[float] = []
        self.n_rows = 0

    def add(self, index: int, seq: np.ndarray, summary: np.ndarray, duration: float) -> None:
        self.rows.append(index)
        self.seqs.append(seq)
        self.summaries.append(summary)
        self.durations.append(duration)
        if len(self.rows) >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        base = self.manifest.take(pa.array(self.rows, pa.int64()))
        n_frames = pa.array([s.shape[0] for s in self.seqs], pa.int32())
        feats = np.ascontiguousarray(np.stack(self.summaries).T)
        summary = pa.Table.from_arrays(
            base.columns + [n_frames, pa.array(self.durations, pa.float64())]
            + [pa.array(col) for col in feats],
            schema=self.summary_schema)
        self.summary_writer.write_table(summary, row_group_size=ROW_GROUP_ROWS)

        sizes = np.fromiter((s.size for s in self.seqs), np.int64, len(self.seqs))
        offsets = np.zeros(len(sizes) + 1, np.int32)
        np.cumsum(sizes, out=offsets[1:])
        values = np.concatenate([s.ravel() for s in self.seqs])
        mfcc = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.float32()))
        paths = base.column("path").cast(pa.string())
        seqs = pa.Table.from_arrays(
            [paths, n_frames, pa.array(np.full(len(sizes), self.n_coeffs, np.int32)), mfcc],
            schema=self.seq_schema)
        self.seq_writer.write_table(seqs, row_group_size=ROW_GROUP_ROWS)
        self.n_rows += len(self.rows)
        self.rows, self.seqs, self.summaries, self.durations = [], [], [], []

    def close(self, *, flush: bool = True) -> None:
        """Write the buffered rows (unless ``flush`` is False) and close both files."""
        try:
            if flush:
                self.flush()
        finally:
            self.summary_writer.close()
            self.seq_writer.close()


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


def _min_rms_db(params: Mapping[str, Any] | FeatureParams) -> float | None:
    """``mfcc.min_rms_db`` (default :data:`DEFAULT_MIN_RMS_DB`; null turns the check off)."""
    if not isinstance(params, Mapping):
        return DEFAULT_MIN_RMS_DB
    section = params["mfcc"] if isinstance(params.get("mfcc"), Mapping) else params
    value = section.get("min_rms_db", DEFAULT_MIN_RMS_DB)
    return None if value is None else float(value)


def extract_features(
    manifest: str | Path | pd.DataFrame | pa.Table,
    out_dir: str | Path,
    *,
    params: Mapping[str, Any] | FeatureParams,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    desc: str = "mfcc",
    rows: tuple[int, int] | None = None,
) -> ExtractionResult:
    """Extract every manifest clip's features into ``out_dir`` (see module docstring).

    Parameters
    ----------
    manifest
        Parquet path, DataFrame or Arrow table with at least a ``path``
        column (relative paths are relative to the working directory).
    out_dir
        Output folder; replaced atomically on success only.
    params
        The whole parameters mapping or its ``mfcc:`` section (``workers``
        is read from it when ``workers`` is None).
    workers
        Processes; ``None``: ``mfcc.workers`` (default 0); 0: all cores;
        1: extract in this process without a pool.
    chunk_size
        Files per task; affects speed only, never the output.
    progress
        Show a tqdm progress bar on stderr.
    desc
        Progress-bar label.
    rows
        ``(start, stop)``: extract only these manifest rows (one shard, see
        :mod:`ser.features.shards`); a shard of which no clip decodes is not an error.

    Returns
    -------
    ExtractionResult

    Raises
    ------
    SerError
        If the manifest is missing or unusable, or no file could be decoded.
    """
    start = time.perf_counter()
    fp = FeatureParams.from_mapping(params)
    n_workers = resolve_workers(workers, params=params if isinstance(params, Mapping) else None)
    min_rms_db = _min_rms_db(params)
    if chunk_size < 1:
        raise SerError(f"chunk_size must be >= 1, got {chunk_size}")
    table = _read_manifest(manifest)
    if rows is not None:
        table = table.slice(rows[0], max(0, rows[1] - rows[0]))
    paths = [str(p) for p in table.column("path").to_pylist()]
    n_files = len(paths)
    n_workers = min(n_workers, -(-n_files // chunk_size))
    _warm_up(fp)
    chunks = ([(i, paths[i]) for i in range(lo, min(lo + chunk_size, n_files))]
              for lo in range(0, n_files, chunk_size))
    skipped: list[tuple[str, str]] = []

    from tqdm import tqdm

    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        # Fork the workers first: before the output files are open and before
        # tqdm starts its monitor thread.
        with closing(_Results(chunks, fp, workers=n_workers,
                                     min_rms_db=min_rms_db)) as results:
            sink = _ParquetSink(tmp, table, fp)
            try:
                with tqdm(total=n_files, unit="file", desc=desc, disable=not progress,
                          file=sys.stderr, dynamic_ncols=True) as bar:
                    for batch in results:
                        for index, seq, summary, duration, reason in batch:
                            if seq is None:
                                skipped.append((paths[index], reason))
                                _warn(f"skipped {paths[index]}: {reason}")
                            else:
                                sink.add(index, seq, summary, duration)
                        bar.update(len(batch))
            except BaseException:
                sink.close(flush=False)
                raise
            sink.close()
        if sink.n_rows == 0 and rows is None:
            first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
            raise SerError(f"none of the {n_files} files could be decoded{first}; "
                           "check the manifest paths and the audio files")
        with open(tmp / SKIPPED_FILE, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["path", "reason"])
            writer.writerows(skipped)
    return ExtractionResult(out_dir=Path(out_dir), n_files=n_files, n_rows=sink.n_rows,
                            skipped=skipped, workers=n_workers,
                            seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- reading

def feature_columns(df: pd.DataFrame) -> list[str]:
    """The model-input columns of a ``summary.parquet`` frame (``feat_*``, in order)."""
    return [c for c in df.columns if str(c).startswith(FEATURE_PREFIX)]


def read_feature_params(parquet_path: str | Path) -> dict[str, Any]:
    """Read the feature definition stored in a features Parquet file's schema.

    Parameters
    ----------
    parquet_path
        ``summary.parquet`` or ``sequences.parquet``.

    Raises
    ------
    SerError
        If the file is missing, unreadable, or carries no definition.
    """
    path = Path(parquet_path)
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError) as exc:
        raise SerError(f"{path}: cannot read Parquet schema ({exc})") from None
    if METADATA_KEY not in metadata:
        raise SerError(f"{path}: no feature parameters stored ({METADATA_KEY.decode()}); "
                       "re-run scripts/extract_features.py")
    return json.loads(metadata[METADATA_KEY])


def load_sequences(path: str | Path, *, keep: set[str] | None = None,
                   dtype: np.typing.DTypeLike = np.float32,
                   ) -> tuple[list[str], list[np.ndarray]]:
    """Read ``sequences.parquet`` back into per-clip arrays.

    Parameters
    ----------
    path
        A ``sequences.parquet`` written by :func:`extract_features`.
    keep
        Only the clips with these manifest paths (each copied on its own); ``None``: all.
    dtype
        Of the returned arrays (the file holds float32; ``float16`` halves the memory).

    Returns
    -------
    paths : list of str
        The clips' manifest paths, in file (= manifest) order.
    seqs : list of np.ndarray, each (n_frames, n_coeffs) of ``dtype``
        Writable arrays: views into one array per row group, or (``keep``) one array per
        clip. The file is read one row group at a time, so memory holds the sequences
        plus one row group, not the file twice.
    """
    path = Path(path)
    paths: list[str] = []
    seqs: list[np.ndarray] = []
    try:
        # Row group by row group, without pre-buffering the file: Arrow's memory pool keeps
        # what it once held, so reading the file in one go would keep its size resident.
        parquet = pq.ParquetFile(path, pre_buffer=False)
        for group in range(parquet.num_row_groups):
            batch = parquet.read_row_group(group, columns=["path", "n_frames", "n_coeffs",
                                                           "mfcc"])
            batch_paths = [str(p) for p in batch.column("path").to_pylist()]
            n_frames = batch.column("n_frames").to_numpy()
            n_coeffs = batch.column("n_coeffs").to_numpy()
            lists = batch.column("mfcc").combine_chunks()
            # The batch's slice of the child array, and offsets into that slice.
            first, last = lists.offsets[0].as_py(), lists.offsets[-1].as_py()
            offsets = lists.offsets.to_numpy() - first
            flat = lists.values.to_numpy(zero_copy_only=False)[first:last]
            if keep is None:  # one writable array for the row group, clips are views
                flat, chosen = np.array(flat, dtype), range(len(batch_paths))
            else:
                chosen = [i for i, clip in enumerate(batch_paths) if clip in keep]
            for i in chosen:
                seq = flat[offsets[i]:offsets[i + 1]]
                paths.append(batch_paths[i])
                seqs.append((seq if keep is None else np.array(seq, dtype))
                            .reshape(int(n_frames[i]), int(n_coeffs[i])))
    except (pa.ArrowException, OSError) as exc:
        raise SerError(f"{path}: not a readable sequences file ({exc})") from None
    finally:
        pa.default_memory_pool().release_unused()  # the row groups' buffers, back to the OS
    return paths, seqs
