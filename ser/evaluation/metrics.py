"""Metrics on a test set: accuracy, precision, recall, F1, UAR, CIs, confusion.

UAR (unweighted average recall) is scikit-learn's balanced accuracy: the mean
recall over the emotions present in the test set, the standard SER measure
because corpora are not balanced.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ser.outputs import atomic_path


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of accuracy and UAR over test clips.

    Clips of one speaker are not independent, so with few test speakers
    these intervals are optimistic; they still show how small test sets wobble.
    """
    if n_resamples == 0:
        return {}
    rng = np.random.default_rng(seed)
    n = len(y_true)
    acc, uar = np.empty(n_resamples), np.empty(n_resamples)
    codes, y_all = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t, p = y_all[:n], y_all[n:]
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        tb, pb = t[idx], p[idx]
        acc[b] = np.mean(tb == pb)
        present = np.unique(tb)
        uar[b] = np.mean([np.mean(pb[tb == c] == c) for c in present])
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {"accuracy": np.percentile(acc, [lo, hi]).round(4).tolist(),
            "uar": np.percentile(uar, [lo, hi]).round(4).tolist()}


def summary_metrics(y_true, y_pred) -> dict[str, float]:
    """Accuracy, macro/weighted precision, recall and F1, and UAR."""
    labels = sorted(set(y_true))
    with warnings.catch_warnings():
        # Predicting an emotion absent from the test set is an error like any other.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        uar = balanced_accuracy_score(y_true, y_pred)
    out = {"accuracy": accuracy_score(y_true, y_pred), "uar": uar}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                     average=avg, zero_division=0)
        out |= {f"precision_{avg}": p, f"recall_{avg}": r, f"f1_{avg}": f}
    return {k: round(float(v), 4) for k, v in out.items()}


