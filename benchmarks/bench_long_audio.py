"""Peak memory of every feature set's extraction and of predict.py with every model kind,
on a 60-minute recording vs a 4-s clip.

Feature extraction decodes at most ``mfcc.max_seconds`` plus a trim margin
(``ser.features.mfcc.read_seconds``) for every feature set, so memory should not grow
with the length of the file. Each measurement runs the real command in a fresh Python
process and reports the larger of that process's and its children's peak resident set
size (``ru_maxrss``; predict.py extracts in a forked child while the model loads):

* extraction: ``scripts/extract_features.py --feature-set S`` on a one-clip manifest
  (the custom corpus parser), for every feature set of the registry but the ``_spk``
  variants (which read their base set's files);
* predict: ``predict.py --file F --model M --json`` for every model of a small demo
  project (``tests/stages.build_every_set_project``: each model kind, each feature set).

The 60-minute file (48 kHz mono 16-bit, 345 MB) is written block by block into a
temporary folder and deleted afterwards; the result is written as JSON.

Usage
-----
python benchmarks/bench_long_audio.py                        # 60 min; results/long_audio.json
python benchmarks/bench_long_audio.py --minutes 10 --project /tmp/p   # reuse a project
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

#: Runs a script in this process (runpy) and writes the peak RSS of it and its children.
RUNNER = """
import json, os, resource, runpy, sys
out = os.environ["BENCH_OUT"]
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
    rc = 0
except SystemExit as exc:
    rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
open(out, "w").write(json.dumps({"rc": rc, "self_mb": own, "children_mb": kids}))
"""


def write_long_wav(path: Path, *, minutes: float, sr: int) -> None:
    """A speech-like test signal (tones + noise), written block by block (flat memory)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    total = int(round(minutes * 60 * sr))
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as fh:
        for i, start in enumerate(range(0, total, sr * 10)):
            n = min(sr * 10, total - start)
            t = np.arange(n) / sr
            y = 0.2 * np.sin(2 * np.pi * (150 + 10 * (i % 7)) * t) + 0.02 * rng.normal(size=n)
            fh.write(y.astype(np.float32))


