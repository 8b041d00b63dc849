"""Benchmark: time to the first answer of ``predict.py``, classical vs sequence model.

Each run is a fresh ``python predict.py --file CLIP --model DIR`` process (so
interpreter start-up, imports, safe model loading, feature extraction and
the answer are all counted); the time is taken when the answer line
(``<file>: EMOTION``) appears on stdout. Runs alternate classical, sequence,
classical, ... so background load hits both alike; the best and the median
of ``--repeat`` runs are reported side by side with their ratio, and each
side's heavy imports (keras, jax, matplotlib) are listed from a
``python -X importtime`` run.

Without ``--classical``/``--sequence`` a tiny demo project is trained first
(two synthetic demo corpora, an SVM and the LSTM, in a temporary folder).

Run from the project root::

    .venv/bin/python benchmarks/bench_predict_start.py --repeat 5
    .venv/bin/python benchmarks/bench_predict_start.py \\
        --classical models/speaker/mfcc/svm --sequence models/speaker/mfcc/lstm_seed
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("keras", "jax", "matplotlib", "tensorflow", "torch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classical", type=Path, help="a classical model folder (skops)")
    parser.add_argument("--sequence", type=Path, help="a sequence model folder (keras)")
    parser.add_argument("--clip", type=Path, help="audio file to classify (default: a demo clip)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per model (default 5)")
    return parser


def demo_models(work: Path) -> tuple[Path, Path, Path]:
    """Train an SVM and the seed LSTM on two tiny demo corpora in ``work``; return them and
    a clip."""
    import yaml

    sys.path.insert(0, str(ROOT / "tests"))
    from support import build_demo_project

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"ravdess": "data/demo/ravdess", "tess": "data/demo/tess"}
    params["demo"]["preset"] = "tiny"
    params["lstm_seed"].update(epochs=3, patience=2)
    build_demo_project(work, params, models=("svm", "lstm_seed"), evaluate=False)
    clip = next((work / "data" / "demo" / "ravdess").rglob("*.wav"))
    return (work / "models/speaker/mfcc/svm", work / "models/speaker/mfcc/lstm_seed", clip)


def time_to_answer(model: Path, clip: Path) -> tuple[float, float]:
    """Seconds from process start to the answer line of ``predict.py`` on stdout, and the
    process' CPU seconds (user + system; less sensitive to a busy machine than wall time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, str(ROOT / "predict.py"), "--file", str(clip), "--model", str(model)]
    start = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=_env()) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(f"{clip}: ") or f"{clip.name}: " in line:
                elapsed = time.perf_counter() - start
                proc.stdout.read()
                break
        else:
            raise RuntimeError(f"predict.py gave no answer for {model}")
    if proc.returncode != 0:
        raise RuntimeError(f"predict.py failed on {model} (exit {proc.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def heavy_imports(model: Path, clip: Path) -> list[str]:
    """Top-level heavy packages imported by one predict run (``python -X importtime``)."""
    run = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "predict.py"),
                          "--file", str(clip), "--model", str(model)],
                         capture_output=True, text=True, env=_env(), check=True)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in run.stderr.splitlines()
             if line.startswith("import time:")}
    return sorted(n for n in HEAVY if n in names)


def _env() -> dict[str, str]:
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        if args.classical and args.sequence:
            classical, sequence = args.classical.resolve(), args.sequence.resolve()
            clip = args.clip
            if clip is None:
                raise SystemExit("--clip is required with --classical/--sequence")
        else:
            print("training an SVM and the seed LSTM on a tiny demo project ...", file=sys.stderr)
            classical, sequence, clip = demo_models(Path(tmp))
        clip = Path(clip).resolve()
        times: dict[str, list[float]] = {"classical": [], "sequence": []}
        cpu: dict[str, list[float]] = {"classical": [], "sequence": []}
        for _ in range(args.repeat):
            for kind, model in (("classical", classical), ("sequence", sequence)):
                wall, used = time_to_answer(model, clip)
                times[kind].append(wall)
                cpu[kind].append(used)
        print(f"time to first answer, {args.repeat} fresh processes each "
              f"(clip {clip.name}, {os.cpu_count()} cores):")
        for kind, model in (("classical", classical), ("sequence", sequence)):
            t = times[kind]
            print(f"  {kind:9s} {model.name:6s} best {min(t):5.2f} s  median "
                  f"{statistics.median(t):5.2f} s  CPU (median) "
                  f"{statistics.median(cpu[kind]):5.2f} s  heavy imports: "
                  f"{', '.join(heavy_imports(model, clip)) or 'none'}")
        ratio = statistics.median(times["sequence"]) / statistics.median(times["classical"])
        print(f"  sequence / classical (median): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
