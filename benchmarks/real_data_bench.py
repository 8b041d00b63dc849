"""Speaker-independent benchmark on a real corpus: every feature set x model, plain and
speaker-normalised.

    python benchmarks/real_data_bench.py --corpus ravdess --root ../shared/data/ravdess \\
        --protocol speaker_cv [--feature-sets ...] [--models ...] [--speaker-norm both]

Protocol ``speaker_cv`` (default): k folds grouped by speaker
(:func:`ser.splits.speaker_folds`; ``--n-folds`` defaults to the number of
speakers, i.e. leave-one-speaker-out). Protocol ``speaker``: one split from
:func:`ser.splits.make_split` (``--test-size``). In every training fold each
model is tuned by GridSearchCV with speaker-grouped inner folds
(StratifiedGroupKFold, ``--inner-folds``) over
:data:`ser.models.classical.DEFAULT_GRIDS`, scored by UAR (balanced accuracy),
refit and applied to the held-out speakers.

``--speaker-norm speaker`` z-scores every speaker's features with that
speaker's own statistics (:mod:`ser.normalize`); for the held-out speakers
this uses their unlabeled test clips, so those rows are marked
``transductive``. ``both`` runs plain and normalised side by side.

The ``seed`` feature set with the ``svm`` model is the seed recipe (40 MFCC
means of ``librosa.load`` at 22,050 Hz, StandardScaler + SVC), measured by
the same command as a reference.

Features are extracted once (process pool, progress bar) and cached under
``--cache-dir`` (default ``benchmarks/.cache``), keyed by the file list
(paths, sizes, mtimes) and the feature definition. Results are merged into
``--out-dir``/real_<corpus>_<protocol>.csv (one row per
feature_set x speaker_norm x model; rerunning a subset replaces those rows
and keeps the others, so other benchmarks can append rows with the same
columns) and a ``.json`` with per-speaker tables, chosen parameters and run
settings. The table is printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser.corpora import parse_corpus  # noqa: E402
from ser.errors import SerError  # noqa: E402
from ser.evaluation import speaker_cv_metrics  # noqa: E402
from ser.features.summaries import (  # noqa: E402
    FEATURE_SETS,
    extract_feature_set,
    feature_set_fingerprint,
)
from ser.io import atomic_path  # noqa: E402
from ser.models.classical import CLASSICAL_MODELS, DEFAULT_GRIDS, tune, unprefix  # noqa: E402
from ser.normalize import normalization_metadata, normalize_by_speaker  # noqa: E402
from ser.splits import make_split, speaker_folds, speaker_groups  # noqa: E402

#: Columns of the results CSV (other benchmarks append rows with these).
RESULT_COLUMNS = ["corpus", "protocol", "feature_set", "speaker_norm", "transductive", "model",
                  "pooled_uar", "mean_speaker_uar", "sd_speaker_uar", "min_speaker_uar",
                  "max_speaker_uar", "pooled_accuracy", "n_clips", "n_speakers", "n_folds",
                  "seconds", "date"]
KEY = ["feature_set", "speaker_norm", "model"]
PROTOCOLS = ("speaker_cv", "speaker")


# --------------------------------------------------------------------------- features

def files_key(paths: list[str]) -> str:
    """Hash of the file list with sizes and modification times (cache invalidation)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = Path(p).stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cached_features(paths: list[str], name: str, *, mfcc_params: dict, cache_dir: Path,
                    corpus: str, workers: int) -> pd.DataFrame:
    """Feature set ``name`` of ``paths``, from the cache or extracted and cached.

    ``egemaps_mfcc`` is by definition ``egemaps`` then ``mfcc_stats``; it is
    joined from those two cached sets instead of decoding every file again.
    """
    if name == "egemaps_mfcc":
        parts = [cached_features(paths, part, mfcc_params=mfcc_params, cache_dir=cache_dir,
                                 corpus=corpus, workers=workers).set_index("path")
                 for part in ("egemaps", "mfcc_stats")]
        return parts[0].join(parts[1], how="inner").reset_index()
    fingerprint = feature_set_fingerprint(name, mfcc_params)
    key = hashlib.sha256((files_key(paths) + json.dumps(fingerprint, sort_keys=True)).encode()
                         ).hexdigest()[:16]
    path = cache_dir / f"{corpus}-{name}-{key}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    frame, skipped = extract_feature_set(paths, name, params=mfcc_params, workers=workers)
    for p, reason in skipped:
        print(f"warning: skipped {p}: {reason}", file=sys.stderr)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return frame


