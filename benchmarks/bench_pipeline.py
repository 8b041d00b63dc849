"""Benchmark: wall time per stage and peak RSS per job of the whole pipeline, or of the
feature stage as the corpus grows.

``--stage pipeline`` (default) copies the project (tracked and unignored files, as a
fresh clone has them) to a temporary folder, sets ``demo.preset`` (default ``full``:
12,162 synthetic clips at the real corpus sizes) and runs ``snakemake --cores 2`` there.
Per job it reports wall seconds and peak RSS: from Snakemake's ``benchmark:`` files
(``logs/benchmarks/<rule>/...tsv``, columns ``s`` and ``max_rss``) when the rules write
them, otherwise from polling the snakemake process tree with psutil (a job = the
process running ``scripts/<stage>.py`` and its children). Jobs run side by side, so the
per-stage sums add up to more than the end-to-end time.

``--stage features`` writes synthetic corpora of ``--clips`` N clips each (short
harmonic "vowels" with a pitch contour and noise, 16 kHz, 1.5-3 s, in a RAVDESS-like
``Actor_NNNN/`` tree of 60 clips per speaker, with a manifest naming them) and times
``scripts/extract_features.py`` on each with psutil polling: wall time, peak RSS of
the whole process tree (workers included) and of the largest single process. Flat
memory means the extractor streams; the per-clip cost is what docs/scaling.md
projects from.

``--custom-clips N`` runs the pipeline on a user's own corpus instead of the demo:
N real RAVDESS clips from ``../shared/data`` (spread over actors and emotions) copied
into a folder with a CSV manifest (``path,emotion,speaker``), and
``corpora: {custom: <folder>}`` - what a newcomer with 150 clips of their own runs.

Results go to ``benchmarks/results/pipeline_<preset>.json`` (``pipeline_custom<N>.json``)
or ``benchmarks/results/features_scaling.json`` and are printed as a table.

Examples
--------
    python benchmarks/bench_pipeline.py --preset tiny
    python benchmarks/bench_pipeline.py                         # full preset, ~15 min
    python benchmarks/bench_pipeline.py --stage features --clips 1000 --clips 12000
    python benchmarks/bench_pipeline.py --custom-clips 150     # own corpus, default params
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "tests"):  # run as a plain script from a checkout
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from support import copy_checkout  # noqa: E402

from ser.corpora.demo import PRESETS  # noqa: E402
from ser.corpora.ravdess import CODES as RAVDESS_CODES  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MB = 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="bench_pipeline.py", description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("pipeline", "features"), default="pipeline",
                        help="the whole pipeline or the feature stage alone (default: pipeline)")
    parser.add_argument("--preset", default="full", choices=PRESETS,
                        help="demo preset of the pipeline run (default: full)")
    parser.add_argument("--cores", type=int, default=2,
                        help="snakemake --cores, and feature workers (default: 2)")
    for key, example in (("models", "svm knn"), ("protocols", "random speaker"),
                         ("feature-sets", "mfcc")):
        parser.add_argument(f"--{key}", nargs="+", metavar="NAME",
                            help=f"pipeline: train.{key.replace('-', '_')} instead of "
                                 f"params.yaml's (e.g. {example})")
    parser.add_argument("--custom-clips", type=int, default=None, metavar="N",
                        help="pipeline: a custom corpus of N real clips (../shared/data) "
                             "instead of the demo corpora")
    parser.add_argument("--clips", type=int, action="append", default=None,
                        help="features stage: corpus size, repeatable "
                             "(default: 1000, 12000, 50000)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to build (default: a temporary folder, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default: benchmarks/results/pipeline_<preset>.json "
                             "or features_scaling.json)")
    parser.add_argument("--interval", type=float, default=0.25,
                        help="psutil polling interval in seconds (default: 0.25)")
    return parser


# --------------------------------------------------------------------------- polling
@dataclass
class JobSample:
    """What polling saw of one job (a process running a stage script, with children)."""

    stage: str
    label: str
    first: float
    last: float
    peak_rss: int = 0


@dataclass
class TreeMonitor:
    """Poll a process tree: peak summed RSS, largest process, per-job times and peaks."""

    pid: int
    interval: float = 0.25
    peak_tree_rss: int = 0
    peak_process_rss: int = 0
    jobs: dict[tuple[int, float], JobSample] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _cmd: dict[tuple[int, float], list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _cmdline(self, proc: psutil.Process) -> list[str]:
        key = (proc.pid, proc.create_time())
        if key not in self._cmd:
            self._cmd[key] = proc.cmdline()
        return self._cmd[key]

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            self.poll(root)
            self._stop.wait(self.interval)

    def poll(self, root: psutil.Process) -> None:
        """One sample of the tree under ``root``."""
        now = time.monotonic()
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss: dict[int, int] = {}
        parent: dict[int, int] = {}
        script: dict[int, str | None] = {}
        for proc in procs:
            try:
                rss[proc.pid] = proc.memory_info().rss
                parent[proc.pid] = proc.ppid()
                script[proc.pid] = stage_script(self._cmdline(proc))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        if not rss:
            return
        self.peak_tree_rss = max(self.peak_tree_rss, sum(rss.values()))
        self.peak_process_rss = max(self.peak_process_rss, max(rss.values()))
        job_rss: dict[int, int] = {}
        for pid, value in rss.items():   # charge each process to its top-most job process
            top, cur = None, pid
            while cur in rss:
                if script.get(cur):
                    top = cur
                cur = parent.get(cur, -1)
            if top is not None:
                job_rss[top] = job_rss.get(top, 0) + value
        for pid, value in job_rss.items():
            proc = next(p for p in procs if p.pid == pid)
            try:
                key = (pid, proc.create_time())
            except psutil.NoSuchProcess:
                continue
            job = self.jobs.get(key)
            if job is None:
                cmd = self._cmd.get(key, [])
                job = self.jobs[key] = JobSample(stage=script[pid] or "?",
                                                 label=job_label(cmd), first=now, last=now)
            job.last = now
            job.peak_rss = max(job.peak_rss, value)


def stage_script(cmdline: Sequence[str]) -> str | None:
    """``train`` for a command line running ``scripts/train.py`` (or a shell doing so)."""
    for arg in cmdline:
        for word in arg.split():
            if word.endswith(".py") and "scripts/" in word:
                return Path(word).stem
    return None


def job_label(cmdline: Sequence[str]) -> str:
    """The stage script and its arguments, without the shell's redirections."""
    words = " ".join(cmdline).split()
    start = next((i for i, w in enumerate(words) if w.endswith(".py") and "scripts/" in w), 0)
    kept = []
    for word in words[start:]:
        if word in (">", "2>&1", ">>") or word.startswith(("logs/", ">")):
            break
        kept.append(word)
    return " ".join(kept)


