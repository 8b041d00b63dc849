"""Reading every pipeline output the report needs, with errors that name the stage.

Nothing here draws or formats: :func:`load_inputs` gathers manifests, metrics,
details, predictions, model cards and LSTM histories into a
:class:`ReportInputs`, and refuses (with :class:`~ser.errors.SerError`) when
an expected file is missing or unreadable, saying which stage makes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ser.errors import SerError
from ser.layout import (
    DETAILS_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    SKIPPED_FILE,
    manifest_file,
    rejected_file,
    run_dir,
)

#: How to (re)make each kind of input: shown in error messages.
STAGE_HINTS: dict[str, str] = {
    "manifest": "the manifest stage (python scripts/prepare_manifest.py --corpus {corpus})",
    "evaluate": "the evaluate stage of {model} under {protocol} (snakemake / dvc repro)",
    "train": "the train stage of {model} under {protocol} (snakemake / dvc repro)",
}

#: Keys every metrics.json must hold.
METRIC_KEYS: tuple[str, ...] = ("accuracy", "uar", "precision_macro", "recall_macro",
                                "f1_macro", "n_test", "chance_uar")


@dataclass
class Run:
    """One trained and evaluated model under one protocol.

    Attributes
    ----------
    model, protocol
        Names as in ``params.yaml`` ``train.models`` / ``train.protocols``.
    metrics
        Contents of ``metrics.json`` of the run's metrics folder (:mod:`ser.layout`).
    details
        Contents of ``details.json`` (labels, per-class report, confusion...).
    card
        The model card ``card.json`` of the run's model folder.
    test_corpora
        Corpora present in the test predictions, in order of appearance.
    history
        LSTM training history (``history.csv``), ``None`` for classical models.
    feature_set
        The feature set the model was trained on.
    predicted
        How often each class was predicted on the test set (``predictions.csv``).
    """

    model: str
    protocol: str
    metrics: dict[str, Any]
    details: dict[str, Any]
    card: dict[str, Any]
    test_corpora: list[str]
    history: pd.DataFrame | None = None
    feature_set: str = ""
    predicted: dict[str, int] = field(default_factory=dict)

    @property
    def train_corpora(self) -> list[str]:
        """Corpora of the training speakers (card ``train_speakers`` are ``corpus:speaker``)."""
        seen: dict[str, None] = {}
        for key in self.card.get("train_speakers", []):
            seen.setdefault(str(key).split(":", 1)[0], None)
        return list(seen)


@dataclass
class ReportInputs:
    """Everything the report is built from.

    Attributes
    ----------
    corpora
        Corpus name -> root folder, from ``params.yaml``.
    manifests
        The pooled manifests (one row per clip).
    manifest_files
        Corpus name -> manifest file that was read.
    models, protocols
        From ``params.yaml`` ``train``.
    runs
        ``(protocol, model)`` -> :class:`Run` of the first feature set.
    feature_sets
        From ``params.yaml`` ``train.feature_sets``.
    grid
        ``(protocol, feature_set, model)`` -> :class:`Run`, every feature set
        whose outputs exist (the first one always).
    rejected
        Corpus -> files the manifest stage left out (``<corpus>_rejected.csv``:
        ``path``, ``reason``), for corpora whose file exists.
    skipped
        ``(extracted feature set, corpus)`` -> clips the feature stage skipped
        (``skipped.csv``: ``path``, ``reason``), when a features folder is given.
    """

    corpora: dict[str, str]
    manifests: pd.DataFrame
    manifest_files: dict[str, Path]
    models: list[str]
    protocols: list[str]
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)
    feature_sets: list[str] = field(default_factory=list)
    grid: dict[tuple[str, str, str], Run] = field(default_factory=dict)
    rejected: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)

    def run(self, protocol: str, model: str) -> Run:
        """The run of ``model`` under ``protocol``.

        Parameters
        ----------
        protocol, model : str
            Which run.
        """
        return self.runs[(protocol, model)]


def _missing(path: Path, stage: str, **fmt: str) -> str:
    return f"{path}: not found; it is made by {STAGE_HINTS[stage].format(**fmt)}"


def _read_json(path: Path, stage: str, **fmt: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SerError(f"{path}: not valid JSON ({exc}); it may be unfinished - rerun "
                       f"{STAGE_HINTS[stage].format(**fmt)}") from None
    if not isinstance(data, dict):
        raise SerError(f"{path}: expected a JSON object; rerun {STAGE_HINTS[stage].format(**fmt)}")
    return data


def load_manifests(corpora: dict[str, str], manifests_dir: Path) -> tuple[pd.DataFrame,
                                                                          dict[str, Path]]:
    """Read ``<manifests_dir>/<corpus>.parquet`` for every enabled corpus.

    Parameters
    ----------
    corpora : dict
        params.yaml's ``corpora:`` (name -> root).
    manifests_dir : Path
        The manifest folder (the manifest stage's outputs).

    Returns
    -------
    tuple
        The pooled manifest rows and each corpus' manifest path.

    Raises
    ------
    SerError
        If a manifest is missing, unreadable or lacks the common columns.
    """
    files: dict[str, Path] = {}
    frames = []
    required = {"path", "corpus", "speaker", "gender", "emotion"}
    missing = [manifest_file(manifests_dir, c) for c in corpora
               if not manifest_file(manifests_dir, c).is_file()]
    if missing:
        corpus = missing[0].stem
        more = f" (and {len(missing) - 1} more manifest(s))" if len(missing) > 1 else ""
        raise SerError(_missing(missing[0], "manifest", corpus=corpus) + more)
    for corpus in corpora:
        path = manifest_file(manifests_dir, corpus)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise SerError(f"{path}: cannot read the manifest ({exc}); rerun "
                           + STAGE_HINTS["manifest"].format(corpus=corpus)) from None
        lacking = required - set(frame.columns)
        if lacking:
            raise SerError(f"{path}: manifest lacks column(s) {', '.join(sorted(lacking))}; "
                           "rerun " + STAGE_HINTS["manifest"].format(corpus=corpus))
        files[corpus] = path
        frames.append(frame.astype({c: str for c in required}))
    manifests = pd.concat(frames, ignore_index=True)
    if manifests.empty:
        raise SerError(f"{manifests_dir}: the manifests hold no clips; check the corpus roots "
                       "in params.yaml 'corpora:'")
    return manifests, files


def load_run(protocol: str, model: str, *, metrics_dir: Path, models_dir: Path,
             feature_set: str) -> Run:
    """Read the evaluation outputs and the model card of one model x protocol.

    Parameters
    ----------
    protocol, model, feature_set : str
        The run.
    metrics_dir, models_dir : Path
        The evaluate and train stages' output roots.
    """
    fmt = {"model": model, "protocol": protocol}
    mdir = run_dir(metrics_dir, protocol, feature_set, model)
    tdir = run_dir(models_dir, protocol, feature_set, model)
    metrics = _read_json(mdir / METRICS_FILE, "evaluate", **fmt)
    lacking = [k for k in METRIC_KEYS if k not in metrics]
    if lacking:
        raise SerError(f"{mdir / METRICS_FILE}: lacks {', '.join(lacking)}; rerun "
                       + STAGE_HINTS["evaluate"].format(**fmt))
    for key, want in (("model", model), ("protocol", protocol)):
        if metrics.get(key, want) != want:
            raise SerError(f"{mdir / METRICS_FILE}: says {key} {metrics[key]!r}, expected "
                           f"{want!r} from its folder; rerun "
                           + STAGE_HINTS["evaluate"].format(**fmt))
    details = _read_json(mdir / DETAILS_FILE, "evaluate", **fmt)
    if "confusion" not in details or "labels" not in details:
        raise SerError(f"{mdir / DETAILS_FILE}: lacks labels/confusion; rerun "
                       + STAGE_HINTS["evaluate"].format(**fmt))
    try:
        preds = pd.read_csv(mdir / PREDICTIONS_FILE,
                            usecols=lambda c: c in ("corpus", "actual", "predicted"))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SerError(f"{mdir / PREDICTIONS_FILE}: cannot read it ({exc}); rerun "
                       + STAGE_HINTS["evaluate"].format(**fmt)) from None
    test_corpora = (list(dict.fromkeys(preds["corpus"].astype(str)))
                    if "corpus" in preds else [])
    predicted = ({str(k): int(v) for k, v in preds["predicted"].astype(str).value_counts(
        sort=False).items()} if "predicted" in preds else {})
    card = _read_json(tdir / "card.json", "train", **fmt)
    history = None
    if card.get("format") == "keras" or _is_sequence(model):
        try:
            history = pd.read_csv(tdir / "history.csv")
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise SerError(f"{tdir / 'history.csv'}: cannot read it ({exc}); rerun "
                           + STAGE_HINTS["train"].format(**fmt)) from None
        lacking = {"loss", "val_loss"} - set(history.columns)
        if lacking:
            raise SerError(f"{tdir / 'history.csv'}: lacks {', '.join(sorted(lacking))}; "
                           "rerun " + STAGE_HINTS["train"].format(**fmt))
        if "epoch" not in history:
            history.insert(0, "epoch", range(1, len(history) + 1))
    return Run(model, protocol, metrics, details, card, test_corpora, history,
               feature_set=feature_set, predicted=predicted)


def _is_sequence(model: str) -> bool:
    from ser.models import MODEL_SPECS

    spec = MODEL_SPECS.get(model)
    return spec is not None and spec.kind == "sequence"


def expected_files(protocol: str, model: str, *, metrics_dir: Path,
                   models_dir: Path, feature_set: str) -> list[tuple[Path, str]]:
    """The files of one model x protocol the report reads, each with its stage.

    Parameters
    ----------
    protocol, model, feature_set : str
        The run.
    metrics_dir, models_dir : Path
        The evaluate and train stages' output roots.
    """
    mdir = run_dir(metrics_dir, protocol, feature_set, model)
    tdir = run_dir(models_dir, protocol, feature_set, model)
    files = [(mdir / name, "evaluate") for name in (METRICS_FILE, DETAILS_FILE,
                                                    PREDICTIONS_FILE)]
    files.append((tdir / "card.json", "train"))
    if _is_sequence(model):
        files.append((tdir / "history.csv", "train"))
    return files


def _path_reason_table(path: Path) -> pd.DataFrame | None:
    """A ``path,reason`` CSV (rejected or skipped clips); ``None`` when it is missing."""
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SerError(f"{path}: cannot read it ({exc}); rerun the stage that wrote it") from None
    if not {"path", "reason"} <= set(table.columns):
        raise SerError(f"{path}: expected the columns path,reason; rerun the stage that wrote it")
    return table


def load_unused(inputs: ReportInputs, *, manifests_dir: Path,
                features_dir: Path | None) -> None:
    """Fill ``inputs.rejected`` and ``inputs.skipped`` from the stages' CSV files.

    Parameters
    ----------
    inputs : ReportInputs
        The report's inputs, filled in place.
    manifests_dir : Path
        Where the manifest stage wrote ``<corpus>_rejected.csv``.
    features_dir : Path or None
        Where the feature stage wrote ``<set>/<corpus>/skipped.csv`` (``None``: not read).
    """
    from ser.features.sets import FEATURE_SETS

    for corpus in inputs.corpora:
        table = _path_reason_table(rejected_file(manifest_file(manifests_dir, corpus)))
        if table is not None:
            inputs.rejected[corpus] = table
    if features_dir is None:
        return
    extracted = dict.fromkeys(FEATURE_SETS[f].extracted for f in inputs.feature_sets
                              if f in FEATURE_SETS)
    for fs in extracted:
        for corpus in inputs.corpora:
            table = _path_reason_table(Path(features_dir) / fs / corpus / SKIPPED_FILE)
            if table is not None:
                inputs.skipped[(fs, corpus)] = table


def load_inputs(params: dict[str, Any], *, manifests_dir: Path, metrics_dir: Path,
                models_dir: Path, features_dir: Path | None = None) -> ReportInputs:
    """Read every input of the report; fail early and clearly if one is missing.

    Parameters
    ----------
    params
        The validated ``params.yaml`` mapping.
    manifests_dir, metrics_dir, models_dir
        Folders of the manifest, evaluate and train stage outputs.
    features_dir
        Folder of the extracted feature sets, whose ``skipped.csv`` files the
        report counts (``None``: not shown).

    Returns
    -------
    ReportInputs

    Raises
    ------
    SerError
        Naming the first missing or broken file and the stage that makes it
        (and how many other files are missing).
    """
    corpora = {str(k): str(v) for k, v in params["corpora"].items()}
    from ser.features.sets import model_accepts

    protocols = list(params["train"]["protocols"])
    feature_sets = list(params["train"]["feature_sets"])
    # Each model's main runs use the first listed feature set it can read (classical models:
    # summary sets; sequence models: their sequences); a model that reads none has no run.
    primary = {m: next((f for f in feature_sets if model_accepts(m, f)), None)
               for m in params["train"]["models"]}
    models = [m for m, f in primary.items() if f is not None]
    manifests, manifest_files = load_manifests(corpora, Path(manifests_dir))

    missing = [(path, stage, protocol, model)
               for protocol in protocols for model in models
               for path, stage in expected_files(protocol, model,
                                                 metrics_dir=Path(metrics_dir),
                                                 models_dir=Path(models_dir),
                                                 feature_set=primary[model])
               if not path.is_file()]
    if missing:
        path, stage, protocol, model = missing[0]
        more = f" ({len(missing) - 1} more input file(s) missing)" if len(missing) > 1 else ""
        raise SerError(_missing(path, stage, model=model, protocol=protocol) + more)

    inputs = ReportInputs(corpora, manifests, manifest_files, models, protocols,
                          feature_sets=feature_sets)
    order = {c: i for i, c in enumerate(corpora)}
    for protocol in protocols:
        for fs in feature_sets:
            for model in models:
                if not model_accepts(model, fs):
                    continue  # no such run exists (see ser.features.sets.model_accepts)
                present = all(path.is_file() for path, _ in expected_files(
                    protocol, model, metrics_dir=Path(metrics_dir),
                    models_dir=Path(models_dir), feature_set=fs))
                if fs != primary[model] and not present:
                    continue  # shown as "not run" in the comparison
                run = load_run(protocol, model, metrics_dir=Path(metrics_dir),
                               models_dir=Path(models_dir), feature_set=fs)
                run.test_corpora.sort(key=lambda c: (order.get(c, len(order)), c))
                inputs.grid[(protocol, fs, model)] = run
                if fs == primary[model]:
                    inputs.runs[(protocol, model)] = run
    load_unused(inputs, manifests_dir=Path(manifests_dir), features_dir=features_dir)
    return inputs
