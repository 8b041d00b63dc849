"""Fine-tuned BYOL-S (``byols_ft``) against its frozen embeddings, on the same folds.

    python benchmarks/byols_ft_bench.py --root ../shared/data/ravdess --n-folds 4 \\
        [--variants ft2 ft3 probe] [--out benchmarks/results/byols_ft_ravdess.json]

Speaker-disjoint folds (:func:`ser.splits.protocols.speaker_folds`, stratified by emotion;
``--n-folds 0``: leave one speaker out). In every fold, on the training speakers only:

- **frozen**: the ``byols`` embeddings (mean + max of the pretrained encoder; log-mel
  standardisation statistics of the fold's training clips) with an untuned
  StandardScaler + logistic regression and StandardScaler + RBF SVM (C = 1, balanced
  class weights both);
- **byols_ft variants** (:func:`ser.models.byols_ft.fit_byols_ft`, early stopping on a
  speaker-disjoint validation split of the training speakers): ``ft2`` last conv block +
  512-unit layers + head trained (the default), ``ft3`` only the 512-unit layers + head,
  ``probe`` only the head (no fine-tuning phase; the same masks and mixup). Extra
  settings: ``--set key=value`` (any :class:`ByolsFTConfig` field, for every variant).

Pooled UAR (every fold's predictions together) and the per-fold UARs of each go to
``--out`` (JSON) with the command, settings, date and wall times. Log-mels are decoded
once (decoding settings of ``params.yaml``'s ``mfcc:`` section, at 16 kHz).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser.corpora import parse_corpus  # noqa: E402
from ser.errors import SerError  # noqa: E402
from ser.features import byols  # noqa: E402
from ser.features.logmel import fix_length  # noqa: E402
from ser.labels import sort_labels  # noqa: E402
from ser.splits.protocols import speaker_folds, speaker_groups, validation_split  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "ft2": {"frozen_blocks": 2},
    "ft3": {"frozen_blocks": 3},
    "probe": {"frozen_blocks": 3, "epochs": 0, "head_epochs": 25},
}


def _value(text: str) -> Any:
    return yaml.safe_load(text)


def load_logmels(paths: list[str], params: dict[str, Any]) -> tuple[list[int], list[np.ndarray]]:
    """Decode + front end of every clip (progress bar); ``(kept indices, log-mels)``."""
    from tqdm import tqdm

    keep, mels = [], []
    for i, path in enumerate(tqdm(paths, desc="log-mel", unit="clip", file=sys.stderr)):
        try:
            mels.append(byols.logmel_from_file(path, params=params))
            keep.append(i)
        except SerError as exc:
            print(f"warning: skipped {exc}", file=sys.stderr)
    return keep, mels


def frozen_scores(emb_train: np.ndarray, y_train: np.ndarray, emb_test: np.ndarray,
                  ) -> dict[str, np.ndarray]:
    """Predictions of the untuned classifiers on frozen embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    models = {"frozen_logreg": LogisticRegression(C=1.0, max_iter=3000,
                                                  class_weight="balanced"),
              "frozen_svm": SVC(C=1.0, class_weight="balanced")}
    return {name: make_pipeline(StandardScaler(), m).fit(emb_train, y_train).predict(emb_test)
            for name, m in models.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="ravdess")
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared/data/ravdess")
    parser.add_argument("--n-folds", type=int, default=4,
                        help="speaker-disjoint folds (0: leave one speaker out)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="ByolsFTConfig settings for every variant")
    parser.add_argument("--n-frames", type=int, default=0,
                        help="input frames (0: the longest clip's, rounded up to 8, <= 400)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, nargs="*", default=None,
                        help="run only these fold numbers (a quick look; pooled UAR then "
                             "covers those folds only)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/byols_ft_ravdess.json")
    args = parser.parse_args(argv)

    import keras  # noqa: F401 - after KERAS_BACKEND
    from sklearn.metrics import balanced_accuracy_score

    from ser.models.byols_ft import ByolsFTConfig, fit_byols_ft, predict_proba

    wall = time.perf_counter()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    overrides = {k: _value(v) for k, v in overrides.items()}
    manifest = parse_corpus(args.corpus, args.root).to_frame()
    mfcc_params = yaml.safe_load(args.params.read_text())["mfcc"]
    keep, mels = load_logmels([str(p) for p in manifest["path"]], mfcc_params)
    table = manifest.iloc[keep].reset_index(drop=True)
    labels = sort_labels(table["emotion"].unique())
    y = table["emotion"].map({lab: i for i, lab in enumerate(labels)}).to_numpy(np.int32)
    groups = speaker_groups(table).to_numpy()
    n_frames = args.n_frames or min(400, -(-max(m.shape[0] for m in mels) // 8) * 8)
    X = fix_length(mels, n_frames, pad="zeros")
    folds = speaker_folds(groups, y, n_folds=args.n_folds or None, seed=args.seed)
    arrays, digest = byols.load_weights()
    encoder = byols.Encoder(arrays)
    preds: dict[str, np.ndarray] = {}
    fold_rows: list[dict[str, Any]] = []
    chosen = sorted(set(folds)) if args.folds is None else args.folds
    for fold in chosen:
        test = np.flatnonzero(folds == fold)
        train = np.flatnonzero(folds != fold)
        row: dict[str, Any] = {"fold": int(fold),
                               "test_speakers": sorted(set(groups[test].tolist()))}
        t0 = time.perf_counter()
        mean, std = byols.norm_stats([mels[i] for i in train])
        emb = encoder.embed(mels, norm_mean=mean, norm_std=std)
        for name, pred in frozen_scores(emb[train], y[train], emb[test]).items():
            preds.setdefault(name, np.full(len(y), -1))[test] = pred
            row[name] = float(balanced_accuracy_score(y[test], pred))
        row["frozen_seconds"] = round(time.perf_counter() - t0, 1)
        fit_idx, val_idx = validation_split(y[train], groups[train], "speaker_cv",
                                            share=0.2, seed=args.seed)
        for variant in args.variants:
            cfg = ByolsFTConfig.from_mapping({"n_frames": n_frames} | VARIANTS[variant]
                                             | overrides)
            t0 = time.perf_counter()
            model, epochs, facts = fit_byols_ft(
                X[train], y[train], n_classes=len(labels), train_idx=fit_idx,
                val_idx=val_idx, cfg=cfg, seed=args.seed, arrays=arrays,
                verbose=args.verbose)
            pred = predict_proba(model, X[test]).argmax(axis=1)
            name = f"byols_ft_{variant}"
            preds.setdefault(name, np.full(len(y), -1))[test] = pred
            row[name] = float(balanced_accuracy_score(y[test], pred))
            row[f"{name}_best_epoch"] = facts.get("best_epoch")
            row[f"{name}_best_val_uar"] = facts.get("best_val_uar")
            row[f"{name}_epochs_run"] = len(epochs)
            row[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
            keras.backend.clear_session()
        fold_rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    done = np.isin(folds, chosen)
    pooled = {name: float(balanced_accuracy_score(y[done], p[done]))
              for name, p in preds.items()}
    result = {
        "benchmark": "byols_ft vs frozen byols embeddings",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/byols_ft_bench.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "corpus": args.corpus, "n_clips": int(len(y)), "n_speakers": int(len(set(groups))),
        "labels": labels, "chance_uar": 1.0 / len(labels),
        "folds": ("leave-one-speaker-out" if not args.n_folds else
                  f"{args.n_folds} speaker-disjoint folds (stratified, seed {args.seed})")
                 + ("" if args.folds is None else f"; only folds {chosen}"),
        "n_frames": n_frames, "weights_sha256": digest,
        "variants": {v: ByolsFTConfig.from_mapping({"n_frames": n_frames} | VARIANTS[v]
                                                   | overrides).to_dict()
                     for v in args.variants},
        "pooled_uar": pooled, "per_fold": fold_rows,
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "cpu": f"{os.cpu_count()} logical CPUs (shared)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(pooled, indent=2))
    print(f"wrote {args.out} ({result['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
