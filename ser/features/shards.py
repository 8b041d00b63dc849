"""Sharded feature extraction: one corpus' feature set split into jobs, then merged.

A corpus with ``S`` shards (``shards:`` in params.yaml,
:func:`ser.workflow.resources.feature_shards`)
is extracted by ``S`` jobs, shard ``k`` (1-based) taking the contiguous manifest rows
:func:`shard_bounds` gives it, each into its own folder::

    data/shards/<feature_set>/<corpus>/<k>-of-<S>/
        summary.parquet, sequences.parquet (sets with sequences), skipped.csv
        shard.json     {"shard": k, "shards": S, "rows": [start, stop], "manifest_rows": n}

(a shard of which no clip decodes has only ``skipped.csv`` and ``shard.json``). Then
:func:`merge_shards` writes ``data/features/<feature_set>/<corpus>/`` with exactly the
files, and the bytes, an unsharded extraction writes:

* streamed tables (``sequences.parquet``; the MFCC set's ``summary.parquet``) are copied
  one row group at a time and re-cut into row groups of
  :data:`ser.features.extract.ROW_GROUP_ROWS` rows with the extractor's own writer, so at
  most two row groups are in memory whatever the corpus size;
* summaries built in memory by their extractor (the per-clip vector sets, logmel's clip
  index: their files carry pandas metadata) are pooled and written by the same function
  (a few hundred bytes per clip);
* ``skipped.csv`` rows are concatenated in shard order (= manifest order).

Before writing, the merge checks the shards tile the manifest rows exactly once and were
made with one feature definition; otherwise it names the folder and says what to rerun.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    sequences_writer,
    summary_writer,
)
from ser.outputs import atomic_path

SHARD_FILE = "shard.json"


def shard_bounds(n_rows: int, shards: int) -> list[tuple[int, int]]:
    """``(start, stop)`` manifest rows of each of ``shards`` contiguous shards.

    Sizes differ by at most one (the first ``n_rows % shards`` shards take one more);
    with more shards than rows the last ones are empty. Deterministic: depends only on
    ``n_rows`` and ``shards``.

    Parameters
    ----------
    n_rows : int
        Rows of the manifest.
    shards : int
        Number of shards (``shards:`` in params.yaml).
    """
    if shards < 1:
        raise SerError(f"shards must be >= 1, got {shards}")
    if n_rows < 0:
        raise SerError(f"n_rows must be >= 0, got {n_rows}")
    size, extra = divmod(n_rows, shards)
    bounds, start = [], 0
    for k in range(shards):
        stop = start + size + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _manifest_rows(manifest: str | Path | pd.DataFrame) -> int:
    if isinstance(manifest, pd.DataFrame):
        return len(manifest)
    path = Path(manifest)
    if not path.is_file():
        raise SerError(f"{path}: manifest not found; run the manifest stage first")
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise SerError(f"{path}: not a readable Parquet manifest ({exc})") from None


def extract_shard(feature_set: str, manifest: str | Path | pd.DataFrame, out_dir: str | Path,
                  *, params: Mapping[str, Any], shard: int, shards: int,
                  progress: bool = True, desc: str | None = None) -> ExtractionResult:
    """Extract shard ``shard`` (1-based) of ``shards`` of ``feature_set`` into ``out_dir``.

    Parameters
    ----------
    feature_set
        An extracted set (:data:`ser.features.sets.EXTRACTED_SETS`).
    manifest
        The whole corpus' manifest (path or frame); the shard takes its rows.
    out_dir
        The shard's folder (replaced atomically), with ``shard.json``.
    params
        The set's extraction settings (:func:`ser.features.sets.feature_set_params`).
    shard, shards
        Which shard, of how many (``1 <= shard <= shards``).
    progress, desc
        Progress bar and its label.
    """
    from ser.features.sets import feature_set_spec

    if not 1 <= shard <= shards:
        raise SerError(f"shard {shard} of {shards}: the shard number must be between 1 "
                       f"and {shards}")
    n_rows = _manifest_rows(manifest)
    start, stop = shard_bounds(n_rows, shards)[shard - 1]
    extract = feature_set_spec(feature_set).extract_function()
    result = extract(manifest, out_dir, params=params, progress=progress,
                     desc=desc or f"{feature_set} {shard}/{shards}", rows=(start, stop))
    info = {"shard": shard, "shards": shards, "rows": [start, stop], "manifest_rows": n_rows}
    with atomic_path(Path(out_dir) / SHARD_FILE) as tmp:
        Path(tmp).write_text(json.dumps(info) + "\n")
    return result


@dataclass(frozen=True)
class _Shard:
    folder: Path
    rows: tuple[int, int]
    manifest_rows: int

    def table(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None


def _read_shards(folders: Sequence[str | Path]) -> list[_Shard]:
    """The shards' descriptions, checked to tile ``[0, manifest_rows)`` in order."""
    if not folders:
        raise SerError("no shard folders given")
    shards = []
    for k, folder in enumerate(map(Path, folders), start=1):
        path = folder / SHARD_FILE
        try:
            info = json.loads(path.read_text())
            rows = (int(info["rows"][0]), int(info["rows"][1]))
            n, of, total = int(info["shard"]), int(info["shards"]), int(info["manifest_rows"])
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise SerError(f"{folder}: not a finished shard (no {SHARD_FILE}); rerun its "
                           "extraction") from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise SerError(f"{path}: unreadable shard description ({exc})") from None
        if (n, of) != (k, len(folders)):
            raise SerError(f"{folder}: is shard {n} of {of}, expected {k} of {len(folders)}; "
                           "give the shard folders in order")
        start = shards[-1].rows[1] if shards else 0
        if rows[0] != start or total != (shards[-1].manifest_rows if shards else total):
            raise SerError(f"{folder}: rows {rows[0]}-{rows[1]} of a {total}-row manifest do "
                           f"not follow the previous shard (expected from row {start}); the "
                           "shards come from different manifests: rerun them")
        shards.append(_Shard(folder, rows, total))
    if shards[-1].rows[1] != shards[-1].manifest_rows:
        raise SerError(f"the shards cover rows 0-{shards[-1].rows[1]} of a "
                       f"{shards[-1].manifest_rows}-row manifest; rerun them")
    return shards


