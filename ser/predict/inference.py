"""Classifying clips with a trained model folder (pipeline evaluation and predict.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import ConfigError, SerError
from ser.layout import METRICS_ROOT, MODELS_ROOT


@dataclass
class Predictor:
    """A loaded model with its card; turns features or audio files into probabilities."""

    model_dir: Path
    model: Any = field(repr=False)
    card: dict[str, Any]
    #: The speaker's statistics a speaker-normalised (``*_spk``) model needs
    #: (:mod:`ser.predict.speaker_profile`); set with :meth:`use_speaker`.
    speaker: Any = None

    @classmethod
    def load(cls, model_dir: str | Path) -> Predictor:
        """Load safely (see :func:`ser.models.store.load_model`).

        Parameters
        ----------
        model_dir : str or Path
            The model folder.
        """
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
    def speaker_normalised(self) -> bool:
        """Whether the model was trained on speaker-normalised (``*_spk``) features."""
        return bool(self.card.get("transductive"))

    @property
    def representation(self) -> str:
        """What the model reads: ``frames`` (sequence models) or ``summary`` vectors."""
        return "frames" if self.is_sequence_model else "summary"

    @property
    def n_inputs(self) -> int | None:
        """Features per clip (summary) or per frame (sequence models), if known."""
        if self.is_sequence_model:
            shape = getattr(self.model, "input_shape", None)
            return int(shape[-1]) if shape and shape[-1] else None
        return len(self.card["feature_columns"])

    def use_speaker(self, stats) -> None:
        """Classify with this speaker's statistics
        (:class:`ser.predict.speaker_profile.SpeakerStats`),
        shrunk toward the training speakers' (:meth:`adapted`)."""
        if stats is not None and not self.speaker_normalised:
            raise SerError(f"{self.model_dir}: not speaker-normalised; speaker statistics "
                           "do not apply to it")
        self.speaker = self.adapted(stats)

    def adapted(self, stats):
        """A new speaker's statistics from enrolment clips as this model uses them: shrunk
        toward its training speakers' (card ``speaker_prior``; summary models), else as
        they are (see :mod:`ser.predict.speaker_profile`)."""
        prior = self.card.get("speaker_prior")
        if stats is None or not prior or self.is_sequence_model:
            return stats
        return stats.shrunk(prior)

    def missing_speaker(self, *, recording_option: bool = False) -> SerError:
        """The one-line error of a ``*_spk`` model used without speaker statistics."""
        extra = (", or --speaker-from-recording (the recording itself, one speaker)"
                 if recording_option else "")
        return SerError(f"{self.model_dir}: speaker-normalised model "
                        f"({self.card.get('feature_set')}) needs the speaker's statistics: "
                        "pass --speaker-clips DIR (other recordings of the same speaker) or "
                        f"--speaker-profile FILE (from `ser speaker enrol`){extra}")

    def _normalised(self, seqs, summaries, speaker):
        """The features as the model was trained on them: a ``*_spk`` model's z-scored
        with the speaker's statistics (``speaker``, else :attr:`speaker`)."""
        if not self.speaker_normalised:
            return seqs, summaries
        speaker = speaker if speaker is not None else self.speaker
        if speaker is None:
            raise self.missing_speaker()
        if self.is_sequence_model:
            return speaker.apply_frames(seqs), summaries
        return seqs, speaker.apply_summary(summaries)

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

    def proba_from_features(self, seqs: list[np.ndarray], summaries: np.ndarray, *,
                            speaker=None) -> np.ndarray:
        """Probabilities from whichever representation this model uses, extracted as the
        feature definition gives them (a ``*_spk`` model normalises them with ``speaker``
        or :attr:`speaker`).

        Parameters
        ----------
        seqs : list of numpy.ndarray
            Per-clip frame sequences (sequence models).
        summaries : numpy.ndarray
            One summary row per clip (classical models).
        speaker : optional
            The speaker's statistics (:mod:`ser.predict.speaker_profile`).

        Returns
        -------
        numpy.ndarray
            ``(clips, labels)`` probabilities in :attr:`labels` order.
        """
        seqs, summaries = self._normalised(seqs, summaries, speaker)
        if self.is_sequence_model:
            return self.proba_from_sequences(seqs)
        return self.proba_from_summaries(summaries)

    def proba_from_signal(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Probabilities, shape ``(len(labels),)``, for mono samples ``y`` at rate ``sr``.

        Features are computed in memory with the model's own feature set and
        parameters (:func:`features_of_signal`: resampled to their rate, then the
        set's extractor), as :meth:`features_for_files` does after decoding a file.
        Used for segments of long recordings (:mod:`ser.predict.timeline`).

        Raises
        ------
        FeatureError
            Nothing left of the segment after trimming (the timeline skips it).
        ConfigError
            The model cannot classify single recordings (never a skipped segment).
        """
        seq, summary = self.signal_features(y, sr)
        summaries = summary[None, :] if summary is not None else None
        return self.proba_from_features([seq], summaries)[0]

    def signal_features(self, y: np.ndarray, sr: int
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(sequence, summary)`` of mono samples ``y`` at rate ``sr``, not normalised
        (:func:`features_of_signal` with the model's feature parameters)."""
        return features_of_signal(y, sr, self.card["feature_params"])

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

        Parameters
        ----------
        paths : list of str or Path
            Audio files.

        Returns
        -------
        tuple
            ``(ok_paths, seqs, summaries, failures)`` where ``failures`` is a list of
            ``(path, message)`` for files that could not be read.
        """
        if self.speaker_normalised and self.speaker is None:
            raise self.missing_speaker()
        return features_for_files(paths, self.card["feature_params"])

    def predict_files(self, paths: list[str | Path], *, prefetched: FeaturePrefetch | None = None):
        """``(ok_paths, proba, failures)`` for audio files (their features from
        ``prefetched`` when it extracted them with this model's parameters).

        Parameters
        ----------
        paths : list of str or Path
            Audio files.
        prefetched : FeaturePrefetch, optional
            Features extracted while the model loaded.
        """
        features = prefetched.result(self.card) if prefetched is not None else None
        ok, seqs, summaries, failures = features or self.features_for_files(paths)
        if not ok:
            return ok, np.empty((0, len(self.labels))), failures
        return ok, self.proba_from_features(seqs, summaries), failures


def features_for_files(paths: list[str | Path], feature_params: dict[str, Any]):
    """``(ok_paths, seqs, summaries, failures)`` of audio files for a model whose card holds
    ``feature_params`` (any feature set); see :meth:`Predictor.features_for_files`.

    Parameters
    ----------
    paths : list of str or Path
        Audio files.
    feature_params : dict
        The card's ``feature_params`` (the set's fingerprint: its decoding and settings).
    """
    if feature_params.get("feature_set") == "byols":  # the encoder batches the files
        from ser.features.byols import embeddings_from_files

        ok, emb, failures = embeddings_from_files(paths, fingerprint=feature_params)
        return ok, [None] * len(ok), (emb if ok else np.empty((0, 0))), failures
    ok, seqs, summaries, failures = [], [], [], []
    for path in paths:
        try:
            seq, summary = _features_of_set(path, params=feature_params)
        except ConfigError:
            raise
        except SerError as exc:
            failures.append((str(path), str(exc)))
            continue
        ok.append(str(path))
        seqs.append(seq)
        summaries.append(summary)
    arr = np.vstack(summaries) if summaries and summaries[0] is not None else np.empty((0, 0))
    return ok, seqs, arr, failures


def signal_params(feature_params: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings (``mfcc:`` fingerprint) inside a card's ``feature_params``."""
    if feature_params.get("feature_set", "mfcc") == "mfcc":
        return feature_params
    return feature_params["signal"]


def _features_of_set(path: str | Path, *, params: dict[str, Any]):
    """``(sequence, summary)`` of one file: decoded as the extraction stage decodes it (at
    most :func:`ser.features.mfcc.read_seconds`, so memory is flat in the file's length),
    then :func:`features_of_signal`."""
    from ser.audio import load_audio
    from ser.features.mfcc import FeatureError, FeatureParams, read_seconds

    fp = FeatureParams.from_mapping(signal_params(params))
    y, sr = load_audio(path, sr=fp.sample_rate, max_seconds=read_seconds(fp))
    try:
        return features_of_signal(y, sr, params)
    except FeatureError as exc:
        raise FeatureError(exc.reason, path) from None


def features_of_signal(y: np.ndarray, sr: int, feature_params: dict[str, Any]
                       ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(sequence, summary)`` of mono samples for a model's ``feature_params`` (any
    feature set of :data:`ser.features.sets.FEATURE_SETS`; ``None`` for the part a set
    does not have), resampled to the set's rate first.

    Raises
    ------
    ConfigError
        A feature set this code cannot compute for single recordings.
    FeatureError
        Nothing left after trimming.
    """
    from ser.features.mfcc import FeatureParams

    name = feature_params.get("feature_set", "mfcc")
    fp = FeatureParams.from_mapping(signal_params(feature_params))
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr != fp.sample_rate:
        import librosa

        y = librosa.resample(y, orig_sr=sr, target_sr=fp.sample_rate, res_type="soxr_hq")
        sr = fp.sample_rate
    from ser.features.sets import FEATURE_SETS

    spec = FEATURE_SETS.get(name)
    compute = spec.signal_function() if spec is not None else None
    if compute is not None:
        return compute(y, sr, fp=fp, feature_params=feature_params)
    from ser.features.summaries import SUMMARY_VECTORS, signal_feature_vector

    if name in SUMMARY_VECTORS and name != "seed":  # a benchmark's vector (compare)
        return None, signal_feature_vector(name, y, sr, params=fp)[0]
    raise ConfigError(f"feature set {name!r} of this model cannot classify recordings with "
                      "this version of the project; retrain with a known feature set")


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
    Before forking, this process verifies the whole folder against ``SHA256SUMS``, the
    card against its schema and against the copy of its model-deciding fields inside
    the model file (:func:`ser.models.store.read_card`,
    :func:`~ser.models.store.check_embedded_card`: hashing and one small zip member, no
    model load), so an edited card's parameters are never used; on any problem there is
    no prefetch and :func:`~ser.models.store.load_model` reports it. The child reads only
    the feature parameters (numbers; no code from the folder runs); :meth:`result` hands
    its features over only if the card that ``load_model`` then verified holds the same
    parameters, and returns ``None`` (extract again, in this process) on any difference
    or failure.
    """

    def __init__(self, model_dir: str | Path, paths: list[str | Path]) -> None:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        from ser.models.store import check_embedded_card, read_card

        self._future = None
        self._pool = None
        try:
            card = read_card(model_dir)
            check_embedded_card(Path(model_dir), card)
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

    def close(self, *, kill: bool = False) -> None:
        """Shut the child down; ``kill``: stop it mid-extraction (the model was refused)."""
        if self._pool is not None:
            if kill:
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.terminate()
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


def default_model_protocols() -> tuple[str, ...]:
    """Protocols whose metrics rank models for predict.py's default choice, in order: the
    speaker-disjoint ones in the protocol registry's order
    (:data:`ser.splits.protocols.SPEAKER_DISJOINT`; a random split's UAR flatters models
    that learnt the voices)."""
    from ser.splits.protocols import SPEAKER_DISJOINT

    return SPEAKER_DISJOINT


def default_model_dir(models_root: str | Path = MODELS_ROOT,
                      metrics_root: str | Path = METRICS_ROOT, *,
                      speaker_normalised: bool = False) -> Path:
    """The trained model with the best speaker-independent UAR that can be used.

    Protocols are tried in :func:`default_model_protocols` order; the first with a usable
    model wins (UARs of different protocols are not compared). ``speaker_normalised``:
    the caller has the speaker's statistics (clips or a profile), so only speaker-normalised
    (``*_spk``, transductive) models are candidates; otherwise only plain ones, which need
    nothing but the recording. The random split's metrics are never used.

    Parameters
    ----------
    models_root, metrics_root : str or Path
        The pipeline's model and metrics folders.
    speaker_normalised : bool
        See above.

    Returns
    -------
    Path
        The model folder.

    Raises
    ------
    SerError
        No usable model was evaluated under a speaker-independent protocol.
    """
    import json

    from ser.layout import run_dir, run_key, run_metrics_files

    for protocol in default_model_protocols():
        best: tuple[float, Path] | None = None
        for metrics in run_metrics_files(metrics_root, protocol):
            model_dir = run_dir(models_root, *run_key(metrics.parent, metrics_root))
            m = json.loads(metrics.read_text())
            uar = m.get("uar")
            if uar is not None and bool(m.get("transductive")) is speaker_normalised and \
                    (model_dir / "card.json").is_file():
                if best is None or uar > best[0]:
                    best = (uar, model_dir)
        if best is not None:
            return best[1]
    kind = "speaker-normalised (*_spk)" if speaker_normalised else "plain (not *_spk)"
    hint = ("train a *_spk feature set (train.feature_sets in params.yaml) or leave out the "
            "speaker options" if speaker_normalised
            else "run the pipeline first (make demo)")
    raise SerError(f"no {kind} model evaluated under a speaker-independent protocol "
                   f"({', '.join(default_model_protocols())}) under {models_root}/ and "
                   f"{metrics_root}/; {hint} or pass --model DIR")
