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

from ser.layout import (
    DETAILS_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    PREDICTIONS_FILE,
)
from ser.outputs import atomic_path
from ser.predict.predictions import predict_rows, predictions_frame


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
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / DETAILS_FILE).write_text(json.dumps(details, indent=2) + "\n")
        predictions.to_csv(tmp / PREDICTIONS_FILE, index=False, float_format="%.5f")
        for name, text in (extra_text or {}).items():
            (tmp / name).write_text(text)


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
