"""The train stage: fit one model under one protocol and save it with its card."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import __version__
from ser.data import ProtocolData
from ser.io import sha256_file
from ser.labels import sort_labels
from ser.models import ModelSpec
from ser.settings import TrainSettings
from ser.splits import speaker_groups, validation_split


def base_card(model: str, protocol: str, data: ProtocolData, labels: list[str], fmt: str,
              *, seed: int) -> dict[str, Any]:
    """Facts every model card carries (labels and feature params travel with the model).

    Besides labels and features: the sample rate, each training corpus and
    whether it is the synthetic demo corpus (:func:`training_corpora`), data
    versions (:func:`data_versions`) and library versions
    (:func:`ser.models.store.library_versions`).
    """
    from ser.models.store import library_versions

    train = data.train
    return {
        "model": model,
        "protocol": protocol,
        "format": fmt,
        "labels": labels,
        "feature_set": data.feature_set,
        "feature_params": data.feature_params,
        "sample_rate": data.feature_params.get("sample_rate"),
        "corpora": data.corpora,
        "training_corpora": training_corpora(train),
        "n_train": int(len(train)),
        "train_speakers": sorted(speaker_groups(train).unique()),
        "seed": seed,
        "data_versions": data_versions(data),
        "library_versions": library_versions(),
        "ser_version": __version__,
    }


def training_corpora(train: pd.DataFrame) -> list[dict[str, Any]]:
    """Each corpus of the training rows: name, clip count, root, and whether it is synthetic.

    A corpus is synthetic when the demo generator's marker file
    (:data:`ser.corpora.demo.SYNTHETIC_MARKER`) sits in a folder above its
    clips; corpora generated before the marker existed are recognised by
    their place under a ``data/demo/`` folder.
    """
    from ser.corpora.demo import SYNTHETIC_MARKER

    out = []
    by_corpus = train.groupby("corpus", sort=True) if "corpus" in train else [("?", train)]
    for name, rows in by_corpus:
        root, synthetic = None, False
        for clip in rows["path"].head(3):  # a corpus has one root; a few clips suffice
            for folder in Path(clip).parents:
                if (folder / SYNTHETIC_MARKER).is_file():
                    root, synthetic = str(folder), True
                    break
            if not synthetic and "/data/demo/" in "/" + Path(clip).as_posix():
                synthetic = True
            if synthetic:
                break
        out.append({"name": str(name), "synthetic": synthetic, "n_train": int(len(rows)),
                    "root": root})
    return out


def data_versions(data: ProtocolData, *, lock: str | Path = "dvc.lock") -> dict[str, Any]:
    """Hashes that identify the training data.

    ``split_table``: sha256 of the clips with their split, emotion and
    speaker (what the split file and manifests decided); ``features``: sha256
    of each corpus' feature file; ``dvc_lock``: the hashes ``dvc.lock``
    recorded for those feature files, when a lock file is present.
    """
    import hashlib

    import yaml

    keep = [c for c in ("path", "corpus", "speaker", "emotion", "split") if c in data.table]
    table = data.table[keep].sort_values("path").to_csv(index=False)
    versions: dict[str, Any] = {"split_table": hashlib.sha256(table.encode()).hexdigest()}
    features = {}
    for corpus in data.corpora:
        path = data.features_dir / corpus / "summary.parquet"
        if path.is_file():
            features[path.as_posix()] = sha256_file(path)
    versions["features"] = features
    lock = Path(lock)
    if lock.is_file():
        try:
            stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        except yaml.YAMLError:
            stages = {}
        recorded = {o.get("path"): o.get("md5") for st in stages.values()
                    for o in (st.get("outs") or []) if isinstance(o, dict)}
        found = {p: recorded[p] for p in features if recorded.get(p)}
        found |= {p: recorded[p] for p in recorded
                  if p and any(f.startswith(p.rstrip("/") + "/") for f in features)}
        if found:
            versions["dvc_lock"] = found
    return versions




def run_facts(data: ProtocolData) -> dict[str, Any]:
    """What a card says about the run's data beyond the base card: speaker normalisation
    and whether it is transductive (test speakers' own unlabeled clips shaped their inputs)."""
    from ser.normalize import normalization_metadata

    return normalization_metadata("speaker" if data.speaker_norm else "none")


def train_classical(spec: ModelSpec, protocol: str, data: ProtocolData, out_dir: Path, *,
                    settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
                    verbose: int = 2, extra_files: dict[str, Any] | None = None,
                    ) -> dict[str, Any]:
    """Grid-search a classical model on the training side; save it, its card, CV results."""
    from ser.features import feature_columns
    from ser.models.classical import cv_results_frame, tune, unprefix
    from ser.models.store import save_model

    model, cfg = spec.name, settings
    train = data.train
    columns = feature_columns(train)
    start = time.perf_counter()
    search = tune(model, train[columns].to_numpy(np.float64), train["emotion"].to_numpy(),
                  groups=speaker_groups(train).to_numpy(), protocol=protocol,
                  grid=section["grid"], scoring=cfg.scoring,
                  cv_folds=cfg.cv_folds, seed=cfg.seed, n_jobs=n_jobs)
    card = base_card(model, protocol, data, [str(c) for c in search.best_estimator_.classes_],
                     "skops", seed=cfg.seed)
    card.update({
        "feature_columns": columns,
        "best_params": {unprefix(model, k): v for k, v in search.best_params_.items()},
        "cv_best_score": float(search.best_score_),
        "scoring": cfg.scoring,
        "cv": type(search.cv).__name__,
        "cv_folds": int(search.n_splits_),
        "fit_seconds": round(time.perf_counter() - start, 2),
    } | run_facts(data))
    results = cv_results_frame(model, search)
    save_model(out_dir, search.best_estimator_, card,
               {"cv_results.csv": lambda p: results.to_csv(p, index=False)} |
               (extra_files or {}))
    return card


def train_lstm(spec: ModelSpec, protocol: str, data: ProtocolData, out_dir: Path, *,
               settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
               verbose: int = 2, extra_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the LSTM with speaker-aware early stopping; save it, its card and curves."""
    from ser.models.lstm import SequenceScaler, fit_lstm
    from ser.models.store import save_model

    cfg, seed = section, settings.seed
    train = data.train
    seqs = data.sequences(train["path"])
    labels = sort_labels(train["emotion"].unique())
    y = train["emotion"].map({lab: i for i, lab in enumerate(labels)}).to_numpy(np.int32)
    train_idx, val_idx = validation_split(y, speaker_groups(train).to_numpy(), protocol,
                                          share=cfg["validation_share"], seed=seed)
    # Standardisation statistics come from the fitting part of the training side only.
    scaler = SequenceScaler.fit([seqs[i] for i in train_idx])
    X = scaler.transform(seqs)
    start = time.perf_counter()
    # dvclive logs beside the run, then moves into the model folder with it.
    live_dir = Path(tempfile.mkdtemp(prefix="ser-live-"))
    model, history = fit_lstm(X, y, n_classes=len(labels), train_idx=train_idx,
                              val_idx=val_idx, cfg=cfg, seed=seed, live_dir=live_dir,
                              verbose=verbose)
    hist = pd.DataFrame(history.history)
    hist.insert(0, "epoch", np.arange(1, len(hist) + 1))
    card = base_card(spec.name, protocol, data, labels, "keras", seed=seed)
    card.update({
        "scaler": scaler.to_dict(),
        "best_params": {k: cfg[k] for k in sorted(cfg)},
        "epochs_run": int(len(hist)),
        "best_val_loss": float(hist["val_loss"].min()),
        "n_validation": int(len(val_idx)),
        "fit_seconds": round(time.perf_counter() - start, 2),
    } | run_facts(data))
    try:
        save_model(out_dir, model, card, {
            "history.csv": lambda p: hist.to_csv(p, index=False),
            "live": lambda p: shutil.copytree(live_dir, p),
        } | (extra_files or {}))
    finally:
        shutil.rmtree(live_dir, ignore_errors=True)
    return card


def train_crnn(spec: ModelSpec, protocol: str, data: ProtocolData, out_dir: Path, *,
               settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
               verbose: int = 2, extra_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the CNN on fixed-length log-mel sequences (augmentation on the fitting clips
    only, early stopping on speakers it does not fit on); save it, its card and curves.

    The card stores ``n_mels``, ``deltas`` and ``n_frames``: prediction computes
    :func:`ser.features.logmel.logmel_from_file` and crops/pads with ``fix_length``.
    """
    import dataclasses

    from ser.features.logmel import fix_length
    from ser.models.crnn import CRNNConfig, fit_crnn
    from ser.models.store import save_model

    seed = settings.seed
    cfg = CRNNConfig.from_mapping(section)
    n_mels, deltas = int(data.feature_params["n_mels"]), int(data.feature_params["deltas"])
    if deltas and cfg.n_bands is None:  # masks cover a band in every delta block
        cfg = dataclasses.replace(cfg, n_bands=n_mels)
    train = data.train
    labels = sort_labels(train["emotion"].unique())
    y = train["emotion"].map({lab: i for i, lab in enumerate(labels)}).to_numpy(np.int32)
    train_idx, val_idx = validation_split(y, speaker_groups(train).to_numpy(), protocol,
                                          share=cfg.validation_share, seed=seed)
    X = fix_length(data.sequences(train["path"]), cfg.n_frames)
    start = time.perf_counter()
    model, history = fit_crnn(X, y, n_classes=len(labels), train_idx=train_idx,
                              val_idx=val_idx, cfg=cfg, seed=seed, verbose=verbose)
    hist = pd.DataFrame(history.history)
    hist.insert(0, "epoch", np.arange(1, len(hist) + 1))
    card = base_card(spec.name, protocol, data, labels, "keras", seed=seed)
    card.update({
        "n_mels": n_mels,
        "deltas": deltas,
        "n_frames": cfg.n_frames,
        "best_params": cfg.to_dict(),
        "epochs_run": int(len(hist)),
        "best_val_loss": float(hist["val_loss"].min()) if "val_loss" in hist else None,
        "n_validation": int(len(val_idx)),
        "fit_seconds": round(time.perf_counter() - start, 2),
    } | run_facts(data))
    save_model(out_dir, model, card, {"history.csv": lambda p: hist.to_csv(p, index=False)} |
               (extra_files or {}))
    return card


#: Out-of-fold predictions of a cross-validated protocol, in the model folder.
OOF_FILE = "oof_predictions.csv"


def train_speaker_cv(spec: ModelSpec, protocol: str, data: ProtocolData, *, out_dir: Path,
                     settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
                     verbose: int = 2) -> dict[str, Any]:
    """``speaker_cv``: one model per fold (tuned inside its training folds, grouped by
    speaker) predicts the clips of the speakers it never saw; then a final model is fitted
    on every clip (for prediction). The out-of-fold predictions go to :data:`OOF_FILE`."""
    import dataclasses

    from ser.evaluation import predict_rows, predictions_frame
    from ser.inference import Predictor

    trainer = spec.train_function()
    table = data.table
    folds = sorted(table["fold"].unique())
    parts = []
    with tempfile.TemporaryDirectory(prefix="ser-cv-") as tmp:
        for fold in folds:
            print(f"fold {fold + 1}/{len(folds)}: training without its "
                  f"{speaker_groups(table[table['fold'] == fold]).nunique()} speaker(s)")
            split = np.where(table["fold"] == fold, "test", "train")
            fold_data = dataclasses.replace(data, table=table.assign(split=split),
                                            _sequences=data._sequences)
            fold_dir = Path(tmp) / f"fold{fold}"
            trainer(spec, protocol, fold_data, fold_dir, settings=settings, section=section,
                    n_jobs=n_jobs, verbose=0 if verbose < 2 else verbose)
            predictor = Predictor.load(fold_dir)
            test = fold_data.test
            frame = predictions_frame(test, predict_rows(predictor, fold_data, test),
                                      predictor.labels)
            frame.insert(3, "fold", int(fold))
            parts.append(frame)
    oof = pd.concat(parts, ignore_index=True).fillna(0.0)
    labels = sort_labels(table["emotion"].unique())
    oof = oof[[c for c in oof.columns if not c.startswith("p_")] +
              [f"p_{lab}" for lab in labels if f"p_{lab}" in oof]]
    print(f"final model on all {len(table)} clips")
    return trainer(spec, protocol, data, out_dir, settings=settings, section=section,
                   n_jobs=n_jobs, verbose=verbose,
                   extra_files={OOF_FILE: lambda p: oof.to_csv(p, index=False,
                                                               float_format="%.5f")})


def train(spec: ModelSpec, protocol: str, data: ProtocolData, *, out_dir: Path,
          settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
          verbose: int = 2) -> dict[str, Any]:
    """Stage body: train the model of ``spec`` on ``data`` into ``out_dir`` with its trainer.

    ``section`` is the model's own ``params.yaml`` section (its grid or network settings).
    Cross-validated protocols (``speaker_cv``) go through :func:`train_speaker_cv`.
    """
    from ser.splits import CROSS_VALIDATED

    if protocol in CROSS_VALIDATED:
        return train_speaker_cv(spec, protocol, data, out_dir=out_dir, settings=settings,
                                section=section, n_jobs=n_jobs, verbose=verbose)
    return spec.train_function()(spec, protocol, data, out_dir, settings=settings,
                                 section=section, n_jobs=n_jobs, verbose=verbose)