def _fingerprint(paths: Sequence[Path]) -> bytes:
    """The feature definition the tables share (refused if they differ)."""
    found: dict[bytes, Path] = {}
    for path in paths:
        meta = pq.read_schema(path).metadata or {}
        found.setdefault(meta.get(METADATA_KEY, b""), path)
    if len(found) > 1:
        a, b = list(found.values())[:2]
        raise SerError(f"{a} and {b} were extracted with different settings; rerun the "
                       "feature shards")
    return next(iter(found))


def _written_schema(path: Path) -> pa.Schema:
    """The Arrow schema ``path`` was written with, as stored in its footer: reading
    normalises list children to ``element``, the writers named them ``item``."""
    import base64

    stored = (pq.ParquetFile(path).metadata.metadata or {}).get(b"ARROW:schema")
    if stored is None:
        return pq.read_schema(path)
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(stored)))


def _stream(parts: Sequence[Path], dest: Path, writer_for, done=lambda: None) -> int:
    """Copy the rows of ``parts`` in order into ``dest`` in row groups of
    :data:`ROW_GROUP_ROWS` rows (the last one shorter), one row group in memory at a time
    (``done`` is called after each part)."""
    schema = _written_schema(parts[0])
    n_rows = 0
    with writer_for(dest, schema) as writer:
        buffer: list[pa.RecordBatch] = []
        buffered = 0

        def flush(n: int) -> None:
            nonlocal buffer, buffered
            table = pa.Table.from_batches(buffer).cast(schema)
            writer.write_table(table.slice(0, n).combine_chunks(), row_group_size=n)
            rest = table.slice(n)
            buffer, buffered = rest.to_batches(), rest.num_rows

        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=ROW_GROUP_ROWS):
                buffer.append(batch)
                buffered += batch.num_rows
                n_rows += batch.num_rows
                while buffered >= ROW_GROUP_ROWS:
                    flush(ROW_GROUP_ROWS)
            done()
        if buffered:
            flush(buffered)
    return n_rows


def _pool_frames(parts: Sequence[Path], dest: Path, fingerprint: bytes) -> int:
    """Pool summaries an extractor builds in memory and write them like it does."""
    from ser.features.corpus_sets import write_summary_frame

    frame = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    write_summary_frame(frame, json.loads(fingerprint), dest)
    return len(frame)


def merge_shards(folders: Sequence[str | Path], out_dir: str | Path, *,
                 progress: bool = True) -> ExtractionResult:
    """Merge the shard folders of one feature set of one corpus into ``out_dir``.

    Parameters
    ----------
    folders
        Every shard's folder, in shard order (1 of S first).
    out_dir
        The corpus' feature folder, replaced atomically: the same files and bytes as an
        unsharded extraction of the whole manifest.
    progress
        Show a progress bar over the shards' tables.

    Raises
    ------
    SerError
        If a shard is missing or unfinished, the shards do not tile one manifest, they
        were made with different settings, or no clip of any shard decoded.
    """
    import time

    from tqdm import tqdm

    start = time.perf_counter()
    shards = _read_shards(folders)
    n_files = shards[-1].manifest_rows
    skipped_lines: list[bytes] = []
    header = b"path,reason\n"
    for shard in shards:
        text = (shard.folder / SKIPPED_FILE).read_bytes() if shard.table(SKIPPED_FILE) \
            else None
        if text is None or not text.startswith(header):
            raise SerError(f"{shard.folder}: missing or unreadable {SKIPPED_FILE}; rerun "
                           "the shard")
        skipped_lines.append(text[len(header):])
    summaries = [p for s in shards if (p := s.table(SUMMARY_FILE))]
    sequences = [p for s in shards if (p := s.table(SEQUENCES_FILE))]
    skipped = [(row[0], row[1]) for row in csv.reader(
        io.StringIO(b"".join(skipped_lines).decode("utf-8"), newline=""))]
    if not summaries:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise SerError(f"none of the {n_files} files could be decoded{first}; "
                       "check the manifest paths and the audio files")
    fingerprint = _fingerprint([*summaries, *sequences])
    pooled = b"pandas" in (pq.read_schema(summaries[0]).metadata or {})
    with atomic_path(out_dir) as tmp, \
            tqdm(total=len(summaries) + len(sequences), unit="part", desc="merge",
                 disable=not progress, file=sys.stderr) as bar:
        tmp.mkdir()
        if pooled:
            n_rows = _pool_frames(summaries, tmp / SUMMARY_FILE, fingerprint)
            bar.update(len(summaries))
        else:
            n_rows = _stream(summaries, tmp / SUMMARY_FILE, summary_writer, bar.update)
        if sequences:
            n_seq = _stream(sequences, tmp / SEQUENCES_FILE, sequences_writer, bar.update)
            if n_seq != n_rows:
                raise SerError(f"the shards hold {n_rows} summary rows but {n_seq} "
                               "sequences; rerun the feature shards")
        (tmp / SKIPPED_FILE).write_bytes(header + b"".join(skipped_lines))
    return ExtractionResult(out_dir=Path(out_dir), n_files=n_files, n_rows=n_rows,
                            skipped=skipped, workers=1, seconds=time.perf_counter() - start)
