"""Benchmark: the seed's sequential MFCC loop vs. the parallel Parquet extractor.

On the same files, in one run, it times

(a) the seed: ``y, sr = librosa.load(path)`` (22050 Hz) then
    ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)``, one file after another,
    as the seed ran it (BLAS with its default thread count) and again with
    BLAS on one thread (a stricter baseline on a busy machine);
(b) ``ser.features.extract_features`` with the same feature definition
    (22050 Hz, n_fft 2048, hop 512, 128 mels, no trim, no truncation) and
    ``--workers`` processes, end to end: pool start-up, decoding, features,
    summaries and writing both Parquet files atomically.

Runs alternate (a), (b), (a), (b)... so background load hits both alike; the
best of ``--repeat`` runs is reported. It then checks that the sequences
read back from ``sequences.parquet`` equal the seed's MFCCs, and prints a
per-stage breakdown (one process, ms per file).

Run from the project root: ``.venv/bin/python benchmarks/bench_features.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "ravdess"

#: librosa.load + librosa.feature.mfcc(n_mfcc=40) defaults, as ``mfcc:`` params.
SEED_EQUIVALENT = {
    "sample_rate": 22050, "n_mfcc": 40, "n_fft": 2048, "hop_length": 512, "n_mels": 128,
    "fmin": 0.0, "fmax": None, "deltas": 0, "trim_db": None, "max_seconds": None,
    "pad": "none",
}


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help="folder searched recursively for *.wav (default: %(default)s)")
    parser.add_argument("--files", type=int, default=0,
                        help="use the first N files, sorted by path (default: all)")
    parser.add_argument("--workers", type=int, default=2,
                        help="extraction processes (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="files per worker task (default: the extractor's)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each, best reported (default: %(default)s)")
    return parser


def seed_loop(files: Sequence[Path]) -> list[np.ndarray]:
    """The seed's feature loop: librosa.load + librosa.feature.mfcc, sequentially."""
    import librosa

    out = []
    for path in files:
        y, sr = librosa.load(path)
        out.append(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40))
    return out


def ours(files: Sequence[Path], workers: int, chunk_size: int | None) -> list[np.ndarray]:
    """The extractor, end to end, into a temporary folder; returns the sequences."""
    from ser.features import analysis_kernels, extract_features, load_sequences

    analysis_kernels.cache_clear()  # building the filterbank is part of the run
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    with tempfile.TemporaryDirectory(prefix="bench_features.") as tmp:
        out = Path(tmp) / "mfcc"
        manifest = pd.DataFrame({"path": [str(f) for f in files]})
        extract_features(manifest, out, params=SEED_EQUIVALENT, workers=workers,
                         progress=False, **kwargs)
        paths, seqs = load_sequences(out / "sequences.parquet")
    assert paths == [str(f) for f in files]
    return seqs


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the pool's workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _timed(fn: Callable[[], list[np.ndarray]]) -> tuple[float, float, list[np.ndarray]]:
    """Wall seconds, CPU seconds (incl. workers) and the result of ``fn()``."""
    cpu = _cpu_seconds()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, _cpu_seconds() - cpu, result


