"""Speaker-independent benchmark on a real corpus: every feature set x model, plain and
speaker-normalised, classical and sequence models, in one results table.

    python benchmarks/real_data_bench.py --corpus ravdess --root ../shared/data/ravdess \\
        --protocol speaker_cv [--feature-sets ...] [--models ...] [--speaker-norm both]

Protocol ``speaker_cv`` (default): k folds grouped by speaker
(:func:`ser.splits.protocols.speaker_folds`; ``--n-folds`` defaults to the number of
speakers, i.e. leave-one-speaker-out). Protocol ``speaker``: one split from
:func:`ser.splits.protocols.make_split` (``--test-size``). Any corpus the project parses
(``--corpus``, ``--root``) works for the classical models. In every training
fold each classical model is tuned by GridSearchCV with speaker-grouped inner
folds (StratifiedGroupKFold, ``--inner-folds``) over the model's grid in the
``--params`` file (default: the shipped ``params.yaml``, the grids a user's pipeline
runs), scored by UAR (balanced accuracy), refit and applied to the held-out speakers.

The sequence models (``crnn``, ``lstm_seed``) are benchmarked by
``benchmarks/sequence_real_bench.py`` (RAVDESS, leave-one-speaker-out, hours
on 2 cores). By default (``--sequence merge``) their committed results file is
merged into this table, each merged row saying so; ``--sequence run`` runs
them first; ``--sequence skip`` leaves them out.

``--speaker-norm speaker`` z-scores every speaker's features with that
speaker's own statistics (:mod:`ser.features.speaker_norm`); for the held-out speakers
this uses their unlabeled test clips, so those rows are marked
``transductive``. ``both`` (default) runs plain and normalised side by side.

``byols`` (BYOL-S embeddings, :mod:`ser.features.byols`) and ``byols_egemaps`` (those
embeddings followed by the 88 eGeMAPS functionals) standardise the encoder's log-mel
input with the mean and std of each training fold's clips only (the test speakers never
enter them), so their embeddings are computed once per fold (log-mels once per clip);
the statistics of every fold are saved with the run.

The ``seed`` feature set with the ``svm`` model is the seed recipe (40 MFCC
means of ``librosa.load`` at 22,050 Hz, StandardScaler + SVC), measured by
the same command as a reference.

Features are extracted once (process pool, progress bar) and cached under
``--cache-dir`` (default ``benchmarks/.cache``), keyed by the file list
(paths, sizes, mtimes) and the feature definition. Results are merged into
``--out-dir``/real_<corpus>_<protocol>.json (every run with its per-speaker
table, chosen parameters and settings; rerunning a subset replaces those runs
and keeps the others) and the .csv beside it is rewritten from it: per
feature_set x speaker_norm x model one summary row (``speaker`` = ``ALL``:
pooled UAR, mean and sd of the per-speaker UARs, clips, date) followed by
one row per held-out speaker. The table is printed as Markdown at the end
(``--table-only`` prints it without running anything).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ser.corpora import parse_corpus  # noqa: E402
from ser.errors import SerError  # noqa: E402
from ser.evaluation.metrics import speaker_cv_metrics  # noqa: E402
from ser.features.speaker_norm import normalization_metadata, normalize_by_speaker  # noqa: E402
from ser.features.summaries import (  # noqa: E402
    SUMMARY_VECTORS,
    extract_feature_set,
    feature_set_fingerprint,
)
from ser.models import CLASSICAL_MODELS, model_spec  # noqa: E402
from ser.models.classical import tune, unprefix  # noqa: E402
from ser.outputs import atomic_path, text_starts_with  # noqa: E402
from ser.params.load import load_params  # noqa: E402
from ser.splits.protocols import make_split, speaker_folds, speaker_groups  # noqa: E402

#: Columns of the results CSV (other benchmarks append rows with these).
RESULT_COLUMNS = ["corpus", "protocol", "feature_set", "speaker_norm", "transductive", "model",
                  "pooled_uar", "mean_speaker_uar", "sd_speaker_uar", "min_speaker_uar",
                  "max_speaker_uar", "pooled_accuracy", "n_clips", "n_speakers", "n_folds",
                  "seconds", "date"]
CSV_COLUMNS = [*RESULT_COLUMNS[:6], "speaker", *RESULT_COLUMNS[6:]]
PROTOCOLS = ("speaker_cv", "speaker")
#: Sequence models (run by benchmarks/sequence_real_bench.py, whose rows are merged here).
SEQUENCE_MODELS: tuple[str, ...] = ("crnn", "lstm_seed")
#: Classical models run by default (knn, trees: one --models away).
DEFAULT_CLASSICAL: tuple[str, ...] = ("svm", "logreg", "hist_gb", "ensemble")
SEQUENCE_RESULTS = ROOT / "benchmarks" / "results" / "real_ravdess_speaker_cv_sequence.json"
#: Feature sets on the BYOL-S encoder (input statistics fitted per training fold).
BYOLS_SETS: tuple[str, ...] = ("byols", "byols_egemaps")


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


def byols_inputs(name: str, manifest: pd.DataFrame, paths: list[str], *,
                 args: argparse.Namespace, mfcc_params: dict[str, Any],
                 byols_params: dict[str, Any], memo: dict[Any, Any],
                 ) -> tuple[pd.DataFrame, list[str], dict[int, np.ndarray], np.ndarray,
                            list[dict[str, Any]]]:
    """``(data, columns, X per test fold, folds, statistics per fold)`` of a BYOL-S set.

    The encoder's input is standardised with the log-mel mean and std of the fold's
    training clips only; ``byols_egemaps`` appends the cached eGeMAPS functionals.
    ``memo`` keeps log-mels and embeddings between the sets of one run.
    """
    from ser.features import byols as B

    if "mels" not in memo:
        if "byols_egemaps" in args.feature_sets:  # its process pool forks before JAX loads
            cached_features(paths, "egemaps", mfcc_params=mfcc_params, cache_dir=args.cache_dir,
                            corpus=args.corpus, workers=args.workers)
        opts = B.byols_options({"options": byols_params})
        pool = B._logmel_pool(args.workers)
        items = list(enumerate(paths))
        with contextlib.ExitStack() as stack:
            if pool is not None:
                stack.enter_context(pool)
            results = list(B._iter_logmels(items, mfcc_params, pool))
        for i, mel, reason in results:
            if mel is None:
                print(f"warning: skipped {paths[i]}: {reason}", file=sys.stderr)
        memo["mels"] = {paths[i]: mel for i, mel, _ in results if mel is not None}
        memo["encoder"] = B.get_encoder(opts["weights"])
        memo["fingerprint"] = B.byols_fingerprint({**mfcc_params, "options": byols_params})
    mels = memo["mels"]
    data = manifest[manifest["path"].isin(list(mels))].reset_index(drop=True)
    extra: list[str] = []
    if name == "byols_egemaps":
        eg = cached_features(paths, "egemaps", mfcc_params=mfcc_params,
                             cache_dir=args.cache_dir, corpus=args.corpus, workers=args.workers)
        data = data.merge(eg, on="path", how="inner", validate="1:1")
        extra = [c for c in eg.columns if c != "path"]
    folds = folds_for(data, args.protocol, n_folds=args.n_folds, seed=args.seed,
                      test_size=args.test_size)
    clips = [mels[p] for p in data["path"]]
    X: dict[int, np.ndarray] = {}
    stats = []
    for fold in sorted(set(folds) - {-1}):
        train = np.flatnonzero(folds != fold)
        mean, std = B.norm_stats([clips[i] for i in train])
        key = (tuple(data["path"]), round(mean, 9), round(std, 9))
        if key not in memo:
            memo[key] = memo["encoder"].embed(clips, norm_mean=mean, norm_std=std)
        emb = memo[key]
        X[int(fold)] = (np.hstack([emb, data[extra].to_numpy(np.float32)]) if extra
                        else emb).astype(np.float64)
        stats.append({"fold": int(fold), "norm_mean": round(mean, 6), "norm_std": round(std, 6)})
    return data, B.FEATURE_NAMES + extra, X, folds, stats


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


def bench_grid(model: str, params: dict[str, Any]) -> dict[str, list[Any]]:
    """The model's grid in ``params`` (its section's ``grid``); SVMs without Platt
    probabilities.

    ``SVC.predict`` never uses the Platt probabilities, so fitting without
    them gives the same predictions about five times faster (the internal
    5-fold calibration is skipped). The ensemble keeps them (soft voting).
    """
    grid = {k: list(v) for k, v in params[model_spec(model).section]["grid"].items()}
    if model == "svm":
        grid["probability"] = [False]
    return grid


def run_one(X: np.ndarray | dict[int, np.ndarray], y: np.ndarray, groups: np.ndarray,
            folds: np.ndarray, *,
            model: str, grid: dict[str, list[Any]], inner_folds: int, seed: int, n_jobs: int,
            ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Predictions for every clip of a test fold, tuning inside each training fold
    (``X``: one matrix, or one per test fold when the features depend on the fold)."""
    pred = np.empty(len(y), dtype=object)
    chosen = []
    for fold in sorted(set(folds) - {-1}):
        test = folds == fold
        train = ~test
        X_fold = X[int(fold)] if isinstance(X, dict) else X
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=UserWarning)
            search = tune(model, X_fold[train], y[train], groups=groups[train],
                          protocol="speaker",
                          grid=grid, scoring="balanced_accuracy",
                          cv_folds=inner_folds, seed=seed, n_jobs=n_jobs)
        pred[test] = search.predict(X_fold[test])
        chosen.append({"fold": int(fold), "inner_uar": round(float(search.best_score_), 4)}
                      | {unprefix(model, k): v for k, v in search.best_params_.items()})
    return pred, chosen


