"""Leave-one-speaker-out benchmark of the sequence models on real RAVDESS recordings.

For every held-out actor (scikit-learn ``LeaveOneGroupOut``: a fold's test
speaker never appears in its training side) the models are trained on the
other actors, with early stopping on a speaker-disjoint validation split of
those (``ser.splits.protocols.validation_split``), and evaluated on the held-out actor:

- ``crnn``: :mod:`ser.models.crnn` on log-mel sequences
  (:mod:`ser.features.logmel`), SpecAugment + feature augmentation on the
  fitting clips only;
- ``lstm_seed``: the project's plain LSTM (:mod:`ser.models.lstm`, the
  ``lstm_seed:`` section of params.yaml) on the MFCC sequences of the ``mfcc:``
  section -- the named baseline.

``--speaker-norm`` adds (or selects) runs in which every speaker's sequences
are standardised with that speaker's own frame statistics
(:func:`ser.features.logmel.speaker_standardise`; no labels; transductive for
the test speaker, whose unlabeled clips give its statistics). They are
reported as separate rows (``speaker_norm = speaker``) beside the plain ones.

Sequences are extracted once with the ``mfcc:`` decoding of params.yaml and
cached in ``--cache`` (gitignored). Writes ``--out`` (CSV) and the same rows
as JSON beside it: one summary row per feature set x normalisation x model
(``speaker = ALL``: pooled UAR over all test clips, mean and sd of the
per-speaker UARs) followed by one row per held-out speaker. Prints the table.

    python benchmarks/sequence_real_bench.py                     # 12 folds, all runs
    python benchmarks/sequence_real_bench.py --folds 3 --epochs 15 --models crnn
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

os.environ.setdefault("KERAS_BACKEND", "jax")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("crnn", "lstm_seed")
NORMS = ("none", "speaker")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "real_ravdess_speaker_cv_sequence.csv"
COLUMNS = ["feature_set", "speaker_norm", "model", "speaker", "pooled_uar", "mean_speaker_uar",
           "sd_speaker_uar", "n_clips", "n_speakers", "epochs", "fit_seconds", "date"]


def clip_table(root: Path) -> pd.DataFrame:
    """``path, speaker, emotion`` of every RAVDESS speech clip under ``root``."""
    from ser.corpora import parse_corpus

    result = parse_corpus("ravdess", root)
    df = result.to_frame()[["path", "speaker", "emotion"]]
    return df.sort_values("path").reset_index(drop=True)


def _cache_key(kind: str, spec: dict, paths: list[str]) -> str:
    blob = json.dumps({"kind": kind, "spec": spec, "paths": paths}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_or_extract(kind: str, paths: list[str], *, mfcc_params: dict, cache: Path,
                    progress: bool = True) -> list[np.ndarray]:
    """Frame sequences of ``paths`` (``kind``: ``logmel``, ``logmel_d2``, ``mfcc``), cached.

    ``logmel``: 64 log-mel bands; ``logmel_d2``: + deltas and delta-deltas;
    ``mfcc``: :func:`ser.features.mfcc.mfcc_sequence` with the ``mfcc:`` section
    unchanged (what the pipeline's LSTM sees).
    """
    from tqdm import tqdm

    from ser.features.logmel import logmel_from_file
    from ser.features.mfcc import features_from_file

    spec = {**mfcc_params}
    spec.pop("workers", None)
    key = _cache_key(kind, spec, paths)
    file = cache / f"{kind}-{key}.npz"
    if file.exists():
        with np.load(file) as z:
            frames, lengths = z["frames"], z["lengths"]
        return np.split(frames, np.cumsum(lengths)[:-1])
    seqs = []
    for p in tqdm(paths, desc=f"extract {kind}", disable=not progress, mininterval=5):
        if kind == "mfcc":
            seqs.append(features_from_file(p, params=spec)[0])
        else:
            seqs.append(logmel_from_file(p, params=spec, n_mels=64,
                                         deltas=2 if kind == "logmel_d2" else 0))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, frames=np.concatenate(seqs), lengths=np.array([len(s) for s in seqs]))
    tmp.replace(file)
    return seqs


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y_true, y_pred))


def run_crnn(seqs, y, groups, train, test, *, n_classes, cfg, seed) -> np.ndarray:
    """Fit ``crnn`` on ``train`` (speaker-disjoint validation inside), predict ``test``."""
    from ser.features.logmel import fix_length
    from ser.models.crnn import fit_crnn, predict_proba
    from ser.splits.protocols import validation_split

    X = fix_length([seqs[i] for i in train], cfg.n_frames)
    fit_idx, val_idx = validation_split(y[train], groups[train], "speaker",
                                        share=cfg.validation_share, seed=seed)
    model, hist = fit_crnn(X, y[train], n_classes=n_classes, train_idx=fit_idx,
                           val_idx=val_idx, cfg=cfg, seed=seed)
    proba = predict_proba(model, fix_length([seqs[i] for i in test], cfg.n_frames))
    return proba.argmax(axis=1), len(hist.history["loss"])


def run_lstm_seed(seqs, y, groups, train, test, *, n_classes, cfg, seed) -> np.ndarray:
    """The seed's LSTM exactly as ``ser.models.training.train_lstm`` fits it, on one fold."""
    from ser.models.lstm import fit_lstm, training_inputs
    from ser.splits.protocols import validation_split

    fit_idx, val_idx = validation_split(y[train], groups[train], "speaker",
                                        share=cfg["validation_share"], seed=seed)
    scaler, X = training_inputs([seqs[i] for i in train], fit_idx,
                                bucket_frames=cfg.get("bucket_frames"))
    model, hist = fit_lstm(X, y[train], n_classes=n_classes,
                           train_idx=fit_idx, val_idx=val_idx, cfg=cfg, seed=seed, verbose=0)
    proba = np.asarray(model.predict(scaler.transform([seqs[i] for i in test]), verbose=0))
    return proba.argmax(axis=1), len(hist.history["loss"])


def parse_overrides(items: list[str]) -> dict:
    """``key=value`` strings (values parsed as YAML) into a dict."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"error: --crnn expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def summarise(pred: pd.DataFrame) -> tuple[dict, list[dict]]:
    per = [{"speaker": s, "uar": uar(g["y"].to_numpy(), g["pred"].to_numpy()), "n": len(g)}
           for s, g in pred.groupby("speaker", sort=True)]
    scores = np.array([p["uar"] for p in per])
    summary = {"pooled_uar": uar(pred["y"].to_numpy(), pred["pred"].to_numpy()),
               "mean_speaker_uar": float(scores.mean()),
               "sd_speaker_uar": float(scores.std(ddof=1)) if len(scores) > 1 else float("nan"),
               "n_clips": int(len(pred)), "n_speakers": len(per)}
    return summary, per


def enable_compilation_cache(folder: Path) -> None:
    """Let JAX reuse compiled programs across folds (same model shapes every fold)."""
    import jax

    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def write_results(rows: list[dict], out: Path, *, merge: bool, meta: dict) -> pd.DataFrame:
    """Write the rows so far to ``out`` (CSV) and its JSON twin; return the table."""
    table = pd.DataFrame(rows, columns=COLUMNS)
    if merge and out.exists():
        old = pd.read_csv(out, dtype={"speaker": str})
        key = ["feature_set", "speaker_norm", "model"]
        done = set(map(tuple, table[key].drop_duplicates().to_numpy()))
        old = old[[tuple(r) not in done for r in old[key].to_numpy()]]
        table = pd.concat([old, table], ignore_index=True)[COLUMNS]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    table.to_csv(tmp, index=False, float_format="%.4f")
    tmp.replace(out)
    doc = {**meta, "rows": json.loads(table.to_json(orient="records"))}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess",
                        help="RAVDESS folder (default: ../shared/data/ravdess)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--speaker-norm", choices=["none", "speaker", "both"], default="both",
                        help="plain runs, speaker-standardised runs, or both (default)")
    parser.add_argument("--features", default="logmel",
                        choices=["logmel", "logmel_d2", "mfcc"],
                        help="crnn input sequences (lstm_seed always uses mfcc)")
    parser.add_argument("--folds", type=int, default=0,
                        help="run only the first N leave-one-speaker-out folds (0: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the epochs of both models (quick runs)")
    parser.add_argument("--crnn", nargs="*", default=[], metavar="KEY=VALUE",
                        help="crnn settings (see ser.models.crnn.CRNNConfig)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "sequence_bench",
                        help="where extracted sequences are cached")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results CSV (+ .json)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of --out for runs (feature set x norm x model) "
                             "not repeated now, e.g. to rerun one model")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    from sklearn.model_selection import LeaveOneGroupOut

    enable_compilation_cache(args.cache / "jax")

    from ser.labels import sort_labels
    from ser.models.crnn import CRNNConfig

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = sorted(set(models) - set(MODELS))
    if bad:
        sys.exit(f"error: unknown model(s) {', '.join(bad)}; choose from {', '.join(MODELS)}")
    if not args.root.is_dir():
        sys.exit(f"error: {args.root} is not a folder; pass --root <RAVDESS folder>")
    norms = list(NORMS) if args.speaker_norm == "both" else [args.speaker_norm]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    lstm_cfg = dict(params["lstm_seed"])
    crnn_over = parse_overrides(args.crnn)
    if args.epochs:
        lstm_cfg["epochs"] = args.epochs
        crnn_over["epochs"] = args.epochs
    if args.features == "logmel_d2":
        crnn_over.setdefault("n_bands", 64)
    crnn_cfg = CRNNConfig.from_mapping(crnn_over)

    clips = clip_table(args.root)
    labels = sort_labels(clips["emotion"].unique())
    y = clips["emotion"].map({lab: i for i, lab in enumerate(labels)}).to_numpy(np.int32)
    groups = clips["speaker"].astype(str).to_numpy()
    paths = clips["path"].astype(str).tolist()
    folds = list(LeaveOneGroupOut().split(paths, y, groups))
    if args.folds:
        folds = folds[: args.folds]
    print(f"{len(clips)} clips, {len(set(groups))} speakers, {len(labels)} classes; "
          f"{len(folds)} leave-one-speaker-out folds", flush=True)

    kinds = {"crnn": args.features, "lstm_seed": "mfcc"}
    feature_names = {"logmel": "logmel64_seq", "logmel_d2": "logmel64_d2_seq",
                     "mfcc": "mfcc_seq"}
    seq_cache = {k: load_or_extract(k, paths, mfcc_params=params["mfcc"], cache=args.cache,
                                    progress=not args.no_progress)
                 for k in {kinds[m] for m in models}}

    date = dt.date.today().isoformat()
    meta = {"protocol": "leave-one-speaker-out (sklearn LeaveOneGroupOut)",
            "root": str(args.root), "n_folds": len(folds), "seed": args.seed,
            "crnn": {**crnn_cfg.to_dict(), "features": args.features},
            "lstm_seed": lstm_cfg, "decoding": params["mfcc"],
            "transductive_note": "speaker_norm=speaker: each speaker (test speakers too) is "
                                 "standardised with statistics of its own unlabeled clips"}
    rows: list[dict] = []
    for norm in norms:
        for model in models:
            seqs = seq_cache[kinds[model]]
            if norm == "speaker":
                from ser.features.logmel import speaker_standardise

                seqs = speaker_standardise(seqs, groups)
            preds, epochs_run, start = [], [], time.perf_counter()
            for k, (train, test) in enumerate(folds):
                t0 = time.perf_counter()
                if model == "crnn":
                    pred, ep = run_crnn(seqs, y, groups, train, test, n_classes=len(labels),
                                        cfg=crnn_cfg, seed=args.seed)
                else:
                    pred, ep = run_lstm_seed(seqs, y, groups, train, test,
                                             n_classes=len(labels), cfg=lstm_cfg,
                                             seed=args.seed)
                assert not set(groups[train]) & set(groups[test])
                epochs_run.append(ep)
                preds.append(pd.DataFrame({"speaker": groups[test], "y": y[test],
                                           "pred": pred}))
                print(f"  {model:9s} norm={norm:7s} fold {k + 1}/{len(folds)} "
                      f"speaker {groups[test][0]}: UAR {uar(y[test], pred):.3f} "
                      f"({ep} epochs, {time.perf_counter() - t0:.0f} s)", flush=True)
            summary, per = summarise(pd.concat(preds, ignore_index=True))
            base = {"feature_set": feature_names[kinds[model]], "speaker_norm": norm,
                    "model": model, "date": date}
            rows.append({**base, "speaker": "ALL", **summary,
                         "epochs": float(np.mean(epochs_run)),
                         "fit_seconds": round(time.perf_counter() - start, 1)})
            rows.extend({**base, "speaker": p["speaker"], "pooled_uar": p["uar"],
                         "mean_speaker_uar": p["uar"], "sd_speaker_uar": float("nan"),
                         "n_clips": p["n"], "n_speakers": 1, "epochs": float("nan"),
                         "fit_seconds": float("nan")} for p in per)
            print(f"{model} norm={norm}: pooled UAR {summary['pooled_uar']:.3f}, per-speaker "
                  f"{summary['mean_speaker_uar']:.3f} +- {summary['sd_speaker_uar']:.3f}",
                  flush=True)
            # Written after every run, so an interrupted benchmark keeps what it measured.
            write_results(rows, args.out, merge=args.merge, meta=meta)

    table = write_results(rows, args.out, merge=args.merge, meta=meta)
    summary = table[table["speaker"] == "ALL"]
    print()
    print(summary[["feature_set", "speaker_norm", "model", "pooled_uar", "mean_speaker_uar",
                   "sd_speaker_uar", "n_clips", "n_speakers", "fit_seconds"]]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