def breakdown(files: Sequence[Path]) -> list[tuple[str, float]]:
    """Per-stage time in one process, ms per file (median over files)."""
    import librosa

    from ser.audio import load_audio
    from ser.features import (
        FeatureParams,
        analysis_kernels,
        mfcc_sequence,
        mfcc_summary,
        single_threaded_blas,
    )

    fp = FeatureParams.from_mapping(SEED_EQUIVALENT)
    rows: dict[str, list[float]] = {}

    def clock(name: str, fn: Callable[[], object]) -> object:
        start = time.perf_counter()
        value = fn()
        rows.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return value

    for path in files:
        y, sr = clock("seed  librosa.load (read + soxr_hq)", lambda p=path: librosa.load(p))
        clock("seed  librosa.feature.mfcc (default BLAS threads)",
              lambda y=y, sr=sr: librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40))
        with single_threaded_blas():
            clock("seed  librosa.feature.mfcc (1 BLAS thread)",
                  lambda y=y, sr=sr: librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40))
        clock("seed    of which librosa.filters.mel (rebuilt per call)",
              lambda: librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128))
        y2, sr2 = clock("ours  load_audio (read + soxr_hq)",
                        lambda p=path: load_audio(p, sr=22050))
        seq = clock("ours  mfcc_sequence (cached filterbank)",
                    lambda y2=y2, sr2=sr2: mfcc_sequence(y2, sr2, params=fp))
        clock("ours  mfcc_summary", lambda seq=seq: mfcc_summary(seq))
    analysis_kernels.cache_clear()
    start = time.perf_counter()
    analysis_kernels(22050, 2048, 128, 0.0, None)
    rows["ours  analysis_kernels (once per process)"] = [(time.perf_counter() - start) * 1e3]
    return [(name, statistics.median(values)) for name, values in rows.items()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # audioread's imports
    files = sorted(args.dir.rglob("*.wav"))
    if args.files:
        files = files[: args.files]
    if not files:
        print(f"error: no *.wav files under {args.dir}", file=sys.stderr)
        return 2

    import librosa

    from ser.features import single_threaded_blas

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()
    print(f"{len(files)} files from {args.dir}; {cores} cores; load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; librosa {librosa.__version__}")

    # Warm-up (imports, lazy loaders, first-call costs) for both, untimed.
    seed_loop(files[:2])
    ours(files[:2], 1, args.chunk_size)

    times: dict[str, list[float]] = {"seed": [], "seed1": [], "ours": []}
    cpus: dict[str, list[float]] = {"seed": [], "seed1": [], "ours": []}
    seed_out = seed1_out = ours_out = None
    for _ in range(max(1, args.repeat)):
        t, c, seed_out = _timed(lambda: seed_loop(files))
        times["seed"].append(t)
        cpus["seed"].append(c)
        t, c, ours_out = _timed(lambda: ours(files, args.workers, args.chunk_size))
        times["ours"].append(t)
        cpus["ours"].append(c)
        with single_threaded_blas():
            t, c, seed1_out = _timed(lambda: seed_loop(files))
        times["seed1"].append(t)
        cpus["seed1"].append(c)

    n = len(files)
    best = {k: min(v) for k, v in times.items()}
    rate = {k: n / v for k, v in best.items()}
    cpu_ms = {k: min(v) / n * 1e3 for k, v in cpus.items()}
    print()
    print(f"{'':44s}{'best s':>8s}{'files/s':>9s}{'CPU ms/file':>13s}   all runs (s)")
    labels = {"seed": "(a) seed loop, default BLAS threads",
              "seed1": "(a') seed loop, 1 BLAS thread",
              "ours": f"(b) extract_features, {args.workers} workers"}
    for key in ("seed", "seed1", "ours"):
        runs = " ".join(f"{t:.2f}" for t in times[key])
        print(f"{labels[key]:44s}{best[key]:8.2f}{rate[key]:9.1f}{cpu_ms[key]:13.2f}   {runs}")
    print(f"speed-up (b) vs (a):  {rate['ours'] / rate['seed']:.2f}x wall, "
          f"{cpu_ms['seed'] / cpu_ms['ours']:.2f}x less CPU per file")
    print(f"speed-up (b) vs (a'): {rate['ours'] / rate['seed1']:.2f}x wall, "
          f"{cpu_ms['seed1'] / cpu_ms['ours']:.2f}x less CPU per file")
    print("(CPU ms/file counts this process and the pool's workers; wall-clock gains "
          "beyond the CPU ratio come from running on several cores)")
    print()
    for label, ref in (("(a) default threads", seed_out), ("(a') 1 BLAS thread", seed1_out)):
        diffs = [float(np.abs(r.T - s).max()) for r, s in zip(ref, ours_out, strict=True)]
        same = sum(np.array_equal(r.T, s) for r, s in zip(ref, ours_out, strict=True))
        close = all(np.allclose(r.T, s) for r, s in zip(ref, ours_out, strict=True))
        print(f"MFCCs vs {label:20s} max abs diff {max(diffs):.3g}, np.allclose {close}, "
              f"bit-identical {same}/{n} files")

    print()
    print("per-stage breakdown, one process, median ms per file:")
    for name, ms in breakdown(files[: min(n, 60)]):
        print(f"  {name:56s}{ms:8.2f}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
