"""Classifying clips with a trained model folder (pipeline evaluation and predict.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import SerError


@dataclass
class Predictor:
    """A loaded model with its card; turns features or audio files into probabilities."""

    model_dir: Path
    model: Any = field(repr=False)
    card: dict[str, Any]

    @classmethod
    def load(cls, model_dir: str | Path) -> Predictor:
        """Load safely (see :func:`ser.models.store.load_model`)."""
        from ser.models.store import load_model

        model, card = load_model(model_dir)
        predictor = cls(Path(model_dir), model, card)
        predictor.check_card()
        return predictor

    def check_card(self) -> None:
        """Refuse a model whose card's feature parameters do not fit the model or this code.

        The card's parameters are what new recordings are extracted with, so
        they must describe today's feature definition and give the number of
        inputs the model was fitted on.
        """
        from ser.features.mfcc import FeatureParams, check_feature_params, summary_names

        where = self.model_dir / "card.json"
        stored = self.card.get("feature_params")
        if not stored:
            raise SerError(f"{where}: has no feature_params; retrain the model")
        if stored.get("feature_set", "mfcc") != "mfcc":
            # eGeMAPS / MFCC statistics / log-mel sets (ser.features.sets): inputs by name.
            if not self.is_sequence_model:
                expected = int(getattr(self.model, "n_features_in_",
                                       len(self.card["feature_columns"])))
                if expected != len(self.card["feature_columns"]):
                    raise SerError(f"{where}: the card lists {len(self.card['feature_columns'])}"
                                   f" inputs but the model was trained on {expected}; retrain")
            return
        try:
            fp = FeatureParams.from_mapping(stored)
            # The stored fingerprint must be what this code's definition gives for it.
            check_feature_params(stored, fp)
        except SerError as exc:
            raise SerError(f"{where}: the model was trained with another feature definition "
                           f"({exc}); retrain it with this version") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise SerError(f"{where}: unusable feature_params ({exc}); retrain the model") from None
        if self.is_sequence_model:
            expected, produced = int(self.model.input_shape[-1]), fp.n_coeffs
        else:
            expected = int(getattr(self.model, "n_features_in_", len(self.card["feature_columns"])))
            produced = len(summary_names(fp.n_coeffs, deltas=fp.deltas))
        if expected != produced:
            raise SerError(f"{where}: feature_params give {produced} inputs per clip but the "
                           f"model was trained on {expected}; the folder mixes two trainings - "
                           "retrain it")

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def is_sequence_model(self) -> bool:
        return self.card["format"] == "keras"

    def proba_from_summaries(self, summaries: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Class probabilities ``(n, len(labels))`` from summary feature rows."""
        if isinstance(summaries, pd.DataFrame):
            summaries = summaries[self.card["feature_columns"]]
        X = np.asarray(summaries, dtype=np.float64)
        proba = self.model.predict_proba(X)
        # sklearn orders columns by classes_; the card stores that same order.
        return np.asarray(proba, dtype=np.float64)

    #: Clips padded and predicted at a time: memory follows this, not the test set.
    SEQUENCE_CHUNK = 512

    def proba_from_sequences(self, seqs: list[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(n, len(labels))`` from frame sequences (padded and
        predicted :attr:`SEQUENCE_CHUNK` clips at a time; a multiple of Keras' batch of
        32, so the batches and the results are those of one call)."""
        if "n_frames" in self.card:  # crnn, byols_ft: fixed length, scaler inside the model
            from ser.features.logmel import fix_length

            def pad(part):
                return fix_length(part, int(self.card["n_frames"]),
                                  pad=self.card.get("pad", "edge"))
        else:
            from ser.models.lstm import SequenceScaler

            pad = SequenceScaler.from_dict(self.card["scaler"]).transform
        parts = [np.asarray(self.model.predict(pad(seqs[i:i + self.SEQUENCE_CHUNK]),
                                               verbose=0), dtype=np.float64)
                 for i in range(0, len(seqs), self.SEQUENCE_CHUNK)]
        return np.concatenate(parts) if parts else np.empty((0, len(self.labels)))

    def proba_from_features(self, seqs: list[np.ndarray], summaries: np.ndarray) -> np.ndarray:
        """Probabilities from whichever representation this model uses."""
        if self.is_sequence_model:
            return self.proba_from_sequences(seqs)
        return self.proba_from_summaries(summaries)

    def proba_from_signal(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Probabilities, shape ``(len(labels),)``, for mono samples ``y`` at rate ``sr``.

        Features are computed in memory with the model's own feature
        parameters (resampled to their rate, then
        :func:`ser.features.mfcc.mfcc_sequence` and
        :func:`~ser.features.mfcc.mfcc_summary`), as :meth:`features_for_files`
        does after decoding a file. Used for segments of long recordings
        (:mod:`ser.timeline`).
        """
        from ser.features.mfcc import FeatureParams, mfcc_sequence, mfcc_summary

        fp = FeatureParams.from_mapping(self.card["feature_params"])
        y = np.ascontiguousarray(y, dtype=np.float32)
        if sr != fp.sample_rate:
            import librosa

            y = librosa.resample(y, orig_sr=sr, target_sr=fp.sample_rate, res_type="soxr_hq")
        seq = mfcc_sequence(y, fp.sample_rate, params=fp)
        return self.proba_from_features([seq], mfcc_summary(seq)[None, :])[0]

    @property
    def display_name(self) -> str:
        """``"svm, speaker-independent, mfcc features"`` (from the card)."""
        from ser.models.store import display_name

        return display_name(self.card)

    def warnings(self) -> list[str]:
        """What a user must know before trusting this model's answers.

        Trained on the synthetic demo corpus only; library versions whose
        major.minor differ from the training run's (scikit-learn, keras, numpy).
        """
        from ser.models.store import synthetic_only, version_mismatches

        out = []
        if synthetic_only(self.card):
            names = ", ".join(c["name"] for c in self.card["training_corpora"])
            out.append(f"{self.model_dir} was trained on synthetic demo data only ({names}); "
                       "its answers on real recordings are not meaningful - train on real "
                       "corpora (see README) and pass --model")
        mismatches = version_mismatches(self.card)
        if mismatches:
            out.append(f"{self.model_dir} was trained with other library versions "
                       f"({'; '.join(mismatches)}); its answers may differ from the "
                       "evaluated ones - retrain it with this environment")
        return out

    def features_for_files(self, paths: list[str | Path]):
        """Extract features of audio files with the model's own feature parameters.

        Returns ``(ok_paths, seqs, summaries, failures)`` where ``failures`` is a
        list of ``(path, message)`` for files that could not be read.
        """
        if self.card.get("transductive"):
            raise SerError(f"{self.model_dir}: trained on speaker-normalised features "
                           "(transductive: it needs a batch of each speaker's clips); it "
                           "cannot classify single recordings - use a plain feature set's model")
        return features_for_files(paths, self.card["feature_params"])

    def predict_files(self, paths: list[str | Path], *, prefetched: FeaturePrefetch | None = None):
        """``(ok_paths, proba, failures)`` for audio files (their features from
        ``prefetched`` when it extracted them with this model's parameters)."""
        features = prefetched.result(self.card) if prefetched is not None else None
        ok, seqs, summaries, failures = features or self.features_for_files(paths)
        if not ok:
            return ok, np.empty((0, len(self.labels))), failures
        return ok, self.proba_from_features(seqs, summaries), failures


def features_for_files(paths: list[str | Path], feature_params: dict[str, Any]):
    """``(ok_paths, seqs, summaries, failures)`` of audio files for a model whose card holds
    ``feature_params`` (any feature set); see :meth:`Predictor.features_for_files`."""
    from ser.features import features_from_file

    extract = features_from_file
    if feature_params.get("feature_set", "mfcc") != "mfcc":
        extract = _features_of_set
    ok, seqs, summaries, failures = [], [], [], []
    for path in paths:
        try:
            seq, summary = extract(path, params=feature_params)
        except SerError as exc:
            failures.append((str(path), str(exc)))
            continue
        ok.append(str(path))
        seqs.append(seq)
        summaries.append(summary)
    arr = np.vstack(summaries) if summaries else np.empty((0, 0))
    return ok, seqs, arr, failures


def _features_of_set(path: str | Path, *, params: dict[str, Any]):
    """``(sequence, summary)`` of one file for the non-MFCC feature sets."""
    if params["feature_set"] == "logmel":
        from ser.features.logmel import logmel_from_file

        seq = logmel_from_file(path, params=params["signal"], n_mels=params["n_mels"],
                               deltas=params["deltas"])
        return seq, np.empty(0)
    if params["feature_set"] == "byols_mel":
        from ser.features.byols_mel import sequence_from_file

        return sequence_from_file(path, fingerprint=params), np.empty(0)
    if params["feature_set"] == "byols":
        from ser.features.byols import embedding_from_file

        return None, embedding_from_file(path, fingerprint=params)
    from ser.features.summaries import file_feature_vector

    vec, _ = file_feature_vector(params["feature_set"], path, params=params["signal"])
    return None, vec


def _threaded() -> bool:
    """Whether forking this process could deadlock the child: other Python threads run,
    or JAX (which runs its own threads) is loaded. ``predict.py`` forks before either."""
    import sys
    import threading

    return threading.active_count() > 1 or "jax" in sys.modules


class FeaturePrefetch:
    """The features of the files to classify, extracted in a forked process while the model
    loads in this one.

    Loading a model imports scikit-learn (or Keras) and the features import librosa;
    each takes seconds of start-up, so on two or more cores ``predict.py`` overlaps them.
    The child reads only the feature parameters from the model's ``card.json`` (numbers;
    no code from the folder runs); :meth:`result` hands its features over only if the card
    that :func:`ser.models.store.load_model` then verified holds the same parameters,
    and returns ``None`` (extract again, in this process) on any difference or failure.
    """

    def __init__(self, model_dir: str | Path, paths: list[str | Path]) -> None:
        import json
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        self._future = None
        self._pool = None
        try:
            card = json.loads((Path(model_dir) / "card.json").read_text())
            self.feature_params = dict(card["feature_params"])
            if card.get("transductive") or (os.cpu_count() or 1) < 2 or \
                    "fork" not in multiprocessing.get_all_start_methods() or _threaded():
                return
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
            self._future = self._pool.submit(features_for_files, list(paths),
                                             self.feature_params)
        except Exception:  # noqa: BLE001 - any problem: no prefetch, extract as usual
            self.close()

    def result(self, card: dict[str, Any]):
        """The prefetched features if they were made with ``card``'s parameters, else None."""
        try:
            if self._future is None or card.get("feature_params") != self.feature_params:
                return None
            return self._future.result()
        except Exception:  # noqa: BLE001 - the parent extracts again and reports properly
            return None
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._future = None


#: A top probability below this multiple of chance (1 / number of emotions) gets a
#: low-confidence note: the model cannot tell the emotions apart on that clip.
LOW_CONFIDENCE_RATIO = 1.5
#: A clip whose level (DC removed) is below this many dBFS gets a no-speech note.
NO_SPEECH_DB = -50.0


def clip_notes(path: str | Path, proba: np.ndarray, *, feature_params: dict[str, Any],
               confidence_ratio: float = LOW_CONFIDENCE_RATIO,
               no_speech_db: float = NO_SPEECH_DB) -> list[str]:
    """Warnings that belong with a prediction: no speech, low confidence, truncated file.

    Reads only what feature extraction reads (``max_seconds`` plus margin).
    """
    from ser.audio import load_audio, rms_db, wav_truncation
    from ser.features.mfcc import read_seconds

    notes = []
    try:
        y, _ = load_audio(path, max_seconds=read_seconds(feature_params))
        level = rms_db(y)
    except SerError:
        level = None
    if level is not None and level < no_speech_db:
        shown = "-inf" if level == float("-inf") else f"{level:.0f}"
        notes.append(f"no speech: the clip is silent or nearly so (level {shown} dBFS, "
                     f"below {no_speech_db:g}); the emotion is meaningless")
    chance = 1.0 / len(proba)
    top = float(np.max(proba))
    if top < confidence_ratio * chance:
        notes.append(f"low confidence: top probability {top:.2f} is below "
                     f"{confidence_ratio:g} x chance ({confidence_ratio * chance:.2f}); "
                     "the model cannot tell the emotions apart on this clip")
    truncated = wav_truncation(path)
    if truncated:
        notes.append(truncated)
    return notes


def default_model_dir(models_root: str | Path = "models",
                      metrics_root: str | Path = "metrics") -> Path:
    """The trained model with the best speaker-independent UAR (falls back to any protocol)."""
    import json

    from ser.layout import run_dir, run_key

    best: tuple[float, Path] | None = None
    for protocol in ("speaker", "cross_corpus", "random"):
        for metrics in sorted(Path(metrics_root).glob(f"{protocol}/*/*/metrics.json")):
            model_dir = run_dir(models_root, *run_key(metrics.parent, metrics_root))
            m = json.loads(metrics.read_text())
            uar = m.get("uar")
            # A speaker-normalised (transductive) model cannot classify one recording.
            if uar is not None and not m.get("transductive") and \
                    (model_dir / "card.json").is_file():
                if best is None or uar > best[0]:
                    best = (uar, model_dir)
        if best is not None:
            return best[1]
    raise SerError(f"no evaluated model under {models_root}/ and {metrics_root}/; "
                   "run the pipeline first (make demo) or pass --model DIR")
