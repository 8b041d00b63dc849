"""Speaker adaptation outside the pipeline: one speaker's statistics for a ``*_spk`` model.

A speaker-normalised model (feature sets ``<base>_spk``, :mod:`ser.features.sets`) was
trained on features z-scored with every speaker's own mean and standard deviation
(:mod:`ser.features.speaker_norm`). To classify a new recording it needs the same statistics of the
new recording's speaker. They come from one of:

* ``--speaker-clips DIR``: other recordings of the same speaker; their features are
  extracted with the model's own feature definition and their mean/std computed
  (:func:`stats_from_clips`);
* ``--speaker-profile FILE``: statistics saved earlier (``ser speaker enrol`` or
  ``predict.py --save-speaker-profile``), a plain JSON document keyed to the feature
  definition's fingerprint (:func:`load_profile`; reading it runs no code, and a profile
  of another feature definition is refused);
* the recording itself (``ser timeline --speaker-from-recording``: one speaker
  assumed), once it has :data:`MIN_RECORDING_SEGMENTS` classified segments.

The statistics are those of the representation the model reads: per-clip summary
vectors for classical models, frames of all clips for sequence models (as
:func:`ser.features.logmel.speaker_standardise` does in the pipeline).

Few clips: shrinkage toward the training speakers
-------------------------------------------------
A mean and standard deviation from a handful of clips are noisy (the standard deviation
of a feature from 3 clips can be tiny and blow that feature up). A model card of a
``*_spk`` classical model holds the training speakers' statistics (``speaker_prior``:
mean and spread of their means, their typical within-speaker variance; training side
only). When a model has it, a new speaker's statistics are shrunk toward them
(:func:`ser.features.speaker_norm.shrunk_statistics`): the mean is the posterior mean of a Gaussian
prior over speaker means, the variance mixes in
:data:`ser.features.speaker_norm.STD_PRIOR_CLIPS` pseudo-clips of the typical within-speaker
variance. With many clips both tend to the clips' own. ``ser evaluate`` does not shrink
(it reproduces the pipeline's transductive normalisation); sequence models and models
trained before the prior was stored use the clips' statistics as they are.

Minimums and floors
-------------------
At least :data:`MIN_SPEAKER_CLIPS` clips (3) are required: from one clip every
standard deviation is zero, from two it is the half-distance of two points. A
standard deviation below the pipeline's floor (``1e-8`` for summary features,
``1e-6`` for frames: a feature constant for this speaker) is replaced by 1, so the
feature is centred but not blown up - exactly what the pipeline does for its
speakers. Fewer than :data:`FEW_CLIPS` clips give a note: such statistics are noisy
(``benchmarks/enrolment_bench.py`` measures how much UAR each number of clips keeps).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SerError

#: Fewest clips (or segments) whose statistics a speaker-normalised model accepts.
MIN_SPEAKER_CLIPS = 3
#: Below this many clips the statistics are used with a note that they are noisy.
FEW_CLIPS = 10
#: Fewest classified speech segments ``--speaker-from-recording`` needs.
MIN_RECORDING_SEGMENTS = 10
#: Standard deviations below these become 1 (the pipeline's floors: ser.features.speaker_norm for
#: summary vectors, ser.features.logmel.speaker_standardise for frames).
SUMMARY_STD_FLOOR = 1e-8
FRAME_STD_FLOOR = 1e-6

PROFILE_FORMAT = "ser-speaker-profile"
PROFILE_VERSION = 1
REPRESENTATIONS = ("summary", "frames")


def feature_fingerprint(feature_params: dict[str, Any]) -> str:
    """sha256 of the feature definition (a model card's ``feature_params``, canonical JSON)."""
    return hashlib.sha256(json.dumps(feature_params, sort_keys=True, default=str)
                          .encode()).hexdigest()


@dataclass(frozen=True)
class SpeakerStats:
    """One speaker's feature mean and standard deviation, and where they came from.

    Attributes
    ----------
    mean, std
        Per feature (summary) or per coefficient (frames); ``std`` already floored.
    representation
        ``summary`` (classical models) or ``frames`` (sequence models).
    fingerprint
        :func:`feature_fingerprint` of the feature definition the features were made with.
    feature_set
        The feature definition's name (for messages).
    n_clips
        Clips (or recording segments) the statistics come from.
    source
        ``{"kind": "clips"|"profile"|"recording", "path": ..., ...}``.
    """

    mean: np.ndarray
    std: np.ndarray
    representation: str
    fingerprint: str
    feature_set: str
    n_clips: int
    source: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """How the speaker was normalised, for the console (one phrase)."""
        kind, path = self.source.get("kind"), self.source.get("path")
        if kind == "clips":
            text = f"with {self.n_clips} clips of {path}"
        elif kind == "profile":
            made = self.source.get("made_from")
            text = f"with the profile {path} ({self.n_clips} clips of {made})"
        elif kind == "recording":
            text = f"with the recording itself ({self.n_clips} segments; one speaker assumed)"
        else:
            text = f"with statistics of {self.n_clips} clips"
        shrink = self.source.get("shrunk_toward_training_speakers")
        if shrink:
            text += (", shrunk toward the statistics of its "
                     f"{shrink['n_speakers']} training speakers")
        return "speaker-normalised " + text

    def to_json(self) -> dict[str, Any]:
        """What predict.py's ``--json`` and timeline.json record about the normalisation."""
        return {"method": "per-speaker z-score", "n_clips": self.n_clips, **self.source}

    def shrunk(self, prior: dict[str, Any]) -> SpeakerStats:
        """These statistics shrunk toward the training speakers' (``prior``: a card's
        ``speaker_prior``; :func:`ser.features.speaker_norm.shrunk_statistics`); summary vectors
        only."""
        import dataclasses

        from ser.features.speaker_norm import STD_PRIOR_CLIPS, shrunk_statistics

        if self.representation != "summary":
            return self
        if len(prior.get("mean_of_means", ())) != len(self.mean):
            raise SerError(f"speaker statistics have {len(self.mean)} features but the "
                           f"model's speaker prior {len(prior.get('mean_of_means', ()))}; "
                           "enrol the speaker with this model")
        mean, std = shrunk_statistics(self.mean, self.std, self.n_clips, prior)
        source = dict(self.source) | {"shrunk_toward_training_speakers": {
            "n_speakers": int(prior.get("n_speakers", 0)), "std_prior_clips": STD_PRIOR_CLIPS}}
        return dataclasses.replace(self, mean=mean, std=std, source=source)

    def apply_summary(self, X: np.ndarray) -> np.ndarray:
        """Summary rows ``(n, features)`` z-scored with these statistics."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean):
            raise SerError(f"speaker statistics have {len(self.mean)} features but the "
                           f"clips have {X.shape[-1]}; enrol the speaker with this model")
        return (X - self.mean) / self.std

    def apply_frames(self, seqs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frame sequences ``(frames, coeffs)`` standardised with these statistics."""
        return [((np.asarray(s, np.float64) - self.mean) / self.std).astype(np.float32)
                for s in seqs]


# --------------------------------------------------------------------------- statistics


def summary_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and floored std (``ddof=0``) of summary rows, as the pipeline computes them."""
    from ser.features.speaker_norm import speaker_statistics

    X = np.asarray(X, dtype=np.float64)
    ((mean, std),) = speaker_statistics(X, np.zeros(len(X), dtype=int),
                                        min_std=SUMMARY_STD_FLOOR).values()
    return mean, std


def frame_statistics(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and floored std of all frames of ``seqs``, as the pipeline computes them."""
    from ser.features.logmel import frame_statistics as pipeline_frame_statistics

    return pipeline_frame_statistics(seqs, eps=FRAME_STD_FLOOR)


def check_clip_count(n: int, *, what: str, minimum: int = MIN_SPEAKER_CLIPS) -> None:
    """Refuse fewer than ``minimum`` clips in one line."""
    if n < minimum:
        raise SerError(f"{what}: {n} usable clip(s) of the speaker; a speaker's statistics "
                       f"need at least {minimum} (from one clip every standard deviation is "
                       "zero) - add recordings of the same speaker")


def stats_from_features(seqs: Sequence[np.ndarray] | None, summaries: np.ndarray, *,
                        representation: str, feature_params: dict[str, Any],
                        source: dict[str, Any], minimum: int = MIN_SPEAKER_CLIPS,
                        ) -> SpeakerStats:
    """:class:`SpeakerStats` of one speaker's extracted features (raw, not normalised)."""
    n = len(seqs) if representation == "frames" else len(summaries)
    check_clip_count(n, what=str(source.get("path", "speaker clips")), minimum=minimum)
    if representation == "frames":
        mean, std = frame_statistics(seqs)
    else:
        mean, std = summary_statistics(summaries)
    return SpeakerStats(mean, std, representation, feature_fingerprint(feature_params),
                        str(feature_params.get("feature_set", "mfcc")), n, dict(source))


def stats_from_clips(clips_dir: str | Path, predictor) -> SpeakerStats:
    """Statistics of the audio files under ``clips_dir`` (recursively), extracted with the
    feature definition of ``predictor`` (:class:`ser.predict.inference.Predictor`).

    Parameters
    ----------
    clips_dir : str or Path
        One speaker's recordings (``--speaker-clips``).
    predictor : Predictor
        The speaker-normalised model they are for.
    """
    from ser.audio import collect_files
    from ser.predict.inference import features_for_files

    clips_dir = Path(clips_dir)
    if not clips_dir.is_dir():
        raise SerError(f"--speaker-clips {clips_dir}: not a folder; give a folder of other "
                       "recordings of the same speaker")
    files = collect_files([str(clips_dir)])
    params = predictor.card["feature_params"]
    ok, seqs, summaries, failures = features_for_files(files, params)
    for path, message in failures:
        print(f"warning: speaker clip skipped: {message or path}", flush=True)
    return stats_from_features(seqs, summaries, representation=predictor.representation,
                               feature_params=params,
                               source={"kind": "clips", "path": str(clips_dir),
                                       "n_files": len(files)})


def stats_by_speaker(speakers: Sequence[str], seqs: Sequence[np.ndarray] | None,
                     summaries: np.ndarray, *, representation: str,
                     feature_params: dict[str, Any]) -> dict[str, SpeakerStats]:
    """Per-speaker statistics of a batch of clips (transductive evaluation); a speaker with
    fewer than :data:`MIN_SPEAKER_CLIPS` clips is refused.

    Parameters
    ----------
    speakers : sequence of str
        Each clip's speaker.
    seqs : sequence of numpy.ndarray or None
        Frame sequences (sequence models), else ``None``.
    summaries : numpy.ndarray
        Summary rows (classical models).
    representation : str
        What the model reads (``summary`` or ``frames``: :attr:`Predictor.representation`).
    feature_params : dict
        The model card's feature fingerprint.
    """
    speakers = np.asarray([str(s) for s in speakers])
    out = {}
    for spk in np.unique(speakers):
        idx = np.flatnonzero(speakers == spk)
        out[str(spk)] = stats_from_features(
            [seqs[i] for i in idx] if representation == "frames" else None,
            np.asarray(summaries)[idx] if representation == "summary" else np.empty((0, 0)),
            representation=representation, feature_params=feature_params,
            source={"kind": "speaker's own clips", "path": f"speaker {spk}"})
    return out


# --------------------------------------------------------------------------- profiles


def profile_document(stats: SpeakerStats, *, feature_params: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a speaker profile (numbers and strings only)."""
    return {"format": PROFILE_FORMAT, "version": PROFILE_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "feature_set": stats.feature_set, "feature_fingerprint": stats.fingerprint,
            "feature_params": feature_params, "representation": stats.representation,
            "n_clips": stats.n_clips, "made_from": stats.source.get("path"),
            "std_floor": SUMMARY_STD_FLOOR if stats.representation == "summary"
            else FRAME_STD_FLOOR,
            "mean": [float(v) for v in stats.mean], "std": [float(v) for v in stats.std]}


def save_profile(path: str | Path, stats: SpeakerStats, *,
                 feature_params: dict[str, Any]) -> Path:
    """Write a speaker profile (JSON) atomically; refuse to replace an existing file.

    Parameters
    ----------
    path : str or Path
        The profile file.
    stats : SpeakerStats
        The speaker's statistics (:func:`stats_from_clips`).
    feature_params : dict
        The model card's feature fingerprint, stored so the profile is only used with
        features made the same way.
    """
    from ser.outputs import atomic_path

    path = Path(path)
    if path.exists():
        raise SerError(f"{path}: exists; speaker profiles are never overwritten - choose a new "
                       "file name")
    if path.suffix.lower() != ".json":
        raise SerError(f"{path}: a speaker profile is JSON; name it *.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(profile_document(stats, feature_params=feature_params),
                                  indent=1) + "\n")
    return path


def load_profile(path: str | Path, predictor) -> SpeakerStats:
    """Read a speaker profile for ``predictor``'s model (JSON only: no code runs).

    Refused in one line: not a profile, unreadable numbers, another feature definition
    (fingerprint), another representation, or a feature count the model does not read.

    Parameters
    ----------
    path : str or Path
        The profile (``--speaker-profile``, from ``ser speaker enrol``).
    predictor : Predictor
        The model it must fit.
    """
    path = Path(path)
    where = f"--speaker-profile {path}"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise SerError(f"{where}: file not found; write one with `ser speaker enrol`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerError(f"{where}: not a JSON speaker profile ({type(exc).__name__}); "
                       "write one with `ser speaker enrol`") from None
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
        raise SerError(f"{where}: not a speaker profile (no format {PROFILE_FORMAT!r}); write "
                       "one with `ser speaker enrol`")
    if doc.get("version") != PROFILE_VERSION:
        raise SerError(f"{where}: profile version {doc.get('version')!r} is not "
                       f"{PROFILE_VERSION}; enrol the speaker again")
    params = predictor.card["feature_params"]
    want = feature_fingerprint(params)
    if doc.get("feature_fingerprint") != want:
        raise SerError(f"{where}: made for another feature definition "
                       f"({doc.get('feature_set')}, {str(doc.get('feature_fingerprint'))[:12]}) "
                       f"than the model's ({params.get('feature_set', 'mfcc')}, {want[:12]}); "
                       f"enrol the speaker again with --model {predictor.model_dir}")
    if doc.get("representation") != predictor.representation:
        raise SerError(f"{where}: holds {doc.get('representation')} statistics but the model "
                       f"reads {predictor.representation}; enrol the speaker with this model")
    try:
        mean = np.asarray(doc["mean"], dtype=np.float64)
        std = np.asarray(doc["std"], dtype=np.float64)
        n_clips = int(doc["n_clips"])
    except (KeyError, TypeError, ValueError):
        raise SerError(f"{where}: mean, std or n_clips missing or not numbers; enrol the "
                       "speaker again") from None
    if mean.ndim != 1 or mean.shape != std.shape or not len(mean) \
            or not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
        raise SerError(f"{where}: mean/std must be equal-length lists of finite numbers "
                       "(std > 0); enrol the speaker again")
    expected = predictor.n_inputs
    if expected is not None and len(mean) != expected:
        raise SerError(f"{where}: {len(mean)} features but the model reads {expected}; enrol "
                       "the speaker with this model")
    check_clip_count(n_clips, what=where)
    return SpeakerStats(mean, std, doc["representation"], want, str(doc.get("feature_set")),
                        n_clips, {"kind": "profile", "path": str(path),
                                  "made_from": doc.get("made_from")})


def speaker_stats_for(predictor, *, clips: str | Path | None = None,
                      profile: str | Path | None = None) -> SpeakerStats | None:
    """The statistics the options ask for (``None`` for neither); a plain (not
    speaker-normalised) model given either is refused in one line.

    Parameters
    ----------
    predictor : Predictor
        The loaded model.
    clips : str or Path, optional
        ``--speaker-clips``: a folder of the speaker's recordings.
    profile : str or Path, optional
        ``--speaker-profile``: a saved profile.
    """
    if clips is None and profile is None:
        return None
    if clips is not None and profile is not None:
        raise SerError("--speaker-clips and --speaker-profile: pass one of them, not both")
    if not predictor.speaker_normalised:
        option = "--speaker-clips" if clips is not None else "--speaker-profile"
        raise SerError(f"{option}: {predictor.model_dir} is not speaker-normalised (feature "
                       f"set {predictor.card.get('feature_set')}); leave the option out or "
                       "use a *_spk model")
    stats = (stats_from_clips(clips, predictor) if clips is not None
             else load_profile(profile, predictor))
    return stats


def few_clips_note(stats: SpeakerStats) -> str | None:
    """A note when the statistics come from fewer than :data:`FEW_CLIPS` clips."""
    if stats.n_clips < FEW_CLIPS:
        return (f"speaker statistics from only {stats.n_clips} clips are noisy; {FEW_CLIPS} or "
                "more are advised (README: enrolment curve)")
    return None