def run_monitored(cmd: Sequence[str], *, cwd: Path, log: Path,
                  interval: float) -> tuple[float, TreeMonitor]:
    """Run ``cmd`` with its output in ``log``; wall seconds and the monitor."""
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PATH": f"{Path(sys.executable).parent}:"
                                     f"{os.environ['PATH']}"})
        with TreeMonitor(proc.pid, interval=interval) as monitor:
            rc = proc.wait()
    wall = time.monotonic() - start
    if rc != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"error: {' '.join(cmd)} failed (exit {rc}); log {log}:\n{tail}")
    return wall, monitor


# --------------------------------------------------------------------------- pipeline
def read_benchmark_tsvs(project: Path) -> list[dict]:
    """One row per job from Snakemake's ``logs/benchmarks/<rule>/...tsv`` files."""
    jobs = []
    for tsv in sorted((project / "logs" / "benchmarks").rglob("*.tsv")):
        with open(tsv, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        rel = tsv.relative_to(project / "logs" / "benchmarks")
        rss = [float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "NA", "-")]
        stage = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        jobs.append({"stage": stage, "job": str(rel.with_suffix("")),
                     "wall_s": float(np.mean([float(r["s"]) for r in rows])),
                     "peak_rss_mb": max(rss) if rss else None})
    return jobs


def summarise(jobs: list[dict]) -> dict[str, dict]:
    """Per stage: job count, summed and longest wall time, largest peak RSS."""
    stages: dict[str, dict] = {}
    for job in jobs:
        s = stages.setdefault(job["stage"], {"jobs": 0, "wall_s_sum": 0.0, "wall_s_max": 0.0,
                                             "peak_rss_mb_max": 0.0})
        s["jobs"] += 1
        s["wall_s_sum"] += job["wall_s"]
        s["wall_s_max"] = max(s["wall_s_max"], job["wall_s"])
        if job["peak_rss_mb"] is not None:
            s["peak_rss_mb_max"] = max(s["peak_rss_mb_max"], job["peak_rss_mb"])
    total = sum(s["wall_s_sum"] for s in stages.values()) or 1.0
    for s in stages.values():
        s["share"] = s["wall_s_sum"] / total
    return dict(sorted(stages.items(), key=lambda kv: -kv[1]["wall_s_sum"]))


SHARED_RAVDESS = ROOT.parent / "shared" / "data" / "ravdess"


