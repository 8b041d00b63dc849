"""Cost of the ``byols`` feature set: clips per second and peak memory, beside MFCC.

    nice .venv/bin/python benchmarks/bench_byols.py [--files 120] [--workers 2]

On the same real clips (every k-th file of ``--dir``), in one run, alternating
``mfcc``, ``byols``, ``mfcc``, ``byols`` ... (``--repeat`` rounds, best kept) so background
load hits both alike, each extractor runs end to end in a FRESH process (pool start-up,
decoding, features, writing Parquet; for byols also loading the weights):

``mfcc``   :func:`ser.features.extract_features` (the ``mfcc:`` section of params.yaml)
``byols``  :func:`ser.features.byols.extract_byols` (the ``byols:`` section)

"Cold" is what one pipeline extraction job costs (a fresh process). The mfcc process then
runs its extractor again ("warm", imports done); the byols process times its two stages
warm instead: the front end (decode + log-mel, one process) and the encoder alone
(NumPy, one clip at a time). Each reports its peak resident memory (its own ``ru_maxrss`` and
the largest worker's). Then, with ``max_seconds: null``, one process per
length embeds a single long recording (``--long-seconds``, clips concatenated) and reports
its peak memory: the encoder runs in overlapping windows, so it stays flat. Writes
``benchmarks/results/byols_cost.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "ravdess"
RESULT = ROOT / "benchmarks" / "results" / "byols_cost.json"


def _peak_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_worker_rss_mb": round(kids, 1)}


def child(kind: str, files: list[str], workers: int) -> dict:
    """One extractor, twice, in this (fresh) process."""
    import pandas as pd
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    manifest = pd.DataFrame({"path": files, "corpus": "ravdess", "speaker": "x",
                             "emotion": "neutral"})
    times = []
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(2 if kind == "mfcc" else 1):
            out = Path(tmp) / f"out{run}"
            t0 = time.perf_counter()
            if kind == "mfcc":
                from ser.features import extract_features

                res = extract_features(manifest, out, params=params["mfcc"], workers=workers,
                                       progress=False)
            else:
                from ser.features.sets import feature_set_params, feature_set_spec

                fs = feature_set_params("byols", params)
                res = feature_set_spec("byols").extract_function()(
                    manifest, out, params=fs, workers=workers, progress=False)
            times.append(time.perf_counter() - t0)
    n = res.n_rows
    if kind == "byols":  # warm stage breakdown in this process (imports done)
        from ser.features import byols as B

        t0 = time.perf_counter()
        mels = [B.logmel_from_file(f, params=params["mfcc"]) for f in files]
        stages["front_end_clips_per_s_one_process"] = round(len(mels) / (time.perf_counter()
                                                                          - t0), 2)
        enc = B.get_encoder(None)
        t0 = time.perf_counter()
        enc.embed(mels, norm_mean=-6.0, norm_std=4.0)
        stages["encoder_clips_per_s"] = round(len(mels) / (time.perf_counter() - t0), 2)
    out = {"extractor": kind, "clips": n, "workers": workers,
           "cold_seconds": round(times[0], 2), "cold_clips_per_s": round(n / times[0], 2),
           **stages, **_peak_mb()}
    if len(times) > 1:
        out |= {"warm_seconds": round(times[1], 2), "warm_clips_per_s": round(n / times[1], 2)}
    return out


def long_child(seconds: float, files: list[str]) -> dict:
    """Peak memory of embedding one long recording (max_seconds: null)."""
    import numpy as np
    import soundfile as sf
    import yaml

    from ser.audio import load_audio
    from ser.features import byols as B

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    mfcc = dict(params["mfcc"], max_seconds=None, trim_db=None)
    pieces, total = [], 0
    while total < seconds * 16000:
        for f in files:
            y, _ = load_audio(f, sr=16000)
            pieces.append(y)
            total += y.shape[0]
            if total >= seconds * 16000:
                break
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        sf.write(path, np.concatenate(pieces)[:int(seconds * 16000)], 16000)
        del pieces
        before = _peak_mb()["peak_rss_mb"]
        fingerprint = B.byols_fingerprint({**mfcc, "options": params["byols"]})
        t0 = time.perf_counter()
        emb = B.embedding_from_file(path, fingerprint=fingerprint)
        elapsed = time.perf_counter() - t0
    assert emb.shape == (512,)
    return {"long_seconds": seconds, "embed_seconds": round(elapsed, 2),
            "peak_rss_mb_before": before, **_peak_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--files", type=int, default=120, help="clips (every k-th file)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="alternating rounds")
    parser.add_argument("--long-seconds", type=float, nargs="*", default=[60.0, 600.0])
    parser.add_argument("--child", choices=["mfcc", "byols"], help=argparse.SUPPRESS)
    parser.add_argument("--long-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--file-list", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child or args.long_child:
        files = json.loads(args.file_list.read_text())
        out = (child(args.child, files, args.workers) if args.child
               else long_child(args.long_child, files))
        print(json.dumps(out))
        return 0

    all_files = sorted(str(p) for p in args.dir.rglob("*.wav"))
    step = max(1, len(all_files) // args.files)
    files = all_files[::step][:args.files]
    env = dict(os.environ, KERAS_BACKEND="jax")
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        flist = Path(tmp) / "files.json"
        flist.write_text(json.dumps(files))

        def run(*extra: str) -> dict:
            proc = subprocess.run([sys.executable, __file__, "--file-list", str(flist),
                                   "--workers", str(args.workers), *extra],
                                  capture_output=True, text=True, env=env, check=True)
            return json.loads(proc.stdout.strip().splitlines()[-1])

        for r in range(args.repeat):
            for kind in ("mfcc", "byols"):
                res = run("--child", kind) | {"round": r}
                print(json.dumps(res), flush=True)
                rounds.append(res)
        long_runs = []
        for seconds in args.long_seconds:
            res = run("--long-child", str(seconds))
            print(json.dumps(res), flush=True)
            long_runs.append(res)

    def best(kind: str, key: str) -> float:
        return max(r[key] for r in rounds if r["extractor"] == kind)

    summary: dict = {k: {"cold_clips_per_s": best(k, "cold_clips_per_s"),
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds
                                            if r["extractor"] == k),
                         "peak_worker_rss_mb": max(r["peak_worker_rss_mb"] for r in rounds
                                                   if r["extractor"] == k)}
                     for k in ("mfcc", "byols")}
    summary["mfcc"]["warm_clips_per_s"] = best("mfcc", "warm_clips_per_s")
    for key in ("front_end_clips_per_s_one_process", "encoder_clips_per_s"):
        summary["byols"][key] = best("byols", key)
    summary["byols_time_over_mfcc_cold"] = round(
        summary["mfcc"]["cold_clips_per_s"] / summary["byols"]["cold_clips_per_s"], 2)
    doc = {"date": dt.date.today().isoformat(),
           "command": "benchmarks/bench_byols.py " + " ".join(argv or sys.argv[1:]),
           "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
           "n_files": len(files), "dir": str(args.dir), "summary": summary,
           "rounds": rounds, "long_recordings": long_runs}
    RESULT.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
