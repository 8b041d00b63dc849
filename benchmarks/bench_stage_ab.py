"""Before/after: the same pipeline jobs run from two checkouts, side by side in one run.

A whole ``make demo`` takes 13-15 minutes on the shared 2-core machine and its wall time
moves by more than the changes being compared from one run to the next. This benchmark
instead takes one job of each kind from a Snakemake log of a built checkout (a demo
corpus, a manifest, feature extraction, a split, training and evaluation of a classical
and a sequence model, the report) and runs each command from checkout A and from
checkout B alternately, ``--repeat`` times, each a fresh process writing into a scratch
folder (``--out`` redirected; nothing in either checkout changes). Both checkouts must
have been built (``make demo``) and have their own ``.venv``.

Reported per job: the median wall and CPU seconds (user + system, children included)
of each side and the ratio B / A; below 1 means B is faster.

    python benchmarks/bench_stage_ab.py --a /work/before --b /work/after
    python benchmarks/bench_stage_ab.py --a A --b B --repeat 5 --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stage_ab.json"
#: (label, regular expression a logged command must match): one job of each kind (the
#: order of a command's options may differ between the checkouts).
JOBS = (
    ("generate_demo savee", r"scripts/generate_demo\.py --corpus savee "),
    ("manifest ravdess", r"scripts/prepare_manifest\.py --corpus ravdess "),
    ("features mfcc cremad", r"scripts/extract_features\.py --feature-set mfcc --corpus cremad "),
    ("features egemaps ravdess",
     r"scripts/extract_features\.py --feature-set egemaps --corpus ravdess "),
    ("splits speaker", r"scripts/make_splits\.py .*--protocol speaker "),
    ("train svm speaker/mfcc", r"scripts/train\.py --model svm --protocol speaker "
                               r"--features data/features/mfcc --feature-set mfcc "),
    ("train random_forest speaker/egemaps",
     r"scripts/train\.py --model random_forest --protocol speaker "
     r"--features data/features/egemaps --feature-set egemaps "),
    ("train lstm_seed speaker/mfcc", r"scripts/train\.py --model lstm_seed --protocol speaker "),
    ("evaluate svm speaker/mfcc", r"scripts/evaluate\.py .*--model-dir models/speaker/mfcc/svm "),
    ("evaluate lstm_seed speaker/mfcc",
     r"scripts/evaluate\.py .*--model-dir models/speaker/mfcc/lstm_seed "),
    ("report", r"scripts/report\.py "),
)


def logged_commands(project: Path) -> list[str]:
    """Every ``python scripts/...`` command of the project's Snakemake logs."""
    commands = []
    for log in sorted((project / ".snakemake" / "log").glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Shell command: python scripts/"):
                commands.append(line.removeprefix("Shell command: ").split(" > ")[0].strip())
    return commands


def pick(commands: list[str], pattern: str, project: Path) -> list[str]:
    for command in commands:
        if re.search(pattern, command):
            return shlex.split(command)
    raise SystemExit(f"error: no job matching {pattern!r} in {project}/.snakemake/log/ "
                     "(build the checkout with `make demo` first)")


def run(project: Path, argv: list[str], scratch: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``argv`` run in ``project`` with its ``--out`` in scratch."""
    argv = list(argv)
    out = argv.index("--out") + 1
    argv[out] = str(scratch / "out")
    argv[0] = str(project / ".venv" / "bin" / "python")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=project, capture_output=True, text=True,
                          env={**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"})
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv)} failed in {project} "
                         f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="built checkout A (before)")
    parser.add_argument("--b", type=Path, required=True, help="built checkout B (after)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (default: 3)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    sides = {"a": args.a.resolve(), "b": args.b.resolve()}
    logged = {side: logged_commands(path) for side, path in sides.items()}
    rows = []
    print(f"{'job':<38}{'A wall':>8}{'B wall':>8}{'B/A':>7}{'A cpu':>8}{'B cpu':>8}{'B/A':>7}")
    for label, pattern in JOBS:
        times: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
        for _ in range(args.repeat):
            for side, project in sides.items():  # alternating: drift hits both sides alike
                with tempfile.TemporaryDirectory(prefix="ab-") as scratch:
                    times[side].append(run(project, pick(logged[side], pattern, project),
                                           Path(scratch)))
        med = {side: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
               for side, t in times.items()}
        row = {"job": label, "a_wall_s": med["a"][0], "b_wall_s": med["b"][0],
               "wall_ratio": med["b"][0] / med["a"][0], "a_cpu_s": med["a"][1],
               "b_cpu_s": med["b"][1], "cpu_ratio": med["b"][1] / med["a"][1]}
        rows.append(row)
        print(f"{label:<38}{row['a_wall_s']:8.2f}{row['b_wall_s']:8.2f}{row['wall_ratio']:7.2f}"
              f"{row['a_cpu_s']:8.2f}{row['b_cpu_s']:8.2f}{row['cpu_ratio']:7.2f}", flush=True)
    total = {k: sum(r[k] for r in rows) for k in ("a_wall_s", "b_wall_s", "a_cpu_s", "b_cpu_s")}
    print(f"{'sum':<38}{total['a_wall_s']:8.2f}{total['b_wall_s']:8.2f}"
          f"{total['b_wall_s'] / total['a_wall_s']:7.2f}{total['a_cpu_s']:8.2f}"
          f"{total['b_cpu_s']:8.2f}{total['b_cpu_s'] / total['a_cpu_s']:7.2f}")

    def commit(path: Path) -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path,
                              capture_output=True, text=True).stdout.strip()

    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "a": {"path": str(sides["a"]), "commit": commit(sides["a"])},
              "b": {"path": str(sides["b"]), "commit": commit(sides["b"])},
              "repeat": args.repeat, "cpus": os.cpu_count(),
              "load_avg_1m_at_end": os.getloadavg()[0],
              "note": "median of alternating runs; JAX's compilation cache off on both sides",
              "jobs": rows, "sum": total}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
