"""The train stage: fit one model under one protocol and save it with its card."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import __version__
from ser.errors import SerError
from ser.labels import sort_labels
from ser.models import CLASSICAL_MODELS
from ser.splits import speaker_groups, validation_split
from ser.tables import load_features, read_table


@dataclass
class ProtocolData:
    """Clips of one protocol with their features, split into train and test."""

    table: pd.DataFrame          # split + summary features, one row per clip
    feature_params: dict[str, Any]
    features_dir: Path
    corpora: list[str]

    @property
    def train(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "train"].reset_index(drop=True)

    @property
    def test(self) -> pd.DataFrame:
        return self.table[self.table["split"] == "test"].reset_index(drop=True)


def load_protocol_data(params: dict, protocol: str, *, features_root: Path = Path("data/features"),
                       splits_dir: Path = Path("data/splits")) -> ProtocolData:
    """Join the protocol's split with the summary features of every enabled corpus.

    Clips whose audio could not be decoded (no feature row) are dropped, with
    a note; clips marked ``unused`` by the split are left out.
    """
    from ser.features import read_feature_params

    feature_set = params["train"]["feature_set"]
    corpora = list(params["corpora"])
    features_dir = Path(features_root) / feature_set
    split = read_table(Path(splits_dir) / f"{protocol}.parquet", what=f"{protocol} split",
                       hint="run the splits stage first (snakemake / dvc repro)")
    feats = load_features(features_dir, corpora)
    # Manifest columns live in the split already; keep only features from the other side.
    feats = feats.drop(columns=[c for c in split.columns if c != "path" and c in feats.columns])
    table = split[split["split"] != "unused"].merge(feats, on="path", how="inner",
                                                    validate="one_to_one")
    missing = (split["split"] != "unused").sum() - len(table)
    if missing:
        print(f"note: {missing} clip(s) of the split have no features (undecodable audio); "
              "left out")
    if table.empty or (table["split"] == "train").sum() == 0:
        raise SerError(f"{protocol}: no training clips with features; check the feature "
                       "stage output and the split")
    params_seen = {json.dumps(read_feature_params(features_dir / c / "summary.parquet"),
                              sort_keys=True) for c in corpora}
    if len(params_seen) != 1:
        raise SerError(f"{features_dir}: corpora were extracted with different feature "
                       "parameters; rerun the feature stage for all corpora")
    return ProtocolData(table, json.loads(params_seen.pop()), features_dir, corpora)


def base_card(params: dict, model: str, protocol: str, data: ProtocolData,
              labels: list[str], fmt: str) -> dict[str, Any]:
    """Facts every model card carries (labels and feature params travel with the model)."""
    train = data.train
    return {
        "model": model,
        "protocol": protocol,
        "format": fmt,
        "labels": labels,
        "feature_set": params["train"]["feature_set"],
        "feature_params": data.feature_params,
        "corpora": data.corpora,
        "n_train": int(len(train)),
        "train_speakers": sorted(speaker_groups(train).unique()),
        "seed": params["train"]["seed"],
        "ser_version": __version__,
    }


def train_classical(params: dict, model: str, protocol: str, data: ProtocolData,
                    out_dir: Path, *, n_jobs: int = 1) -> dict[str, Any]:
    """Grid-search a classical model on the training side; save it, its card, CV results."""
    from ser.features import feature_columns
    from ser.models.classical import cv_results_frame, tune, unprefix
    from ser.models.store import save_model

    cfg = params["train"]
    train = data.train
    columns = feature_columns(train)
    start = time.perf_counter()
    search = tune(model, train[columns].to_numpy(np.float64), train["emotion"].to_numpy(),
                  groups=speaker_groups(train).to_numpy(), protocol=protocol,
                  grid=params[model]["grid"], scoring=cfg["scoring"],
                  cv_folds=cfg["cv_folds"], seed=cfg["seed"], n_jobs=n_jobs)
    card = base_card(params, model, protocol, data,
                     [str(c) for c in search.best_estimator_.classes_], "skops")
    card.update({
        "feature_columns": columns,
        "best_params": {unprefix(model, k): v for k, v in search.best_params_.items()},
        "cv_best_score": float(search.best_score_),
        "scoring": cfg["scoring"],
        "cv": type(search.cv).__name__,
        "cv_folds": int(search.n_splits_),
        "fit_seconds": round(time.perf_counter() - start, 2),
    })
    results = cv_results_frame(model, search)
    save_model(out_dir, search.best_estimator_, card,
               {"cv_results.csv": lambda p: results.to_csv(p, index=False)})
    return card


def train_lstm(params: dict, protocol: str, data: ProtocolData, out_dir: Path,
               *, verbose: int = 2) -> dict[str, Any]:
    """Train the LSTM with speaker-aware early stopping; save it, its card and curves."""
    from ser.models.lstm import SequenceScaler, fit_lstm
    from ser.models.store import save_model

    cfg, seed = params["lstm"], params["train"]["seed"]
    train = data.train
    seqs = load_sequences_for(data, train["path"])
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
    card = base_card(params, "lstm", protocol, data, labels, "keras")
    card.update({
        "scaler": scaler.to_dict(),
        "best_params": {k: cfg[k] for k in sorted(cfg)},
        "epochs_run": int(len(hist)),
        "best_val_loss": float(hist["val_loss"].min()),
        "n_validation": int(len(val_idx)),
        "fit_seconds": round(time.perf_counter() - start, 2),
    })
    try:
        save_model(out_dir, model, card, {
            "history.csv": lambda p: hist.to_csv(p, index=False),
            "live": lambda p: shutil.copytree(live_dir, p),
        })
    finally:
        shutil.rmtree(live_dir, ignore_errors=True)
    return card


def load_sequences_for(data: ProtocolData, paths: pd.Series) -> list[np.ndarray]:
    """MFCC sequences of ``paths`` (in that order) from the per-corpus sequence files."""
    from ser.features import load_sequences

    by_path: dict[str, np.ndarray] = {}
    for corpus in data.corpora:
        seq_paths, seqs = load_sequences(data.features_dir / corpus / "sequences.parquet")
        by_path.update(zip(seq_paths, seqs, strict=True))
    try:
        return [by_path[p] for p in paths]
    except KeyError as exc:
        raise SerError(f"no MFCC sequence for {exc.args[0]}; rerun the feature stage") from None


def train(params: dict, model: str, protocol: str, *, out_dir: Path, n_jobs: int = 1,
          verbose: int = 2) -> dict[str, Any]:
    """Stage body: train ``model`` under ``protocol`` into ``out_dir``."""
    data = load_protocol_data(params, protocol)
    if model in CLASSICAL_MODELS:
        return train_classical(params, model, protocol, data, out_dir, n_jobs=n_jobs)
    if model == "lstm":
        return train_lstm(params, protocol, data, out_dir, verbose=verbose)
    raise SerError(f"unknown model {model!r}")
