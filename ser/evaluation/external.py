"""Evaluating a trained model on a corpus folder it never saw (``ser evaluate``).

The folder is parsed with its corpus parser, features are extracted with the model's
own definition, and the shared emotions are scored with :mod:`ser.evaluation.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.evaluation.metrics import evaluate_predictions, restrict_to_shared, write_evaluation
from ser.layout import DETAILS_FILE, METRICS_FILE, PREDICTIONS_FILE, external_metrics_dir
from ser.predict.predictions import predictions_frame

#: The files ``ser evaluate`` writes into its output folder (all it may replace there).
EXTERNAL_FILES = (METRICS_FILE, DETAILS_FILE, PREDICTIONS_FILE)


def default_external_out(model_dir: Path, corpus: str) -> Path:
    """``metrics/external/<corpus>--<model dir path with '-' for '/'>``: unique per model folder.

    ``models/speaker/svm`` and ``models/random/svm`` get different folders.
    """
    return external_metrics_dir(model_dir, corpus)


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
