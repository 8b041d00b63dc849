"""Simulation: the sharded job graph of a large corpus, and the cost of one sampled shard.

Copies the project to a temporary folder and configures one ``custom`` corpus of
``--clips`` clips (default 150,000, MSP-Podcast size) cut into shards of
``--shard-clips`` clips (default 2,000: 75 shards), with every other setting as in
params.yaml (single corpus: the ``cross_corpus`` protocol is left out). It writes

* a manifest of ``--clips`` rows (``data/manifests/custom.parquet``; RAVDESS-like
  speakers of 60 clips), as the manifest stage would, so the dry run starts after it;
* audio only for the rows of the sampled shard (synthetic 16 kHz voiced tones of
  1.5-3 s, as ``bench_pipeline.py --stage features`` uses),

then runs ``snakemake --dry-run --profile profiles/slurm`` (no job is submitted) and
records its "Job stats" (jobs per rule), and times the sampled shard's real job,
``scripts/extract_features.py --shard K --shards S`` on the whole manifest, for each
extracted feature set (wall time and peak RSS of the process tree, polled with psutil).
Results: ``benchmarks/results/shards_simulation.json``; docs/scaling.md section 2 quotes
them. Run it under ``nice`` on a shared machine; the load average is recorded.

Example
-------
    nice -n 10 python benchmarks/bench_shards.py                 # 150k clips, 75 shards
    python benchmarks/bench_shards.py --clips 20000 --shard-clips 500 --feature-set mfcc
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_pipeline import (  # noqa: E402
    MB,
    RESULTS,
    copy_project,
    machine,
    run_monitored,
    synthetic_clip,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=150_000, help="clips of the corpus")
    parser.add_argument("--shard-clips", type=int, default=2_000,
                        help="clips per shard (shards = ceil(clips / shard-clips))")
    parser.add_argument("--sample", type=int, default=None,
                        help="the shard to time (default: the middle one)")
    parser.add_argument("--feature-set", action="append", default=None,
                        help="extracted set(s) to time (default: those params.yaml trains on)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="work folder (default: a temporary one, removed)")
    parser.add_argument("--out", type=Path, default=RESULTS / "shards_simulation.json",
                        help="results file (default: %(default)s)")
    parser.add_argument("--interval", type=float, default=0.25, help="psutil polling s")
    return parser


def write_manifest(project: Path, n_clips: int, rows: range, *, seed: int = 0,
                   sr: int = 16000) -> Path:
    """The corpus manifest (every row), with audio written for ``rows`` only."""
    import pandas as pd
    import soundfile as sf

    emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    rng = np.random.default_rng(seed)
    pool = [synthetic_clip(rng, sr) for _ in range(256)]
    speaker = np.arange(n_clips) // 60 + 1
    paths = [f"data/raw/custom/Actor_{s:05d}/clip_{i:06d}.wav" for i, s in enumerate(speaker)]
    emotion = [emotions[i % len(emotions)] for i in range(n_clips)]
    for i in rows:
        path = project / paths[i]
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, pool[i % len(pool)], sr, subtype="PCM_16")
    manifest = project / "data" / "manifests" / "custom.parquet"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"path": paths, "corpus": "custom", "speaker": [f"{s:05d}" for s in speaker],
                  "gender": np.where(speaker % 2 == 1, "male", "female"), "emotion": emotion,
                  "label_code": emotion}).to_parquet(manifest, index=False)
    return manifest


def job_stats(text: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake dry run: rule -> jobs."""
    block = text[text.index("Job stats:"):]
    counts = {}
    for line in block.splitlines()[3:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    return counts


def run(args: argparse.Namespace, workdir: Path) -> dict:
    from ser.features.sets import FEATURE_SETS
    from ser.features.shards import shard_bounds

    project = copy_project(workdir / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    shards = math.ceil(args.clips / args.shard_clips)
    params["corpora"] = {"custom": "data/raw/custom"}
    params["shards"] = {"default": 1, "custom": shards}
    params["train"]["protocols"] = [p for p in params["train"]["protocols"]
                                    if p != "cross_corpus"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sample = args.sample or (shards + 1) // 2
    start, stop = shard_bounds(args.clips, shards)[sample - 1]
    (project / "data" / "raw" / "custom").mkdir(parents=True)  # older than the manifest
    print(f"writing a {args.clips}-row manifest and the audio of shard {sample}/{shards} "
          f"(rows {start}-{stop})", flush=True)
    manifest = write_manifest(project, args.clips, range(start, stop))

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    dry_cmd = ["snakemake", "--dry-run", "--profile", "profiles/slurm"]
    dry = subprocess.run(dry_cmd, cwd=project, capture_output=True, text=True, env=env)
    if dry.returncode != 0:
        raise SystemExit(f"error: {' '.join(dry_cmd)} failed:\n{dry.stderr[-3000:]}")
    counts = job_stats(dry.stdout)
    print("\n".join(f"  {rule:<24}{n:>6}" for rule, n in counts.items()), flush=True)

    sets = args.feature_set or sorted({FEATURE_SETS[f].extracted
                                       for f in params["train"]["feature_sets"]})
    timings = []
    for name in sets:
        out = project / "data" / "shards" / name / "custom" / f"{sample}-of-{shards}"
        cmd = [sys.executable, "scripts/extract_features.py", "--feature-set", name,
               "--corpus", "custom", "--manifest", str(manifest.relative_to(project)),
               "--shard", str(sample), "--shards", str(shards), "--out", str(out),
               "--params", "params.yaml", "--no-progress"]
        load_before = os.getloadavg()[0]
        print(f"timing shard {sample}/{shards} of {name} ({stop - start} clips)", flush=True)
        wall, monitor = run_monitored(cmd, cwd=project, log=workdir / f"{name}.log",
                                      interval=args.interval)
        info = json.loads((out / "shard.json").read_text())
        workers = params[name].get("workers", 1)
        timings.append({"feature_set": name, "clips": stop - start, "workers": workers,
                        "wall_s": round(wall, 1),
                        "core_s_per_clip_upper": round(workers * wall / (stop - start), 4),
                        "tree_peak_rss_mb": round(monitor.peak_tree_rss / MB),
                        "largest_process_rss_mb": round(monitor.peak_process_rss / MB),
                        "load_avg_1m_before": round(load_before, 1),
                        "load_avg_1m_after": round(os.getloadavg()[0], 1),
                        "shard_json": info})
        print(f"  {wall:.1f} s, tree peak {monitor.peak_tree_rss / MB:.0f} MB", flush=True)
    return {"clips": args.clips, "shard_clips": args.shard_clips, "shards": shards,
            "sampled_shard": sample, "protocols": params["train"]["protocols"],
            "models": params["train"]["models"],
            "feature_sets": params["train"]["feature_sets"],
            "dry_run_command": " ".join(dry_cmd), "job_stats": counts,
            "shard_timings": timings, "machine": machine()}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="ser-shards-") as tmp:
            result = run(args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
