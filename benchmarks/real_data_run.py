"""Train and evaluate every model on the real RAVDESS recordings in ../shared/data.

Runs the pipeline's own stage scripts, in order, in a separate work folder
(default ``runs/real-ravdess``) whose ``params.yaml`` is the project's with
``corpora`` pointed at the real clips and the protocols set to ``random`` and
``speaker`` (one corpus: no cross-corpus). Prints the metrics table.

    python benchmarks/real_data_run.py [--root ../shared/data/ravdess] [--out runs/real-ravdess]

One speaker-held-out split only, so confidence intervals are wide; for the
leave-one-speaker-out comparison of feature sets x models (plain and
speaker-normalised) use ``benchmarks/real_data_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["svm", "knn", "random_forest", "decision_tree", "lstm_seed"]
PROTOCOLS = ["random", "speaker"]


def stage(script: str, *args: str, cwd: Path) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / script), *args]
    print("$", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{script} failed:\n{proc.stdout}\n{proc.stderr}")
    print("  " + proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real-ravdess")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"ravdess": str(args.root.resolve())}
    params["splits"]["cross_corpus_test"] = "ravdess"
    params["train"]["protocols"] = PROTOCOLS
    params["train"]["models"] = MODELS
    (args.out / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    manifest, features = "data/manifests/ravdess.parquet", "data/features/mfcc"
    stage("prepare_manifest.py", "--corpus", "ravdess", "--root", str(args.root.resolve()),
          "--out", manifest, cwd=args.out)
    stage("extract_features.py", "--feature-set", "mfcc", "--corpus", "ravdess",
          "--manifest", manifest, "--out", f"{features}/ravdess", cwd=args.out)
    for protocol in PROTOCOLS:
        split = f"data/splits/{protocol}.parquet"
        stage("make_splits.py", "--protocol", protocol, "--out", split, manifest, cwd=args.out)
        for model in MODELS:
            common = ["--protocol", protocol, "--features", features, "--split", split]
            stage("train.py", "--model", model, *common,
                  "--out", f"models/{protocol}/mfcc/{model}", cwd=args.out)
            stage("evaluate.py", *common, "--model-dir", f"models/{protocol}/mfcc/{model}",
                  "--out", f"metrics/{protocol}/mfcc/{model}", cwd=args.out)

    print(f"\n{'model':14s} {'protocol':9s} {'UAR':>6s}  {'95% CI':15s} {'acc':>6s} "
          f"{'F1':>6s} {'n':>4s}")
    for protocol in PROTOCOLS:
        for model in MODELS:
            m = json.loads((args.out / "metrics" / protocol / "mfcc" / model / "metrics.json")
                           .read_text())
            lo, hi = m["ci95"]["uar"]
            print(f"{model:14s} {protocol:9s} {m['uar']:6.3f}  [{lo:.3f}, {hi:.3f}]  "
                  f"{m['accuracy']:6.3f} {m['f1_macro']:6.3f} {m['n_test']:4d}")


if __name__ == "__main__":
    main()