def measure(script: str | Path, *args: str, cwd: Path, expect_rc: int = 0) -> dict:
    """Run ``script args`` in a fresh process; its rc, peak RSS (MB) and wall time."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    env = os.environ | {"BENCH_OUT": str(out), "KERAS_BACKEND": "jax"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(script), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    try:
        result = json.loads(out.read_text())
    except (OSError, json.JSONDecodeError):
        raise SystemExit(f"measurement failed: {script} {' '.join(args)}\n"
                         f"{proc.stderr[-2000:]}") from None
    finally:
        out.unlink(missing_ok=True)
    if result["rc"] != expect_rc:
        raise SystemExit(f"{script} {' '.join(args)} exited {result['rc']}:\n"
                         f"{proc.stderr[-2000:]}")
    result["peak_mb"] = round(max(result["self_mb"], result["children_mb"]), 1)
    result["seconds"] = round(seconds, 2)
    if expect_rc:
        result["stderr"] = proc.stderr.strip()
    return result


def tampered_copies(model_dir: Path, folder: Path) -> dict[str, Path]:
    """The model with ``max_seconds: null`` in its card: as edited (checksum differs) and
    with SHA256SUMS rewritten to match (issue 17, item 6/12)."""
    import shutil

    from ser.models.store import write_checksums

    out = {}
    for name in ("card edited", "card + SHA256SUMS edited"):
        copy = folder / name.replace(" ", "_").replace("+", "and")
        shutil.copytree(model_dir, copy)
        card = json.loads((copy / "card.json").read_text())
        fp = card["feature_params"]
        fp.get("signal", fp)["max_seconds"] = None  # the decoding settings of any set
        (copy / "card.json").write_text(json.dumps(card, indent=2))
        if "SHA256SUMS" in name:
            write_checksums(copy)
        out[name] = copy
    return out


def one_clip_manifest(audio: Path, folder: Path, project: Path) -> Path:
    """A custom-corpus manifest holding just ``audio`` (linked in as angry/spk1/<name>)."""
    clip = folder / "corpus" / "angry" / "spk1" / audio.name
    clip.parent.mkdir(parents=True)
    os.link(audio, clip)
    manifest = folder / "manifest.parquet"
    measure(ROOT / "scripts" / "prepare_manifest.py", "--params", "params.yaml", "--corpus",
            "custom", "--root", str(folder / "corpus"), "--out", str(manifest), cwd=project)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="long file length")
    parser.add_argument("--sr", type=int, default=48000, help="sample rate of the test files")
    parser.add_argument("--project", type=Path, default=None,
                        help="demo project with models/speaker/<set>/<model> (default: "
                             "build one in a temporary folder, a few minutes)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "long_audio.json",
                        help="result JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    from support import models_for, plain_feature_sets

    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        tmp_path = Path(tmp)
        project = args.project
        if project is None or not (project / "models").is_dir():
            project = project or tmp_path / "project"
            project.mkdir(parents=True, exist_ok=True)
            print(f"building the demo project in {project} ...", file=sys.stderr)
            # In a separate process: Linux hands a forked child its parent's peak RSS
            # (ru_maxrss survives fork and exec), so a build in this process would inflate
            # every measurement below to the build's peak.
            subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
                            "from support import build_every_set_project as b;"
                            "from pathlib import Path; b(Path(sys.argv[2]))",
                            str(ROOT / "tests"), str(project)], check=True)
        files = {"4-s clip": tmp_path / "short.wav",
                 f"{args.minutes:g}-min file": tmp_path / "long.wav"}
        print(f"writing a {args.minutes:g}-minute and a 4-s file at {args.sr} Hz ...",
              file=sys.stderr)
        write_long_wav(files["4-s clip"], minutes=4 / 60, sr=args.sr)
        write_long_wav(files[f"{args.minutes:g}-min file"], minutes=args.minutes, sr=args.sr)
        rows = []
        for label, audio in files.items():
            work = tmp_path / label.replace(" ", "_")
            manifest = one_clip_manifest(audio, work, project)
            for feature_set in plain_feature_sets():
                r = measure(ROOT / "scripts" / "extract_features.py", "--params", "params.yaml",
                            "--feature-set", feature_set, "--corpus", "custom",
                            "--manifest", str(manifest),
                            "--out", str(work / "features" / feature_set), "--no-progress",
                            cwd=project)
                rows.append({"input": label, "what": "extract", "feature_set": feature_set,
                             "model": None, **r})
                print(f"{label:<13} extract {feature_set:<13} {r['peak_mb']:7.0f} MB",
                      file=sys.stderr)
                for model in models_for(feature_set):
                    model_dir = project / "models" / "speaker" / feature_set / model
                    r = measure(ROOT / "predict.py", "--file", str(audio), "--model",
                                str(model_dir), "--json", cwd=project)
                    rows.append({"input": label, "what": "predict",
                                 "feature_set": feature_set, "model": model, **r})
                    print(f"{label:<13} predict {feature_set:<13} {model:<14} "
                          f"{r['peak_mb']:7.0f} MB", file=sys.stderr)
        long_audio = files[f"{args.minutes:g}-min file"]
        tampered = []
        for name, copy in tampered_copies(project / "models" / "speaker" / "egemaps" / "svm",
                                          tmp_path).items():
            r = measure(ROOT / "predict.py", "--file", str(long_audio), "--model", str(copy),
                        "--json", cwd=project, expect_rc=2)
            tampered.append({"model": f"egemaps/svm, {name} (max_seconds: null)", **r})
            print(f"tampered: {name}: rc {r['rc']}, {r['peak_mb']:.0f} MB, "
                  f"{r['seconds']:.1f} s: {r['stderr']}", file=sys.stderr)
        size_mb = {label: round(p.stat().st_size / 1e6, 1) for label, p in files.items()}
    long_label = f"{args.minutes:g}-min file"
    table = []
    print(f"\n{'what':<8} {'feature set':<13} {'model':<14} {'4-s clip MB':>11} "
          f"{long_label + ' MB':>16} {'ratio':>6}")
    for short in (r for r in rows if r["input"] == "4-s clip"):
        long = next(r for r in rows if r["input"] == long_label and r["what"] == short["what"]
                    and r["feature_set"] == short["feature_set"]
                    and r["model"] == short["model"])
        ratio = long["peak_mb"] / short["peak_mb"]
        table.append({"what": short["what"], "feature_set": short["feature_set"],
                      "model": short["model"], "short_mb": short["peak_mb"],
                      "long_mb": long["peak_mb"], "ratio": round(ratio, 3)})
        print(f"{short['what']:<8} {short['feature_set']:<13} {short['model'] or '-':<14} "
              f"{short['peak_mb']:11.0f} {long['peak_mb']:16.0f} {ratio:6.2f}")
    worst = max(t["long_mb"] for t in table)
    print(f"largest peak RSS on the {long_label}: {worst:.0f} MB")
    doc = {"benchmark": "bench_long_audio", "command": " ".join(["python",
           "benchmarks/bench_long_audio.py", *(argv if argv is not None else sys.argv[1:])]),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_average_1min": round(os.getloadavg()[0], 2)},
           "minutes": args.minutes, "sample_rate": args.sr, "file_mb": size_mb,
           "measure": "max(ru_maxrss of the process, of its waited-for children)",
           "largest_long_mb": worst, "table": table, "tampered_card_on_long_file": tampered,
           "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
