"""How much of a small pipeline job is process start-up (imports) rather than work.

Runs a few stage scripts of a built demo (``make demo`` first) the way Snakemake runs
them, one process each, writing into a scratch folder, and for each measures

* the job's CPU time (user + system, children included): the whole process;
* the CPU time of a process that only imports the modules the job imported
  (taken from ``python -X importtime``) and exits: its start-up.

CPU time, not wall time: this machine's cores are shared with other work, which
stretches wall times by a varying factor, while a process' CPU time stays close to
what it costs alone. Start-up / job is the share that fewer processes per unit of
work (or Snakemake ``group:`` jobs in one process) could save.

    python benchmarks/bench_job_startup.py            # prints a table, writes the JSON
    python benchmarks/bench_job_startup.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "job_startup.json"
PY = sys.executable


def stage_commands(tmp: Path) -> dict[str, list[str]]:
    """The stage commands measured (demo outputs as inputs, outputs under ``tmp``)."""
    common = ["--features", "data/features/mfcc", "--feature-set", "mfcc",
              "--split", "data/splits/speaker.parquet", "--params", "params.yaml"]
    manifests = sorted(str(p) for p in (ROOT / "data" / "manifests").glob("*.parquet")
                       if not p.stem.endswith("_rejected"))
    return {
        "splits (random)": [PY, "scripts/make_splits.py", "--protocol", "random",
                            "--out", str(tmp / "random.parquet"), "--params", "params.yaml",
                            *manifests],
        "train knn (speaker/mfcc)": [PY, "scripts/train.py", "--model", "knn", "--protocol",
                                     "speaker", *common, "--out", str(tmp / "knn"),
                                     "--jobs", "1"],
        "evaluate knn (speaker/mfcc)": [PY, "scripts/evaluate.py", "--protocol", "speaker",
                                        "--model-dir", str(tmp / "knn"), *common,
                                        "--out", str(tmp / "knn_metrics")],
        "train decision_tree (speaker/mfcc)": [PY, "scripts/train.py", "--model",
                                               "decision_tree", "--protocol", "speaker",
                                               *common, "--out", str(tmp / "tree"),
                                               "--jobs", "1"],
    }


def cpu_of(cmd: list[str], *, env: dict[str, str]) -> tuple[float, float, str, str]:
    """(CPU seconds, wall seconds, stdout, stderr) of running ``cmd`` to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd[1:3])} failed: {proc.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, proc.stdout, proc.stderr


def imported_top_level(importtime_stderr: str) -> list[str]:
    """Top-level modules a ``python -X importtime`` run imported, in order."""
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$", importtime_stderr, re.M)
    return list(dict.fromkeys(n for indent, n in names if not indent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per command (median)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    args = parser.parse_args(argv)
    if not (ROOT / "data" / "splits" / "speaker.parquet").is_file():
        raise SystemExit("error: no built demo (data/splits/speaker.parquet); run make demo")
    env = {**os.environ, "KERAS_BACKEND": "jax", "SER_CONSOLE_PROGRESS": "0",
           "PYTHONWARNINGS": "ignore"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = statistics.median(cpu_of([PY, "-c", "pass"], env=env)[0]
                                     for _ in range(3))
        for name, cmd in stage_commands(Path(tmp)).items():
            job_cpu, job_wall, modules = [], [], []
            for _ in range(args.repeat):
                cpu, wall, _, err = cpu_of([cmd[0], "-X", "importtime", *cmd[1:]], env=env)
                job_cpu.append(cpu)
                job_wall.append(wall)
                modules = imported_top_level(err)
            imports = [m for m in modules if m != "__main__"]
            heavy_names = ("keras", "jax", "sklearn", "scipy", "pandas", "pyarrow", "librosa",
                           "opensmile", "matplotlib", "skops", "jsonschema")
            probe = ("import sys\n" + "".join(f"import {m}\n" for m in imports)
                     + f"print(' '.join(m for m in {heavy_names!r} if m in sys.modules))")
            startup_runs = [cpu_of([PY, "-c", probe], env=env) for _ in range(args.repeat)]
            startup = statistics.median(r[0] for r in startup_runs)
            job = statistics.median(job_cpu)
            heavy = startup_runs[-1][2].split()  # what the probe found in sys.modules
            rows.append({"job": name, "job_cpu_s": round(job, 2),
                         "job_wall_s": round(statistics.median(job_wall), 2),
                         "startup_cpu_s": round(startup, 2),
                         "startup_share": round(startup / job, 3) if job else None,
                         "heavy_imports": heavy})
    doc = {"date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
           "python_only_cpu_s": round(baseline, 3), "repeat": args.repeat,
           "load_average_1min": round(os.getloadavg()[0], 1), "nproc": os.cpu_count(),
           "note": "CPU seconds (user+system) per process; wall times are stretched by "
                   "other work on the shared cores (see load_average_1min)",
           "jobs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"{'job':38} {'job CPU':>8} {'start-up CPU':>13} {'share':>6}  wall")
    for r in rows:
        heavy = ", ".join(r["heavy_imports"])
        print(f"{r['job']:38} {r['job_cpu_s']:7.2f}s {r['startup_cpu_s']:12.2f}s "
              f"{r['startup_share']:6.0%}  {r['job_wall_s']:.1f}s  ({heavy})")
    print(f"load average {doc['load_average_1min']} on {doc['nproc']} cores; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
