"""The train stage: fit one model under one protocol and save it with its card."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import __version__
from ser.errors import SerError
from ser.labels import sort_labels
from ser.layout import DEMO_ROOT, SUMMARY_FILE
from ser.models import ModelSpec
from ser.outputs import sha256_file
from ser.params.settings import TrainSettings
from ser.splits.protocol_data import ProtocolData
from ser.splits.protocols import speaker_groups, validation_split


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
            if not synthetic and f"/{DEMO_ROOT}/" in "/" + Path(clip).as_posix():
                synthetic = True
            if synthetic:
                break
        out.append({"name": str(name), "synthetic": synthetic, "n_train": int(len(rows)),
                    "root": root})
    return out


def data_versions(data: ProtocolData) -> dict[str, Any]:
    """Hashes that identify the training data.

    ``split_table``: sha256 of the clips with their split, emotion and
    speaker (what the split file and manifests decided); ``features``: sha256
    of each corpus' feature file, hashed here. (``dvc.lock`` is not read: no rule
    declares it, and what it holds during a build is the previous build's record.)
    """
    import hashlib

    keep = [c for c in ("path", "corpus", "speaker", "emotion", "split") if c in data.table]
    table = data.table[keep].sort_values("path").to_csv(index=False)
    versions: dict[str, Any] = {"split_table": hashlib.sha256(table.encode()).hexdigest()}
    features = {}
    for corpus in data.corpora:
        path = data.features_dir / corpus / SUMMARY_FILE
        if path.is_file():
            features[path.as_posix()] = sha256_file(path)
    versions["features"] = features
    return versions




def run_facts(data: ProtocolData) -> dict[str, Any]:
    """What a card says about the run's data beyond the base card: speaker normalisation
    and whether it is transductive (test speakers' own unlabeled clips shaped their inputs)."""
    from ser.features.speaker_norm import normalization_metadata

    facts = normalization_metadata("speaker" if data.speaker_norm else "none")
    if data.speaker_prior is not None:
        # A new speaker's few enrolment clips are shrunk toward these (ser.predict.speaker_profile).
        facts["speaker_prior"] = data.speaker_prior
    return facts


def fit_arrays(train: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Feature columns, features, labels and speaker groups of a training side (what a
    classical model is tuned and fitted on)."""
    from ser.features import feature_columns

    columns = feature_columns(train)
    return (columns, train[columns].to_numpy(np.float64), train["emotion"].to_numpy(),
            speaker_groups(train).to_numpy())


def train_classical(spec: ModelSpec, protocol: str, data: ProtocolData, out_dir: Path, *,
                    settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
                    verbose: int = 2, extra_files: dict[str, Any] | None = None,
                    tuning: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Grid-search a classical model on the training side; save it, its card, CV results.

    ``tuning``: every grid candidate's CV scores on this training side, from separate
    jobs (:func:`tune_candidate`, ``train.grid_jobs``); the best is picked from them and
    refitted (:func:`ser.models.grid.select_and_refit`) instead of running GridSearchCV.

    Parameters
    ----------
    spec, protocol, data, out_dir, settings, section, n_jobs, verbose
        As for :func:`train` (only the training side of ``data`` is used).
    extra_files : dict, optional
        File name -> ``write(path)`` of more files for the folder (``speaker_cv``: the
        out-of-fold predictions).
    tuning : list of dict, optional
        Candidate scores (see above); ``None``: run GridSearchCV.

    Returns
    -------
    dict
        The model card written to ``card.json``.
    """
    from ser.models.classical import TuneResult, cv_results_frame, tune, unprefix
    from ser.models.grid import select_and_refit
    from ser.models.store import save_model

    model, cfg = spec.name, settings
    columns, X, y, groups = fit_arrays(data.train)
    start = time.perf_counter()
    if tuning is None:
        result = TuneResult.from_search(tune(
            model, X, y, groups=groups, protocol=protocol, grid=section["grid"],
            scoring=cfg.scoring, cv_folds=cfg.cv_folds, seed=cfg.seed, n_jobs=n_jobs))
    else:
        print(f"{model}: best of {len(tuning)} candidate(s) scored by separate jobs, "
              "refitted on the training side")
        result = select_and_refit(model, X, y, groups=groups, grid=section["grid"],
                                  scores=tuning, seed=cfg.seed)
    card = base_card(model, protocol, data, [str(c) for c in result.best_estimator.classes_],
                     "skops", seed=cfg.seed)
    card.update({
        "feature_columns": columns,
        "best_params": {unprefix(model, k): v for k, v in result.best_params.items()},
        "cv_best_score": result.best_score,
        "scoring": cfg.scoring,
        "cv": result.cv_name,
        "cv_folds": result.n_splits,
        "fit_seconds": round(time.perf_counter() - start, 2),
    } | run_facts(data))
    if tuning is not None:  # the grid's own time was spent in the candidate jobs
        card["grid_jobs"] = {"candidates": len(tuning), "cv_seconds": round(sum(
            sum(s["fit_times"]) + sum(s["score_times"]) for s in tuning), 2)}
    results = cv_results_frame(model, result)
    save_model(out_dir, result.best_estimator, card,
               {"cv_results.csv": lambda p: results.to_csv(p, index=False)} |
               (extra_files or {}))
    return card



def network_targets(train: pd.DataFrame, protocol: str, *, share: float, seed: int
                    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """What every network trainer fits on: the sorted labels, the class index of each
    training clip, and the fitting / early-stopping rows (speakers the network does not
    fit on, where the protocol is speaker-independent; :func:`validation_split`).

    Parameters
    ----------
    train : DataFrame
        The training side of the protocol data (``emotion`` and speaker columns).
    protocol : str
        The protocol, which decides whether the validation rows are speaker-disjoint.
    share : float
        Share of the training clips held out for early stopping.
    seed : int
        Seed of the split.
    """
    labels = sort_labels(train["emotion"].unique())
    y = train["emotion"].map({lab: i for i, lab in enumerate(labels)}).to_numpy(np.int32)
    train_idx, val_idx = validation_split(y, speaker_groups(train).to_numpy(), protocol,
                                          share=share, seed=seed)
    return labels, y, train_idx, val_idx


def train_lstm(spec: ModelSpec, protocol: str, data: ProtocolData, out_dir: Path, *,
               settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
               verbose: int = 2, extra_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the LSTM with speaker-aware early stopping; save it, its card and curves.

    Parameters
    ----------
    spec, protocol, data, out_dir, settings, section, n_jobs, verbose
        As for :func:`train` (only the training side of ``data`` is used).
    extra_files : dict, optional
        File name -> ``write(path)`` of more files for the folder (``speaker_cv``: the
        out-of-fold predictions).

    Returns
    -------
    dict
        The model card written to ``card.json``.
    """
    from ser.models.lstm import SEQUENCE_DTYPE, fit_lstm, training_inputs
    from ser.models.store import save_model

    cfg, seed = section, settings.seed
    train = data.train
    seqs = data.sequences(train["path"], dtype=SEQUENCE_DTYPE)
    labels, y, train_idx, val_idx = network_targets(train, protocol, share=cfg["validation_share"],
                                                    seed=seed)
    # Standardisation statistics come from the fitting part of the training side only.
    scaler, X = training_inputs(seqs, train_idx, bucket_frames=cfg.get("bucket_frames"))
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

    Parameters
    ----------
    spec, protocol, data, out_dir, settings, section, n_jobs, verbose
        As for :func:`train` (only the training side of ``data`` is used).
    extra_files : dict, optional
        File name -> ``write(path)`` of more files for the folder (``speaker_cv``: the
        out-of-fold predictions).

    Returns
    -------
    dict
        The model card written to ``card.json``.
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
    labels, y, train_idx, val_idx = network_targets(train, protocol, share=cfg.validation_share,
                                                    seed=seed)
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


def train_byols_ft(spec: ModelSpec, protocol: str, data: ProtocolData, out_dir: Path, *,
                   settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
                   verbose: int = 2, extra_files: dict[str, Any] | None = None,
                   ) -> dict[str, Any]:
    """Fine-tune the BYOL-S encoder on the ``byols_mel`` frames (masks and mixup on the
    fitting clips only, early stopping on speakers it does not fit on); save it, its card
    and curves.

    The card stores ``n_frames`` and ``pad`` (``zeros``): prediction computes the
    ``byols_mel`` frames and crops/pads them with ``fix_length``; the input statistics
    are inside the model (and in the card, for reading).

    Parameters
    ----------
    spec, protocol, data, out_dir, settings, section, n_jobs, verbose
        As for :func:`train` (only the training side of ``data`` is used).
    extra_files : dict, optional
        File name -> ``write(path)`` of more files for the folder (``speaker_cv``: the
        out-of-fold predictions).

    Returns
    -------
    dict
        The model card written to ``card.json``.
    """
    from ser.features import byols
    from ser.features.logmel import fix_length
    from ser.models.byols_ft import ByolsFTConfig, fit_byols_ft
    from ser.models.store import save_model

    seed = settings.seed
    cfg = ByolsFTConfig.from_mapping(section)
    arrays, digest = byols.load_weights(cfg.weights)
    train = data.train
    labels, y, train_idx, val_idx = network_targets(train, protocol, share=cfg.validation_share,
                                                    seed=seed)
    X = fix_length(data.sequences(train["path"]), cfg.n_frames, pad="zeros")
    start = time.perf_counter()
    model, epochs, facts = fit_byols_ft(X, y, n_classes=len(labels), train_idx=train_idx,
                                       val_idx=val_idx, cfg=cfg, seed=seed, arrays=arrays,
                                       verbose=verbose)
    hist = pd.DataFrame(epochs, columns=["epoch", "phase", "loss", "val_loss", "val_accuracy",
                                         "val_uar"])
    card = base_card(spec.name, protocol, data, labels, "keras", seed=seed)
    card.update({
        "n_frames": cfg.n_frames,
        "pad": "zeros",
        "best_params": cfg.to_dict(),
        "encoder_weights_sha256": digest,
        "input_norm": {"mean": facts["norm_mean"], "std": facts["norm_std"]},
        "epochs_run": int(len(hist)),
        "best_epoch": facts.get("best_epoch"),
        "best_val_uar": facts.get("best_val_uar"),
        "best_val_loss": float(hist["val_loss"].min()) if len(hist) else None,
        "n_validation": int(len(val_idx)),
        "fit_seconds": round(time.perf_counter() - start, 2),
    } | run_facts(data))
    save_model(out_dir, model, card, {"history.csv": lambda p: hist.to_csv(p, index=False)} |
               (extra_files or {}))
    return card


#: Out-of-fold predictions of a cross-validated protocol, in the model folder.
OOF_FILE = "oof_predictions.csv"
#: The fit of a model on the whole training side (every protocol has it).
FINAL_FIT = "final"


def outer_folds(data: ProtocolData) -> Iterator[tuple[int, ProtocolData]]:
    """``speaker_cv``: each fold with its data (the fold's clips as test, the rest train),
    one at a time (a leave-one-speaker-out run has many).

    Parameters
    ----------
    data : ProtocolData
        A cross-validated protocol's data (split with a ``fold`` column).
    """
    import dataclasses

    table = data.table
    if data._sequences is None:
        data._sequences = {}  # one cache of the clips' sequences for every fold's copy
    for fold in sorted(table["fold"].unique()):
        split = np.where(table["fold"] == fold, "test", "train")
        yield int(fold), dataclasses.replace(data, table=table.assign(split=split),
                                             _sequences=data._sequences)


def tuning_fits(protocol: str, data: ProtocolData) -> Iterator[tuple[str, ProtocolData]]:
    """Every training side a model of ``protocol`` is tuned on, with its name: ``fold<k>``
    for each outer fold of a cross-validated protocol, then :data:`FINAL_FIT`.

    Parameters
    ----------
    protocol : str
        The split protocol.
    data : ProtocolData
        The protocol's data.
    """
    from ser.splits.protocols import CROSS_VALIDATED

    if protocol in CROSS_VALIDATED:
        for fold, fold_data in outer_folds(data):
            yield f"fold{fold}", fold_data
    yield FINAL_FIT, data


def _tuning(grid_scores: list[dict[str, Any]] | None, fit: str) -> dict[str, Any]:
    from ser.models.grid import fit_scores

    return {} if grid_scores is None else {"tuning": fit_scores(grid_scores, fit)}


def train_speaker_cv(spec: ModelSpec, protocol: str, data: ProtocolData, *, out_dir: Path,
                     settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
                     verbose: int = 2, grid_scores: list[dict[str, Any]] | None = None,
                     ) -> dict[str, Any]:
    """``speaker_cv``: one model per fold (tuned inside its training folds, grouped by
    speaker) predicts the clips of the speakers it never saw; then a final model is fitted
    on every clip (for prediction). The out-of-fold predictions go to :data:`OOF_FILE`.

    ``grid_scores``: the candidate score files' contents (``train.grid_jobs``), with
    every fold's and the final fit's scores; each model is picked from its own.

    Parameters
    ----------
    spec, protocol, data, out_dir, settings, section, n_jobs, verbose, grid_scores
        As for :func:`train`; ``data`` carries the ``fold`` column of the split.
    """
    from ser.predict.inference import Predictor
    from ser.predict.predictions import predict_rows, predictions_frame

    trainer = spec.train_function()
    table = data.table
    n_folds = table["fold"].nunique()
    parts = []
    with tempfile.TemporaryDirectory(prefix="ser-cv-") as tmp:
        for fold, fold_data in outer_folds(data):
            print(f"fold {fold + 1}/{n_folds}: training without its "
                  f"{speaker_groups(fold_data.test).nunique()} speaker(s)")
            fold_dir = Path(tmp) / f"fold{fold}"
            trainer(spec, protocol, fold_data, fold_dir, settings=settings, section=section,
                    n_jobs=n_jobs, verbose=0 if verbose < 2 else verbose,
                    **_tuning(grid_scores, f"fold{fold}"))
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
                                                               float_format="%.5f")},
                   **_tuning(grid_scores, FINAL_FIT))


def tune_candidate(spec: ModelSpec, protocol: str, data: ProtocolData, *, index: int,
                   settings: TrainSettings, section: dict[str, Any],
                   verbose: int = 2) -> dict[str, Any]:
    """Stage body of one grid-candidate job (``train.grid_jobs``): cross-validate
    candidate ``index`` of the model's grid on every training side the train stage will
    tune on (:func:`tuning_fits`: each outer fold's and the final one), as GridSearchCV
    would; return the score document (:func:`ser.models.grid.scores_document`).

    Parameters
    ----------
    spec : ModelSpec
        A classical model's registry entry.
    protocol : str
        The split protocol.
    data : ProtocolData
        The split joined with the feature set.
    index : int
        The candidate's number in the model's grid (:func:`ser.models.grid.check_candidate`).
    settings : TrainSettings
        ``train:`` (scoring, CV folds, seed).
    section : dict
        The model's params section (its ``grid:``).
    verbose : int
        Verbosity of the cross-validation.
    """
    from ser.models.grid import check_candidate, score_candidate, scores_document

    if spec.kind != "classical":
        raise SerError(f"model {spec.name!r} has no grid (a sequence model); only classical "
                       "models have grid candidates")
    grid = section["grid"]
    check_candidate(spec.name, grid, index)
    fits = {}
    for name, fit_data in tuning_fits(protocol, data):
        _, X, y, groups = fit_arrays(fit_data.train)
        print(f"{spec.name} candidate {index} on {name}: {len(y)} training clips")
        fits[name] = score_candidate(spec.name, X, y, groups=groups, protocol=protocol,
                                     grid=grid, index=index, scoring=settings.scoring,
                                     cv_folds=settings.cv_folds, seed=settings.seed,
                                     verbose=verbose)
    return scores_document(model=spec.name, protocol=protocol, feature_set=data.feature_set,
                           scoring=settings.scoring, grid=grid, index=index, fits=fits)


def train(spec: ModelSpec, protocol: str, data: ProtocolData, *, out_dir: Path,
          settings: TrainSettings, section: dict[str, Any], n_jobs: int = 1,
          verbose: int = 2, grid_scores: list[dict[str, Any]] | None = None,
          ) -> dict[str, Any]:
    """Stage body: train the model of ``spec`` on ``data`` into ``out_dir`` with its trainer.

    ``section`` is the model's own ``params.yaml`` section (its grid or network settings).
    Cross-validated protocols (``speaker_cv``) go through :func:`train_speaker_cv`.
    ``grid_scores``: a classical model's candidate score files, read with
    :func:`ser.models.grid.read_scores` (``train.grid_jobs``); the best candidate is
    picked from them instead of running GridSearchCV here.

    Parameters
    ----------
    spec : ModelSpec
        The model's registry entry (:func:`ser.models.model_spec`).
    protocol : str
        The split protocol; cross-validated ones train one model per fold first.
    data : ProtocolData
        The split joined with the feature set (:func:`ser.cli.stage.load_run_data`).
    out_dir : Path
        The model folder to write.
    settings : TrainSettings
        ``train:`` (scoring, CV folds, seed).
    section : dict
        The model's own params section.
    n_jobs : int
        GridSearchCV processes.
    verbose : int
        Keras/GridSearchCV verbosity.
    grid_scores : list of dict, optional
        Candidate score documents (see above).

    Returns
    -------
    dict
        The model card written to ``card.json``.
    """
    from ser.splits.protocols import CROSS_VALIDATED

    if grid_scores is not None and spec.kind != "classical":
        raise SerError(f"model {spec.name!r} has no grid; candidate score files are only for "
                       "classical models")
    if protocol in CROSS_VALIDATED:
        return train_speaker_cv(spec, protocol, data, out_dir=out_dir, settings=settings,
                                section=section, n_jobs=n_jobs, verbose=verbose,
                                grid_scores=grid_scores)
    return spec.train_function()(spec, protocol, data, out_dir, settings=settings,
                                 section=section, n_jobs=n_jobs, verbose=verbose,
                                 **_tuning(grid_scores, FINAL_FIT))