def table_rows(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The results table of ``runs``: one summary row per feature_set x speaker_norm x model
    (``speaker`` = ``ALL``) followed by its per-speaker rows, best speaker mean first."""
    summary = pd.DataFrame([{k: r.get(k) for k in RESULT_COLUMNS} | {"speaker": "ALL"}
                            for r in runs.values()], columns=CSV_COLUMNS)
    if summary.empty:
        return summary
    summary = summary.sort_values(["speaker_norm", "mean_speaker_uar"], ascending=[True, False],
                                  kind="stable")
    out = []
    for _, row in summary.iterrows():
        out.append(row.to_dict())
        run = runs[f"{row.feature_set}/{row.speaker_norm}/{row.model}"]
        for sp in run.get("per_speaker", []):
            out.append({**row.to_dict(), "speaker": str(sp["speaker"]),
                        "pooled_uar": sp["uar"], "mean_speaker_uar": sp["uar"],
                        "sd_speaker_uar": np.nan, "min_speaker_uar": np.nan,
                        "max_speaker_uar": np.nan, "pooled_accuracy": sp.get("accuracy", np.nan),
                        "n_clips": sp["n_clips"], "n_speakers": 1, "seconds": np.nan})
    return pd.DataFrame(out, columns=CSV_COLUMNS)


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


def save_results(csv_path: Path, json_path: Path, runs: dict[str, Any],
                 settings: dict[str, Any] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Merge ``runs`` into the results JSON and rewrite the CSV from it (locked, atomic).

    Runs with the same feature_set/speaker_norm/model key are replaced, the
    others kept, so a rerun of a subset updates only its rows.
    """
    with locked(csv_path):
        details = (json.loads(json_path.read_text()) if json_path.exists()
                   else {"runs": {}, "settings": {}})
        details["runs"].update(runs)
        if settings is not None:
            details.setdefault("settings", {})[settings["run"]] = settings
        table = table_rows(details["runs"])
        # Both files are this benchmark's own (recognised by their first bytes): a rerun
        # rewrites them; any other file of those names is refused (ser.outputs).
        with atomic_path(csv_path, owned=text_starts_with("corpus,protocol,feature_set,")) as tmp:
            table.to_csv(tmp, index=False, float_format="%.4f")
        with atomic_path(json_path, owned=text_starts_with('{\n "runs": {')) as tmp:
            tmp.write_text(json.dumps(details, indent=1, default=str) + "\n")
    return table, details


def sequence_runs(path: Path, *, corpus: str, protocol: str) -> dict[str, dict[str, Any]]:
    """The rows of a ``sequence_real_bench.py`` results file as runs of this benchmark.

    Each run keeps ``source`` (the file it came from) so the table says which
    rows were merged rather than measured by this invocation.
    """
    doc = json.loads(path.read_text())
    rows = pd.DataFrame(doc["rows"])
    runs: dict[str, dict[str, Any]] = {}
    for (fs, norm, model), group in rows.groupby(["feature_set", "speaker_norm", "model"],
                                                 sort=False):
        top = group[group["speaker"] == "ALL"].iloc[0]
        per = group[group["speaker"] != "ALL"]
        scores = per["pooled_uar"].to_numpy(dtype=float)
        row = {"corpus": corpus, "protocol": protocol, "feature_set": fs,
               "speaker_norm": norm, "transductive": norm == "speaker", "model": model,
               "pooled_uar": float(top["pooled_uar"]),
               "mean_speaker_uar": float(top["mean_speaker_uar"]),
               "sd_speaker_uar": float(top["sd_speaker_uar"]),
               "min_speaker_uar": float(scores.min()) if len(scores) else np.nan,
               "max_speaker_uar": float(scores.max()) if len(scores) else np.nan,
               "pooled_accuracy": np.nan, "n_clips": int(top["n_clips"]),
               "n_speakers": int(top["n_speakers"]), "n_folds": int(doc.get("n_folds", 0)),
               "seconds": float(top.get("fit_seconds", np.nan)), "date": str(top["date"])}
        runs[f"{fs}/{norm}/{model}"] = {
            **row, "source": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
            "settings": {k: doc.get(k) for k in ("protocol", "seed", model)},
            "per_speaker": [{"speaker": str(r.speaker), "uar": float(r.pooled_uar),
                             "n_clips": int(r.n_clips)} for r in per.itertuples()]}
    return runs


def markdown_table(table: pd.DataFrame, runs: dict[str, dict[str, Any]]) -> str:
    """The summary rows as a Markdown table (what the README shows)."""
    lines = ["| features | speaker norm. | model | pooled UAR | per-speaker UAR (mean ± sd) "
             "| clips | date | source |", "|---|---|---|---|---|---|---|---|"]
    for r in table[table["speaker"] == "ALL"].itertuples():
        run = runs[f"{r.feature_set}/{r.speaker_norm}/{r.model}"]
        norm = "per speaker (transductive)" if r.speaker_norm == "speaker" else "none"
        source = (f"merged from `{Path(run['source']).name}`" if run.get("source")
                  else "measured here")
        lines.append(f"| {r.feature_set} | {norm} | {r.model} | {r.pooled_uar:.3f} | "
                     f"{r.mean_speaker_uar:.3f} ± {r.sd_speaker_uar:.3f} | {int(r.n_clips)} | "
                     f"{r.date} | {source} |")
    return "\n".join(lines)


def run_classical(args: argparse.Namespace, models: list[str], mfcc_params: dict[str, Any],
                  settings: dict[str, Any], csv_path: Path, json_path: Path, *,
                  byols_params: dict[str, Any] | None = None,
                  grids: dict[str, dict[str, list[Any]]]) -> None:
    """Every feature set x normalisation x classical model (``grids``: each model's grid,
    from the params file); results saved after each run."""
    manifest = parse_corpus(args.corpus, args.root).to_frame()
    manifest = manifest.sort_values(["corpus", "path"]).reset_index(drop=True)
    paths = manifest["path"].astype(str).tolist()
    norms = ["none", "speaker"] if args.speaker_norm == "both" else [args.speaker_norm]
    memo: dict[Any, Any] = {}
    for fs in args.feature_sets:
        byols_stats: list[dict[str, Any]] = []
        if fs in BYOLS_SETS:
            data, cols, per_fold, folds, byols_stats = byols_inputs(
                fs, manifest, paths, args=args, mfcc_params=mfcc_params,
                byols_params=byols_params, memo=memo)
        else:
            feats = cached_features(paths, fs, mfcc_params=mfcc_params,
                                    cache_dir=args.cache_dir, corpus=args.corpus,
                                    workers=args.workers)
            data = manifest.merge(feats, on="path", how="inner", validate="1:1")
            cols = [c for c in feats.columns if c != "path"]
            folds = folds_for(data, args.protocol, n_folds=args.n_folds, seed=args.seed,
                              test_size=args.test_size)
        groups = speaker_groups(data).to_numpy()
        y = data["emotion"].to_numpy()
        for norm in norms:
            if fs in BYOLS_SETS:
                X: Any = {f: (normalize_by_speaker(m, groups) if norm == "speaker" else m)
                          for f, m in per_fold.items()}
            else:
                X = data[cols].to_numpy(dtype=np.float64)
                if norm == "speaker":
                    X = normalize_by_speaker(X, groups)
            for model in models:
                t0 = time.perf_counter()
                pred, chosen = run_one(X, y, groups, folds, model=model, grid=grids[model],
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
                run = {**{k: row[k] for k in RESULT_COLUMNS}, **meta,
                       "n_features": len(cols), "grid": grids[model],
                       "chosen": chosen, "per_speaker": per_speaker.to_dict(orient="records"),
                       "run": settings["run"]}
                if byols_stats:
                    run["byols_input_stats"] = byols_stats
                    run["byols_fingerprint"] = {k: v for k, v in memo["fingerprint"].items()
                                                if k not in ("norm_mean", "norm_std")}
                print(f"{fs:14s} {norm:8s} {model:10s} pooled UAR {summary['pooled_uar']:.3f}"
                      f"  speakers {summary['mean_speaker_uar']:.3f} ± "
                      f"{summary['sd_speaker_uar']:.3f}  ({seconds:.0f} s)", flush=True)
                save_results(csv_path, json_path, {f"{fs}/{norm}/{model}": run}, settings)


def sequence_step(args: argparse.Namespace, models: list[str]) -> dict[str, dict[str, Any]]:
    """Run (``--sequence run``) or read (``merge``) the sequence models' results."""
    if args.sequence == "skip" or not models:
        return {}
    if args.corpus != "ravdess" or args.protocol != "speaker_cv" or args.n_folds:
        raise SerError("the sequence models are benchmarked on RAVDESS leave-one-speaker-out "
                       "only (benchmarks/sequence_real_bench.py); pass --sequence skip or "
                       "--models with classical models only")
    if args.sequence == "run":
        import sequence_real_bench

        sequence_real_bench.main(["--root", str(args.root), "--models", ",".join(models),
                                  "--speaker-norm", args.speaker_norm,
                                  "--out", str(args.sequence_results), "--merge"])
    if not args.sequence_results.is_file():
        raise SerError(f"{args.sequence_results}: no sequence results; run with --sequence run "
                       "(hours on 2 cores) or --sequence skip")
    runs = sequence_runs(args.sequence_results, corpus=args.corpus, protocol=args.protocol)
    norms = {"none", "speaker"} if args.speaker_norm == "both" else {args.speaker_norm}
    return {k: r for k, r in runs.items() if r["model"] in models and r["speaker_norm"] in norms}


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
    parser.add_argument("--feature-sets", nargs="+", choices=[*SUMMARY_VECTORS, *BYOLS_SETS],
                        default=[*SUMMARY_VECTORS, *BYOLS_SETS],
                        help="feature sets of the classical models (default: all)")
    parser.add_argument("--models", nargs="+", choices=[*CLASSICAL_MODELS, *SEQUENCE_MODELS],
                        default=[*DEFAULT_CLASSICAL, *SEQUENCE_MODELS],
                        help="classical and sequence models (default: %(default)s)")
    parser.add_argument("--sequence", choices=["merge", "run", "skip"], default="merge",
                        help="sequence models: merge their rows from --sequence-results "
                             "(default), run benchmarks/sequence_real_bench.py first (hours), "
                             "or leave them out")
    parser.add_argument("--sequence-results", type=Path, default=SEQUENCE_RESULTS,
                        help="results file of benchmarks/sequence_real_bench.py")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: merge the sequence rows, rewrite and print the table")
    parser.add_argument("--speaker-norm", choices=["none", "speaker", "both"], default="both")
    parser.add_argument("--inner-folds", type=int, default=3,
                        help="speaker-grouped GridSearchCV folds inside each training fold")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workers", type=int, default=2, help="feature extraction processes")
    parser.add_argument("--jobs", type=int, default=1, help="GridSearchCV processes")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / ".cache")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml",
                        help="project parameters: its mfcc: section defines decoding, each "
                             "model's section its grid (default: the shipped params.yaml)")
    args = parser.parse_args(argv)

    classical = [m for m in args.models if m not in SEQUENCE_MODELS]
    sequence = [m for m in args.models if m in SEQUENCE_MODELS]
    csv_path = args.out_dir / f"real_{args.corpus}_{args.protocol}.csv"
    json_path = csv_path.with_suffix(".json")
    settings = {
        "run": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "corpus": args.corpus, "root": str(args.root),
        "protocol": args.protocol, "n_folds": args.n_folds, "test_size": args.test_size,
        "inner_folds": args.inner_folds, "seed": args.seed,
        "scoring": "balanced_accuracy (UAR)",
        "tuning": "GridSearchCV over the --params file's grids (its <model>.grid sections), "
                  "StratifiedGroupKFold by speaker, inside each training fold"}
    try:
        all_params = load_params(args.params)
        mfcc_params = all_params["mfcc"]
        settings["mfcc_params"] = mfcc_params
        settings["params"] = str(args.params)
        grids = {m: bench_grid(m, all_params) for m in classical}
        if classical and not args.table_only:
            run_classical(args, classical, mfcc_params, settings, csv_path, json_path,
                          byols_params=all_params.get("byols") or {}, grids=grids)
        merged = ({} if args.table_only and args.sequence == "run"
                  else sequence_step(args, sequence))
    except (SerError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table, details = save_results(csv_path, json_path, merged,
                                  None if args.table_only else settings)
    print()
    print(markdown_table(table, details["runs"]))
    if merged:
        print(f"\nSequence rows ({', '.join(sorted({r['model'] for r in merged.values()}))}) "
              f"merged from {args.sequence_results.name}, measured by "
              "benchmarks/sequence_real_bench.py (leave-one-speaker-out, same 12 actors); "
              "--sequence run measures them again.")
    print("Speaker normalisation 'per speaker' is transductive: each held-out speaker is "
          "standardised with statistics of its own unlabeled test clips.")
    print(f"\n-> {csv_path} and {json_path.name} (per-speaker rows: speaker != ALL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