def write_custom_corpus(root: Path, n_clips: int, *, source: Path = SHARED_RAVDESS) -> Path:
    """``n_clips`` real clips in a user's layout: ``clips/*.wav`` and ``manifest.csv``.

    Taken round-robin over the actors, each actor's files ordered so that the emotion
    changes fastest, so a small corpus still has every speaker and every emotion.
    """
    actors = sorted(p for p in source.glob("Actor_*") if p.is_dir())
    if not actors:
        raise SystemExit(f"error: no real clips under {source} (--custom-clips needs them)")
    queues = [sorted(a.glob("*.wav"), key=lambda f: f.stem.split("-")[5:1:-1])
              for a in actors]
    picked: list[Path] = []
    while len(picked) < n_clips and any(queues):
        for queue in queues:
            if queue and len(picked) < n_clips:
                picked.append(queue.pop(0))
    (root / "clips").mkdir(parents=True)
    rows = ["path,emotion,speaker"]
    for wav in picked:
        shutil.copyfile(wav, root / "clips" / wav.name)
        fields = wav.stem.split("-")
        rows.append(f"clips/{wav.name},{RAVDESS_CODES[fields[2]]},actor{fields[6]}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def bench_pipeline(args: argparse.Namespace, workdir: Path) -> dict:
    project = copy_checkout(workdir / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["demo"]["preset"] = args.preset
    if args.custom_clips:
        corpus = write_custom_corpus(workdir / "my_corpus", args.custom_clips)
        params["corpora"] = {"custom": str(corpus)}
        # One corpus: no cross-corpus protocol (the run would stop, saying so).
        params["train"]["protocols"] = [p for p in params["train"]["protocols"]
                                        if p != "cross_corpus"]
    for key in ("models", "protocols", "feature_sets"):
        if getattr(args, key):
            params["train"][key] = getattr(args, key)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # A git repository as a clone is: the build is recorded in dvc.lock at the end.
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                 "commit", "-qm", "benchmark copy"]):
        subprocess.run(cmd, cwd=project, check=True)
    subject = (f"a custom corpus of {args.custom_clips} real clips" if args.custom_clips
               else f"the {args.preset!r} preset")
    print(f"running snakemake --cores {args.cores} on {subject} in {project}", flush=True)
    wall, monitor = run_monitored(["snakemake", "--cores", str(args.cores)], cwd=project,
                                  log=workdir / "snakemake.log", interval=args.interval)
    jobs = read_benchmark_tsvs(project)
    source = "snakemake benchmark files (logs/benchmarks)"
    if not jobs:
        source = f"psutil polling every {args.interval} s"
        jobs = [{"stage": j.stage, "job": j.label, "wall_s": j.last - j.first,
                 "peak_rss_mb": j.peak_rss / MB} for j in monitor.jobs.values()]
    return {
        "stage": "pipeline", "preset": args.preset, "cores": args.cores,
        "corpora": ({"custom": f"{args.custom_clips} real RAVDESS clips, CSV manifest"}
                    if args.custom_clips else params["corpora"]),
        "train": {k: params["train"][k] for k in ("models", "protocols", "feature_sets")},
        "command": f"snakemake --cores {args.cores}",
        "wall_s": wall,
        "tree_peak_rss_mb": monitor.peak_tree_rss / MB,
        "largest_process_rss_mb": monitor.peak_process_rss / MB,
        "per_job_source": source,
        "stages": summarise(jobs),
        "jobs": sorted(jobs, key=lambda j: (j["stage"], j["job"])),
    }


def print_pipeline(result: dict) -> None:
    print(f"\npipeline, {result.get('corpora', result['preset'])}, {result['command']}: "
          f"{result['wall_s']:.1f} s end to end; snakemake tree peak "
          f"{result['tree_peak_rss_mb']:.0f} MB RSS (sum of processes)")
    print(f"per job: {result['per_job_source']}\n")
    print(f"{'stage':<24}{'jobs':>6}{'sum s':>10}{'share':>8}{'max s':>9}{'max RSS MB':>12}")
    for name, s in result["stages"].items():
        print(f"{name:<24}{s['jobs']:>6}{s['wall_s_sum']:>10.1f}{s['share']:>8.1%}"
              f"{s['wall_s_max']:>9.1f}{s['peak_rss_mb_max']:>12.0f}")