# --------------------------------------------------------------------------- evaluation

def folds_for(manifest: pd.DataFrame, protocol: str, *, n_folds: int | None, seed: int,
              test_size: float) -> np.ndarray:
    """Test-fold number per clip (``speaker``: one fold 0 = test, -1 = train only)."""
    if protocol == "speaker_cv":
        return speaker_folds(speaker_groups(manifest), manifest["emotion"], n_folds=n_folds,
                             seed=seed)
    split = make_split(manifest, "speaker", test_size=test_size, seed=seed)
    order = split.set_index("path").loc[manifest["path"], "split"].to_numpy()
    return np.where(order == "test", 0, -1)


def bench_grid(model: str) -> dict[str, list[Any]]:
    """The model's default grid; SVMs without Platt probabilities.

    ``SVC.predict`` never uses the Platt probabilities, so fitting without
    them gives the same predictions about five times faster (the internal
    5-fold calibration is skipped). The ensemble keeps them (soft voting).
    """
    grid = dict(DEFAULT_GRIDS[model])
    if model == "svm":
        grid["probability"] = [False]
    return grid


def run_one(X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: np.ndarray, *,
            model: str, inner_folds: int, seed: int, n_jobs: int,
            ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Predictions for every clip of a test fold, tuning inside each training fold."""
    pred = np.empty(len(y), dtype=object)
    chosen = []
    for fold in sorted(set(folds) - {-1}):
        test = folds == fold
        train = ~test
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            search = tune(model, X[train], y[train], groups=groups[train], protocol="speaker",
                          grid=bench_grid(model), scoring="balanced_accuracy",
                          cv_folds=inner_folds, seed=seed, n_jobs=n_jobs)
        pred[test] = search.predict(X[test])
        chosen.append({"fold": int(fold), "inner_uar": round(float(search.best_score_), 4)}
                      | {unprefix(model, k): v for k, v in search.best_params_.items()})
    return pred, chosen


def merge_results(csv_path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Replace rows with the same feature_set x speaker_norm x model; keep the others."""
    if csv_path.exists():
        old = pd.read_csv(csv_path, dtype={"speaker_norm": str})
        keep = ~old.set_index(KEY).index.isin(rows.set_index(KEY).index)
        rows = pd.concat([old[keep], rows], ignore_index=True)
    return rows.sort_values(["speaker_norm", "mean_speaker_uar"], ascending=[True, False],
                            kind="stable").reset_index(drop=True)


@contextlib.contextmanager
def locked(path: Path):
    """Exclusive lock on ``path`` + ``.lock`` (several runs may merge into one results file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_results(csv_path: Path, json_path: Path, rows: list[dict[str, Any]],
                 runs: dict[str, Any], settings: dict[str, Any]) -> pd.DataFrame:
    """Merge this run's rows and details into the results files (locked, atomic)."""
    with locked(csv_path):
        table = merge_results(csv_path, pd.DataFrame(rows, columns=RESULT_COLUMNS))
        details = (json.loads(json_path.read_text()) if json_path.exists()
                   else {"runs": {}, "settings": {}})
        details["runs"].update(runs)
        details.setdefault("settings", {})[settings["run"]] = settings
        with atomic_path(csv_path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.4f")
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(details, indent=1, default=str) + "\n")
    return table


def print_table(table: pd.DataFrame) -> None:
    print(f"\n{'feature_set':14s} {'norm':8s} {'model':10s} {'pooled':>7s} "
          f"{'spk mean ± sd':>15s} {'min':>6s} {'max':>6s} {'n':>5s}")
    for r in table.itertuples():
        print(f"{r.feature_set:14s} {r.speaker_norm:8s} {r.model:10s} {r.pooled_uar:7.3f} "
              f"{r.mean_speaker_uar:8.3f} ± {r.sd_speaker_uar:.3f} {r.min_speaker_uar:6.3f} "
              f"{r.max_speaker_uar:6.3f} {int(r.n_clips):5d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="ravdess", help="corpus parser (default ravdess)")
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess",
                        help="folder with the corpus' recordings")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="speaker_cv")
    parser.add_argument("--n-folds", type=int, default=None,
                        help="speaker_cv folds (default: one per speaker = leave-one-out)")
    parser.add_argument("--test-size", type=float, default=0.25,
                        help="share of speakers held out by the speaker protocol")
    parser.add_argument("--feature-sets", nargs="+", choices=FEATURE_SETS,
                        default=list(FEATURE_SETS))
    parser.add_argument("--models", nargs="+", choices=CLASSICAL_MODELS,
                        default=["svm", "logreg", "hist_gb", "ensemble"])
    parser.add_argument("--speaker-norm", choices=["none", "speaker", "both"], default="both")
    parser.add_argument("--inner-folds", type=int, default=3,
                        help="speaker-grouped GridSearchCV folds inside each training fold")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workers", type=int, default=2, help="feature extraction processes")
    parser.add_argument("--jobs", type=int, default=1, help="GridSearchCV processes")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / ".cache")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml",
                        help="project parameters (its mfcc: section defines decoding)")
    args = parser.parse_args(argv)

    try:
        mfcc_params = yaml.safe_load(args.params.read_text())["mfcc"]
        manifest = parse_corpus(args.corpus, args.root).to_frame()
    except (SerError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = manifest.sort_values(["corpus", "path"]).reset_index(drop=True)
    paths = manifest["path"].astype(str).tolist()
    norms = ["none", "speaker"] if args.speaker_norm == "both" else [args.speaker_norm]
    csv_path = args.out_dir / f"real_{args.corpus}_{args.protocol}.csv"
    json_path = csv_path.with_suffix(".json")
    runs: dict[str, Any] = {}
    settings = {
        "run": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "corpus": args.corpus, "root": str(args.root),
        "protocol": args.protocol, "n_folds": args.n_folds, "test_size": args.test_size,
        "inner_folds": args.inner_folds, "seed": args.seed, "mfcc_params": mfcc_params,
        "scoring": "balanced_accuracy (UAR)",
        "tuning": "GridSearchCV over DEFAULT_GRIDS, StratifiedGroupKFold by speaker, inside "
                  "each training fold"}
    rows = []
    table = pd.DataFrame(columns=RESULT_COLUMNS)
    for fs in args.feature_sets:
        feats = cached_features(paths, fs, mfcc_params=mfcc_params, cache_dir=args.cache_dir,
                                corpus=args.corpus, workers=args.workers)
        data = manifest.merge(feats, on="path", how="inner", validate="1:1")
        cols = [c for c in feats.columns if c != "path"]
        groups = speaker_groups(data).to_numpy()
        y = data["emotion"].to_numpy()
        folds = folds_for(data, args.protocol, n_folds=args.n_folds, seed=args.seed,
                          test_size=args.test_size)
        for norm in norms:
            X = data[cols].to_numpy(dtype=np.float64)
            if norm == "speaker":
                X = normalize_by_speaker(X, groups)
            for model in args.models:
                t0 = time.perf_counter()
                pred, chosen = run_one(X, y, groups, folds, model=model,
                                       inner_folds=args.inner_folds, seed=args.seed,
                                       n_jobs=args.jobs)
                tested = folds != -1
                preds = data.loc[tested, ["path", "corpus", "speaker"]].assign(
                    fold=folds[tested], actual=y[tested], predicted=pred[tested])
                summary, per_speaker = speaker_cv_metrics(preds)
                seconds = round(time.perf_counter() - t0, 1)
                meta = normalization_metadata(norm)
                row = {"corpus": args.corpus, "protocol": args.protocol, "feature_set": fs,
                       "speaker_norm": norm, "transductive": meta["transductive"],
                       "model": model, **summary, "n_folds": int(len(set(folds) - {-1})),
                       "seconds": seconds, "date": dt.date.today().isoformat()}
                rows.append({k: row[k] for k in RESULT_COLUMNS})
                runs[f"{fs}/{norm}/{model}"] = {
                    **{k: row[k] for k in RESULT_COLUMNS}, **meta,
                    "n_features": len(cols), "grid": bench_grid(model),
                    "chosen": chosen, "per_speaker": per_speaker.to_dict(orient="records"),
                    "run": settings["run"]}
                print(f"{fs:14s} {norm:8s} {model:10s} pooled UAR {summary['pooled_uar']:.3f}"
                      f"  speakers {summary['mean_speaker_uar']:.3f} ± "
                      f"{summary['sd_speaker_uar']:.3f}  ({seconds:.0f} s)", flush=True)
                table = save_results(csv_path, json_path, rows, runs, settings)
    print_table(table)
    print(f"\n-> {csv_path} and {json_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