def evaluate_predictions(
    predictions: pd.DataFrame,
    *,
    labels: list[str],
    train_labels: np.ndarray | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics for a table with ``actual``, ``predicted`` (and ``corpus``) columns.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per scored test clip.
    labels : list of str
        The model's classes, in report order (those absent from both columns are dropped).
    train_labels : numpy.ndarray, optional
        The training clips' emotions, for the majority-class baseline.
    bootstrap, seed : int
        Resamples and seed of the CIs (:func:`bootstrap_ci`).

    Returns
    -------
    metrics
        Flat scalar metrics plus CIs and baselines (what ``dvc metrics`` shows).
    details
        Per-class report, confusion matrix and per-corpus breakdown.
    """
    y_true = predictions["actual"].to_numpy()
    y_pred = predictions["predicted"].to_numpy()
    metrics: dict[str, Any] = summary_metrics(y_true, y_pred)
    metrics["n_test"] = int(len(y_true))
    present = sorted(set(y_true))
    metrics["chance_uar"] = round(1 / len(present), 4)
    if train_labels is not None:
        dummy = DummyClassifier(strategy="stratified", random_state=seed)
        dummy.fit(np.zeros((len(train_labels), 1)), train_labels)
        guess = dummy.predict(np.zeros((len(y_true), 1)))
        metrics["baseline_stratified_uar"] = summary_metrics(y_true, guess)["uar"]
    metrics["ci95"] = bootstrap_ci(y_true, y_pred, n_resamples=bootstrap, seed=seed)

    order = [lab for lab in labels if lab in set(y_true) | set(y_pred)]
    order += sorted((set(y_true) | set(y_pred)) - set(order))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=order, zero_division=0)
    details: dict[str, Any] = {
        "labels": order,
        "test_classes": present,
        "per_class": {lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                            "f1": round(float(f[i]), 4), "support": int(s[i])}
                      for i, lab in enumerate(order)},
        "confusion": confusion_matrix(y_true, y_pred, labels=order).tolist(),
    }
    if "corpus" in predictions and predictions["corpus"].nunique() > 1:
        details["per_corpus"] = {
            str(c): summary_metrics(g["actual"].to_numpy(), g["predicted"].to_numpy())
            | {"n_test": int(len(g))}
            for c, g in predictions.groupby("corpus", sort=True)
        }
    return metrics, details


def write_evaluation(out_dir: str | Path, metrics: dict, details: dict,
                     predictions: pd.DataFrame, *,
                     extra_text: dict[str, str] | None = None, checked: bool = False) -> None:
    """Write ``metrics.json``, ``details.json``, ``predictions.csv`` (and ``extra_text``:
    file name -> text) as one folder, atomically (:func:`ser.outputs.atomic_path`; ``checked``:
    the caller checked ``out_dir`` before its work)."""
    with atomic_path(out_dir, checked=checked) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "details.json").write_text(json.dumps(details, indent=2) + "\n")
        predictions.to_csv(tmp / "predictions.csv", index=False, float_format="%.5f")
        for name, text in (extra_text or {}).items():
            (tmp / name).write_text(text)


def predictions_frame(rows: pd.DataFrame, proba: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Per-clip predictions: id columns, actual, predicted and one probability per class."""
    keep = [c for c in ("path", "corpus", "speaker") if c in rows]
    out = rows[keep].reset_index(drop=True).copy()
    out["actual"] = rows["emotion"].to_numpy()
    out["predicted"] = np.asarray(labels)[proba.argmax(axis=1)]
    for i, lab in enumerate(labels):
        out[f"p_{lab}"] = proba[:, i]
    return out


@dataclass(frozen=True)
class SharedClasses:
    """The emotions a model and a test set share, and what falls outside them.

    Built by :func:`restrict_to_shared`. A model can only be scored fairly on
    the emotions both sides know: test clips of an emotion the model never
    learned cannot be right, and a model class the test set lacks can only
    be wrong. Both are left out and named.

    Attributes
    ----------
    model_labels
        The model's classes in its output order.
    shared
        Model classes that occur in the test set (model order): the only
        answers the model may give.
    dropped_test_emotions
        Test emotion the model does not know -> number of clips left out.
    excluded_model_classes
        Model classes absent from the test set (never answered).
    """

    model_labels: tuple[str, ...]
    shared: tuple[str, ...]
    dropped_test_emotions: dict[str, int]
    excluded_model_classes: tuple[str, ...]

    def proba(self, proba: np.ndarray) -> np.ndarray:
        """The probability columns of the shared classes, renormalised to sum to one."""
        idx = [self.model_labels.index(lab) for lab in self.shared]
        sub = np.asarray(proba, dtype=float)[:, idx]
        total = sub.sum(axis=1, keepdims=True)
        # A row with no mass on any shared class (a hard 0/1 classifier) becomes uniform.
        return np.divide(sub, total, out=np.full_like(sub, 1 / len(idx)), where=total > 0)

    def to_metrics(self) -> dict[str, Any]:
        """``restricted_to``, ``dropped_test_emotions``, ``excluded_model_classes``."""
        return {"restricted_to": list(self.shared),
                "dropped_test_emotions": dict(self.dropped_test_emotions),
                "excluded_model_classes": list(self.excluded_model_classes)}

    def describe(self) -> str:
        """One line for the console."""
        dropped = ", ".join(f"{e} ({n})" for e, n in self.dropped_test_emotions.items())
        excluded = ", ".join(self.excluded_model_classes)
        return (f"answers restricted to the {len(self.shared)} shared emotions "
                f"({', '.join(self.shared)}); test clips of emotions the model does not know, "
                f"left out: {dropped or 'none'}; model classes absent from the test set, "
                f"never answered: {excluded or 'none'}")


def restrict_to_shared(model_labels: list[str] | tuple[str, ...],
                       test_emotions) -> tuple[SharedClasses, np.ndarray]:
    """Which test clips and model classes an honest cross-corpus score uses.

    Parameters
    ----------
    model_labels
        The model's classes in its output order.
    test_emotions
        The emotion of every test clip.

    Returns
    -------
    shared : SharedClasses
        The shared classes and what was left out (apply :meth:`SharedClasses.proba`
        to the model's probabilities of the kept clips).
    keep : np.ndarray of bool
        Which test clips have an emotion the model knows.

    Raises
    ------
    SerError
        If the two sides share no emotion.

    Examples
    --------
    >>> shared, keep = restrict_to_shared(["calm", "happy", "sad"], ["sad", "boredom", "happy"])
    >>> shared.shared, shared.dropped_test_emotions, shared.excluded_model_classes
    (('happy', 'sad'), {'boredom': 1}, ('calm',))
    >>> keep.tolist()
    [True, False, True]
    """
    from ser.errors import SerError
    from ser.labels import sort_labels

    model_labels = tuple(str(lab) for lab in model_labels)
    emotions = pd.Series(np.asarray(test_emotions, dtype=object)).astype(str)
    keep = emotions.isin(model_labels).to_numpy()
    present = set(emotions[keep])
    if not present:
        found = ", ".join(sort_labels(set(emotions)))
        raise SerError(f"none of the test emotions ({found or 'no clips'}) is known to the "
                       f"model ({', '.join(model_labels)}); there is nothing to score")
    counts = emotions[~keep].value_counts()
    dropped = {e: int(counts[e]) for e in sort_labels(counts.index)}
    return SharedClasses(
        model_labels=model_labels,
        shared=tuple(lab for lab in model_labels if lab in present),
        dropped_test_emotions=dropped,
        excluded_model_classes=tuple(lab for lab in model_labels if lab not in present),
    ), keep


def predict_rows(predictor, data, rows: pd.DataFrame) -> np.ndarray:
    """Class probabilities of ``rows`` of ``data``
    (:class:`ser.splits.protocol_data.ProtocolData`) by a
    loaded :class:`ser.predict.inference.Predictor`, from the representation it was trained on."""
    if predictor.is_sequence_model:
        return predictor.proba_from_sequences(data.sequences(rows["path"]))
    return predictor.proba_from_summaries(rows)


def speaker_details(predictions: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    """``uar_speaker_mean``, ``uar_speaker_sd`` (metrics) and ``per_speaker`` (details:
    ``{speaker: {uar, n}}``) of predictions with a ``speaker`` column."""
    summary, per_speaker = speaker_cv_metrics(predictions)
    metrics = {"uar_speaker_mean": summary["mean_speaker_uar"],
               "uar_speaker_sd": summary["sd_speaker_uar"],
               "n_speakers": summary["n_speakers"]}
    details = {"per_speaker": {str(r.speaker): {"uar": float(r.uar), "n": int(r.n_clips)}
                               for r in per_speaker.itertuples()}}
    return metrics, details


def evaluate_stage(*, model_dir: Path, data, settings, out_dir: Path,
                   protocol: str, label_map: str | None = None,
                   left_out: pd.Series | None = None) -> dict[str, Any]:
    """Stage body: predict the test clips of ``data``
    (:class:`ser.splits.protocol_data.ProtocolData`)
    with the model in ``model_dir``; write metrics to ``out_dir``.

    Under a cross-validated protocol (``speaker_cv``) the predictions are the model
    folder's out-of-fold ones (every clip predicted by the fold model that never saw its
    speaker); the metrics are pooled over all clips. Every run reports the mean and sd
    of per-speaker UAR and ``transductive`` (speaker-normalised feature sets).
    ``settings`` is a :class:`ser.params.settings.EvaluateSettings` (bootstrap resamples, seed).
    Scoring is restricted to the emotions the model and the test clips share
    (:func:`restrict_to_shared`); ``left_out`` holds the emotions of test-corpus clips the
    split already left out (:func:`ser.splits.protocols.left_out_test_emotions`), counted with them.
    ``label_map`` is the class-set description recorded in ``metrics.json``.

    Parameters
    ----------
    model_dir : Path
        The trained model folder (:mod:`ser.models.store`).
    data : ProtocolData
        The protocol's split joined with the model's feature set.
    settings : EvaluateSettings
        ``evaluate:`` (bootstrap resamples, seed).
    out_dir : Path
        The metrics folder to write (``metrics.json``, ``details.json``,
        ``predictions.csv``).
    protocol : str
        The split protocol.
    label_map : str, optional
        See above.
    left_out : pandas.Series, optional
        See above.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    from ser.features.sets import check_same_features
    from ser.models.training import OOF_FILE
    from ser.predict.inference import Predictor
    from ser.splits.protocols import CROSS_VALIDATED

    predictor = Predictor.load(model_dir)
    check_same_features(predictor.card["feature_params"], data.feature_params)
    if protocol in CROSS_VALIDATED:
        from ser.errors import SerError

        oof = Path(model_dir) / OOF_FILE
        if not oof.is_file():
            raise SerError(f"{oof}: no out-of-fold predictions; retrain the model under "
                           f"{protocol}")
        preds = pd.read_csv(oof, dtype={"speaker": str, "corpus": str, "path": str})
        # Every fold model was trained on the same corpora as the clips it scores.
        shared, _ = restrict_to_shared(predictor.labels, preds["actual"])
        train_labels = None
    else:
        test = data.test
        emotions = pd.concat([test["emotion"], pd.Series(left_out, dtype=object)],
                             ignore_index=True)
        shared, keep = restrict_to_shared(predictor.labels, emotions)
        test = test[keep[:len(test)]].reset_index(drop=True)
        proba = shared.proba(predict_rows(predictor, data, test))
        preds = predictions_frame(test, proba, list(shared.shared))
        train_labels = data.train["emotion"].to_numpy()
    metrics, details = evaluate_predictions(
        preds, labels=list(shared.shared), train_labels=train_labels,
        bootstrap=settings.bootstrap, seed=settings.seed)
    spk_metrics, spk_details = speaker_details(preds)
    metrics = {"model": predictor.card["model"], "protocol": protocol,
               "feature_set": data.feature_set, "transductive": bool(data.transductive)
               } | metrics | spk_metrics | shared.to_metrics()
    metrics |= {"label_map": label_map or "all labels"}
    details |= spk_details
    if shared.dropped_test_emotions or shared.excluded_model_classes:
        print(shared.describe())
    write_evaluation(out_dir, metrics, details, preds, extra_text={
        MODEL_CARD_FILE: model_card_text(out_dir, predictor.card, metrics, model_dir=model_dir)})
    return metrics


#: The model card the evaluate stage writes next to ``metrics.json``.
MODEL_CARD_FILE = "model_card.md"


def model_card_text(out_dir: str | Path, card: dict[str, Any], metrics: dict[str, Any], *,
                    model_dir: str | Path) -> str:
    """``model_card.md`` for ``out_dir``: the card plus test metrics with CIs.

    The model folder itself is never touched (its checksums stay valid); the
    page links it by relative path.
    """
    import os

    from ser.models.store import render_card_markdown

    link = Path(os.path.relpath(Path(model_dir).resolve(), Path(out_dir).resolve())).as_posix()
    return render_card_markdown(card, test_metrics=metrics, model_link=link)


def write_model_card(out_dir: str | Path, card: dict[str, Any], metrics: dict[str, Any], *,
                     model_dir: str | Path) -> Path:
    """Write ``model_card.md`` into ``out_dir`` (an output folder of this tool)."""
    out = Path(out_dir) / MODEL_CARD_FILE
    with atomic_path(out) as tmp:
        tmp.write_text(model_card_text(out_dir, card, metrics, model_dir=model_dir))
    return out


#: The files ``ser evaluate`` writes into its output folder (all it may replace there).
EXTERNAL_FILES = ("metrics.json", "details.json", "predictions.csv")


def default_external_out(model_dir: Path, corpus: str) -> Path:
    """``metrics/external/<corpus>--<model dir path with '-' for '/'>``: unique per model folder.

    ``models/speaker/svm`` and ``models/random/svm`` get different folders.
    """
    parts = [p for p in Path(model_dir).parts if p not in ("/", ".", "..")]
    return Path("metrics/external") / f"{corpus}--{'-'.join(parts) or 'model'}"


def evaluate_folder(model_dir: Path, corpus: str, root: Path, *, out_dir: Path,
                    bootstrap: int = 1000, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Evaluate a trained model on a corpus folder it never saw.

    The folder is parsed with the corpus' parser and features are extracted
    with the model's own feature parameters. Only the emotions both sides
    share are scored (:func:`restrict_to_shared`): clips of emotions the model
    does not know are left out, and the model's answers are restricted to the
    shared emotions (their probabilities renormalised), so a class the corpus
    lacks (e.g. RAVDESS' calm on EMO-DB) is never answered. Both are named,
    with counts, in ``metrics.json`` (``restricted_to``,
    ``dropped_test_emotions``, ``excluded_model_classes``).

    ``out_dir`` must be new, empty or an earlier output of this command (marked by
    its ``.ser-output`` file, replaced whole); a folder holding anything else needs
    ``force``, and then the results are written into it file by file, keeping every
    other file and refusing a name that is not this command's (:mod:`ser.outputs`).
    """
    from ser.corpora import parse_corpus
    from ser.errors import SerError
    from ser.outputs import check_output, replacing_allowed
    from ser.predict.inference import Predictor

    out_dir = Path(out_dir)
    if bootstrap < 0:
        raise SerError(f"--bootstrap {bootstrap}: must be 0 (no intervals) or more resamples")
    with replacing_allowed(force):
        check_output(out_dir, kind="dir")  # at once, not after the predictions
    predictor = Predictor.load(model_dir)
    rows = parse_corpus(corpus, root).to_frame()
    if predictor.speaker_normalised:
        # Statistics of every speaker from all of their readable clips (no label used).
        rows, proba, failures, speaker_meta = _speaker_normalised_proba(predictor, rows)
        shared, keep = restrict_to_shared(predictor.labels, rows["emotion"])
        rows, proba = rows[keep].reset_index(drop=True), proba[keep]
    else:
        speaker_meta = {"speaker_norm": "none", "transductive": False}
        shared, keep = restrict_to_shared(predictor.labels, rows["emotion"])
        rows = rows[keep].reset_index(drop=True)
        ok, proba, failures = predictor.predict_files(list(rows["path"]))
        rows = rows.set_index("path").loc[ok].reset_index()
    for _path, message in failures:
        print(f"warning: skipped {message}")
    preds = predictions_frame(rows, shared.proba(proba), list(shared.shared))
    metrics, details = evaluate_predictions(preds, labels=list(shared.shared),
                                            bootstrap=bootstrap, seed=seed)
    metrics = {"model": predictor.card["model"], "protocol": f"external:{corpus}",
               "model_dir": str(model_dir),
               "n_unknown_emotion": sum(shared.dropped_test_emotions.values()),
               "n_unreadable": len(failures)} | speaker_meta | metrics | shared.to_metrics()
    with replacing_allowed(force):  # checked above: files that appeared since are kept
        write_evaluation(out_dir, metrics, details, preds, checked=True)
    return metrics


def _speaker_normalised_proba(predictor, rows: pd.DataFrame):
    """A ``*_spk`` model on a corpus folder, transductively as in the pipeline.

    Features of every clip the parser found are extracted with the model's feature
    definition; each speaker (``corpus:speaker``) is z-scored with the statistics of all
    of that speaker's readable clips (also those of emotions the model does not know: no
    label is used), then classified. Returns ``(rows, proba, failures, metadata)`` with
    the readable rows in order.
    """
    from ser.features.speaker_norm import normalization_metadata
    from ser.predict.inference import features_for_files
    from ser.predict.speaker_profile import MIN_SPEAKER_CLIPS, stats_by_speaker
    from ser.splits.protocols import speaker_groups

    params = predictor.card["feature_params"]
    ok, seqs, summaries, failures = features_for_files(list(rows["path"]), params)
    rows = rows.set_index("path").loc[ok].reset_index()
    speakers = speaker_groups(rows).astype(str).to_numpy()
    counts = pd.Series(speakers).value_counts().sort_index()
    if (counts < MIN_SPEAKER_CLIPS).any():
        few = ", ".join(f"{k} ({v})" for k, v in counts[counts < MIN_SPEAKER_CLIPS].items())
        from ser.errors import SerError

        raise SerError(f"speaker-normalised model: speaker(s) {few} have fewer than "
                       f"{MIN_SPEAKER_CLIPS} readable clips for their statistics; remove them "
                       "or use a plain model")
    stats = stats_by_speaker(speakers, seqs, summaries, representation=predictor.representation,
                             feature_params=params)
    proba = np.empty((len(rows), len(predictor.labels)))
    for spk, st in stats.items():
        idx = np.flatnonzero(speakers == spk)
        proba[idx] = predictor.proba_from_features(
            [seqs[i] for i in idx] if predictor.is_sequence_model else None,
            summaries[idx] if not predictor.is_sequence_model else None, speaker=st)
    meta = normalization_metadata("speaker") | {
        "speaker_norm_note": (
            "each speaker the corpus parser found z-scored with the mean/std of all of that "
            "speaker's readable clips in the folder (transductive: the test clips' own "
            "features, no labels)"),
        "speaker_clips": {str(k): int(v) for k, v in counts.items()}}
    print(f"speaker normalisation: each of the {len(counts)} speakers z-scored with their own "
          f"clips ({int(counts.min())}-{int(counts.max())} each; transductive, as in the "
          "pipeline)")
    return rows, proba, failures, meta


def register(subparsers) -> None:
    """``ser evaluate``: test a trained model on another corpus folder."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate a trained model on a corpus folder it never saw",
        description=evaluate_folder.__doc__)
    p.add_argument("--model", required=True, metavar="DIR", help="trained model folder")
    p.add_argument("--corpus", required=True, help="corpus parser: tess, ravdess, cremad, "
                   "savee, emodb or custom (your own folder-per-label or CSV/TSV manifest)")
    p.add_argument("--root", required=True, metavar="PATH",
                   help="folder with the recordings (custom: also a .csv/.tsv manifest)")
    p.add_argument("--out", metavar="DIR", help="output folder (default metrics/external/"
                   "<corpus>--<model dir>, e.g. ravdess--models-speaker-svm); must be new, "
                   "empty or an earlier output of ser evaluate unless --force")
    p.add_argument("--force", action="store_true",
                   help="write into an --out holding other files: they are kept, and a name "
                        "clash with a file ser evaluate did not write is refused")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% CIs")
    p.set_defaults(func=_evaluate_command)


def _evaluate_command(args) -> int:
    model_dir = Path(args.model)
    out = Path(args.out) if args.out else default_external_out(model_dir, args.corpus)
    m = evaluate_folder(model_dir, args.corpus, Path(args.root), out_dir=out,
                        bootstrap=args.bootstrap, force=args.force)
    ci = m["ci95"].get("uar", [float("nan")] * 2)
    dropped = ", ".join(f"{e} {n}" for e, n in m["dropped_test_emotions"].items())
    print(f"{model_dir} on {args.corpus} ({args.root}): UAR {m['uar']:.3f} "
          f"[{ci[0]:.3f}, {ci[1]:.3f}], accuracy {m['accuracy']:.3f}, F1 {m['f1_macro']:.3f} "
          f"on {m['n_test']} clips (chance {m['chance_uar']:.3f}) -> {out}")
    print(f"  scored on the {len(m['restricted_to'])} emotions both sides share: "
          f"{', '.join(m['restricted_to'])}")
    print(f"  test clips left out (emotion unknown to the model): "
          f"{m['n_unknown_emotion']}{f' ({dropped})' if dropped else ''}")
    print(f"  model classes the corpus lacks, never answered: "
          f"{', '.join(m['excluded_model_classes']) or 'none'}")
    return 0


def speaker_cv_metrics(predictions: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pooled and per-speaker UAR of speaker-cross-validated predictions.

    Parameters
    ----------
    predictions
        One row per clip of every test fold: ``speaker``, ``actual``,
        ``predicted`` (and ``corpus``: speakers are keyed ``corpus:speaker``
        when present; ``fold`` is carried into the table when present).

    Returns
    -------
    summary
        ``pooled_uar`` (UAR over all clips at once), ``mean_speaker_uar``,
        ``sd_speaker_uar`` (sample sd, ``ddof=1``; 0 for one speaker),
        ``min_speaker_uar``, ``max_speaker_uar``, ``pooled_accuracy``,
        ``n_clips``, ``n_speakers``.
    per_speaker
        One row per speaker: ``speaker``, (``fold``), ``n_clips``, ``uar``,
        ``accuracy``, sorted by speaker.
    """
    missing = {"speaker", "actual", "predicted"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions lack column(s) {', '.join(sorted(missing))}")
    df = predictions.reset_index(drop=True)
    key = df["speaker"].astype(str)
    if "corpus" in df and df["corpus"].nunique() > 1:
        key = df["corpus"].astype(str) + ":" + key
    rows = []
    for spk, g in df.groupby(key, sort=True):
        m = summary_metrics(g["actual"].to_numpy(), g["predicted"].to_numpy())
        row: dict[str, Any] = {"speaker": spk}
        if "fold" in g:
            row["fold"] = int(g["fold"].iloc[0])
        rows.append(row | {"n_clips": int(len(g)), "uar": m["uar"], "accuracy": m["accuracy"]})
    per_speaker = pd.DataFrame(rows)
    pooled = summary_metrics(df["actual"].to_numpy(), df["predicted"].to_numpy())
    uars = per_speaker["uar"].to_numpy(dtype=float)
    summary = {
        "pooled_uar": pooled["uar"],
        "pooled_accuracy": pooled["accuracy"],
        "mean_speaker_uar": round(float(uars.mean()), 4),
        "sd_speaker_uar": round(float(uars.std(ddof=1)) if len(uars) > 1 else 0.0, 4),
        "min_speaker_uar": round(float(uars.min()), 4),
        "max_speaker_uar": round(float(uars.max()), 4),
        "n_clips": int(len(df)),
        "n_speakers": int(len(uars)),
    }
    return summary, per_speaker