# --------------------------------------------------------------------------- features
def synthetic_clip(rng: np.random.Generator, sr: int) -> np.ndarray:
    """A 1.5-3 s voiced "vowel": 8 harmonics of a wobbling pitch, faded, with noise."""
    dur = rng.uniform(1.5, 3.0)
    t = np.arange(int(dur * sr)) / sr
    f0 = rng.uniform(90, 260) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 9)) * np.hanning(len(t)) ** 0.3
    return (0.3 * y / np.abs(y).max() + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_synthetic_corpus(root: Path, n_clips: int, *, seed: int = 0, sr: int = 16000,
                           distinct: int = 256) -> Path:
    """``n_clips`` files in ``root/Actor_NNN/`` (60 per speaker) and a manifest naming them.

    Every file is its own path; the audio cycles through ``distinct`` synthesised clips,
    so writing 50k files takes a minute, not the synthesis time of 50k clips.
    """
    import pandas as pd
    import soundfile as sf

    emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    rng = np.random.default_rng(seed)
    pool = [synthetic_clip(rng, sr) for _ in range(min(distinct, n_clips))]
    rows = []
    for i in range(n_clips):
        speaker = i // 60 + 1
        path = root / f"Actor_{speaker:04d}" / f"clip_{i:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, pool[i % len(pool)], sr, subtype="PCM_16")
        emotion = emotions[i % len(emotions)]
        rows.append({"path": str(path), "corpus": "synthetic", "speaker": f"{speaker:04d}",
                     "gender": "male" if speaker % 2 else "female", "emotion": emotion,
                     "label_code": emotion})
    manifest = root / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(manifest, index=False)
    return manifest


def bench_features(args: argparse.Namespace, workdir: Path) -> dict:
    sizes = sorted(args.clips or [1000, 12000, 50000])
    runs = []
    for n in sizes:
        corpus = workdir / f"synthetic_{n}"
        start = time.monotonic()
        print(f"writing {n} synthetic clips to {corpus}", flush=True)
        manifest = write_synthetic_corpus(corpus, n)
        gen_s = time.monotonic() - start
        out = workdir / f"features_{n}"
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["mfcc"]["workers"] = args.cores
        (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        cmd = [sys.executable, str(ROOT / "scripts" / "extract_features.py"),
               "--feature-set", "mfcc", "--corpus", "synthetic",
               "--params", str(workdir / "params.yaml"),
               "--manifest", str(manifest), "--out", str(out), "--no-progress"]
        print(f"extracting features of {n} clips ({args.cores} workers)", flush=True)
        wall, monitor = run_monitored(cmd, cwd=workdir, log=workdir / f"features_{n}.log",
                                      interval=args.interval)
        sizes_mb = {f.name: f.stat().st_size / MB for f in out.iterdir() if f.is_file()}
        runs.append({"clips": n, "wall_s": wall, "ms_per_clip": 1000 * wall / n,
                     "tree_peak_rss_mb": monitor.peak_tree_rss / MB,
                     "largest_process_rss_mb": monitor.peak_process_rss / MB,
                     "output_mb": sizes_mb, "generate_s": gen_s})
        if len(runs) > 1 and runs[-1]["clips"] > runs[-2]["clips"]:
            prev = runs[-2]
            runs[-1]["marginal_ms_per_clip"] = (
                1000 * (wall - prev["wall_s"]) / (n - prev["clips"]))
        shutil.rmtree(corpus)
        shutil.rmtree(out)
    return {"stage": "features", "workers": args.cores,
            "clips": "synthetic 16 kHz voiced tones, 1.5-3.0 s (mean 2.25 s)",
            "command": "scripts/extract_features.py --feature-set mfcc (mfcc.workers = N)",
            "runs": runs}


def print_features(result: dict) -> None:
    print(f"\nfeature stage, {result['workers']} workers, {result['clips']}\n")
    print(f"{'clips':>8}{'wall s':>10}{'ms/clip':>10}{'marginal':>10}{'tree RSS MB':>13}"
          f"{'largest MB':>12}")
    for r in result["runs"]:
        marginal = r.get("marginal_ms_per_clip")
        print(f"{r['clips']:>8}{r['wall_s']:>10.1f}{r['ms_per_clip']:>10.1f}"
              f"{'' if marginal is None else f'{marginal:.1f}':>10}"
              f"{r['tree_peak_rss_mb']:>13.0f}{r['largest_process_rss_mb']:>12.0f}")
    print("\nmarginal: (wall - wall of the previous size) / (clips - previous clips), "
          "i.e. without start-up")


# --------------------------------------------------------------------------- main
def machine() -> dict:
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "load_avg_1m_at_end": os.getloadavg()[0],
            "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.stage == "pipeline":
            result = bench_pipeline(args, workdir)
            name = f"custom{args.custom_clips}" if args.custom_clips else args.preset
            out = args.out or RESULTS / f"pipeline_{name}.json"
        else:
            result = bench_features(args, workdir)
            out = args.out or RESULTS / "features_scaling.json"
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"kept {workdir}")
    result["machine"] = machine()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    (print_pipeline if args.stage == "pipeline" else print_features)(result)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
