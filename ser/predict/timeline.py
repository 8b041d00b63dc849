"""Emotions over time in a long recording: speech segments -> one prediction each.

The file is never loaded whole. A first pass reads it in blocks of
``window`` seconds and keeps one energy value per 20 ms frame; an
energy-based voice-activity detector turns those into speech segments
(silences shorter than ``min_silence`` bridged, bursts shorter than
``min_speech`` ignored). A segment longer than ``window`` is cut into
windows of ``window`` seconds every ``hop`` seconds; when no speech is found
(or ``vad=False``) the whole file is covered by such windows. A second pass
reads each segment (at most ``window`` seconds) and classifies it.

A speaker-normalised model (``*_spk``) needs the speaker's statistics
(:mod:`ser.predict.speaker_profile`): other recordings of the speaker (``--speaker-clips``), a saved
profile (``--speaker-profile``) or the recording itself (``--speaker-from-recording``:
one speaker assumed; every classified segment counts as one clip, at least
:data:`ser.predict.speaker_profile.MIN_RECORDING_SEGMENTS` of them, and all are classified after the
statistics are known). The outputs say which was used.

Outputs (:func:`write_timeline`): ``timeline.csv`` and ``timeline.json``
(``start``, ``end``, ``kind``, ``emotion``, ``probability`` and one
``p_<label>`` column per class) and ``timeline.png``.

Examples
--------
>>> from ser.predict.inference import Predictor                                 # doctest: +SKIP
>>> model = Predictor.load("models/speaker/mfcc/svm")                    # doctest: +SKIP
>>> frame = emotion_timeline("interview.flac", model)                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import soundfile as sf

from ser.errors import AudioError, ConfigError, SerError
from ser.features.mfcc import FeatureError
from ser.outputs import atomic_path


@dataclass(frozen=True)
class TimelineParams:
    """How a long recording is cut into segments.

    Attributes
    ----------
    window
        Longest stretch classified at once, in seconds; also the most audio
        held in memory at any time.
    hop
        Step between windows where a segment (or, without speech detection,
        the file) is longer than ``window``; ``hop < window`` overlaps them.
    vad
        Detect speech by energy; ``False`` covers the whole file with windows.
    frame
        Energy frame length in seconds.
    margin_db
        A frame is speech if its energy is this far above the noise floor
        (the 10th percentile of frame energies) ...
    floor_dbfs
        ... and above this absolute level (dB re full scale).
    min_speech
        Speech bursts shorter than this (seconds) are ignored.
    min_silence
        Pauses shorter than this (seconds) do not end a segment.
    pad
        Seconds added before and after each speech segment.
    """

    window: float = 4.0
    hop: float = 2.0
    vad: bool = True
    frame: float = 0.02
    margin_db: float = 15.0
    floor_dbfs: float = -55.0
    min_speech: float = 0.4
    min_silence: float = 0.35
    pad: float = 0.1

    def __post_init__(self) -> None:
        for name in ("window", "hop", "frame", "margin_db", "floor_dbfs", "min_speech",
                     "min_silence", "pad"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ConfigError(f"timeline: {name} ({value}) must be a finite number of "
                                  f"{'dB' if 'db' in name else 'seconds'}")
        if not 0 < self.frame < self.window:
            raise ConfigError(f"timeline: frame ({self.frame} s) must be > 0 and shorter "
                              f"than window ({self.window} s)")
        if not 0 < self.hop <= self.window:
            raise ConfigError(f"timeline: hop ({self.hop} s) must be > 0 and at most "
                              f"window ({self.window} s)")
        if min(self.min_speech, self.min_silence, self.pad, self.margin_db) < 0:
            raise ConfigError("timeline: min_speech, min_silence, pad and margin_db must be >= 0")


@dataclass(frozen=True)
class Segment:
    """A stretch of the recording to classify (seconds); ``kind`` is speech or window."""

    start: float
    end: float
    kind: str


class SignalModel(Protocol):
    """Anything that gives class probabilities for a mono signal."""

    @property
    def labels(self) -> list[str]: ...

    def proba_from_signal(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Probabilities, shape ``(len(labels),)``, for mono float32 samples ``y`` at ``sr``."""
        ...


# --------------------------------------------------------------------------- reading


def _open(path: Path) -> sf.SoundFile:
    if not path.is_file():
        raise AudioError(path, "file not found; check the path" if not path.exists()
                         else "is a folder, not an audio file")
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        detail = str(exc).split(":")[-1].strip() or type(exc).__name__
        raise AudioError(path, f"not a readable audio file ({detail}); "
                               "expected WAV/FLAC/OGG/AIFF") from None


def frame_energies(path: str | Path, *, params: TimelineParams = TimelineParams()
                   ) -> tuple[np.ndarray, int, float]:
    """Energy (dBFS) of every ``params.frame`` of the file, read ``window`` seconds at a time.

    Returns
    -------
    db : np.ndarray
        One value per complete frame (a final partial frame counts too).
    sr : int
        The file's sample rate.
    duration : float
        Length in seconds.
    """
    path = Path(path)
    with _open(path) as f:
        sr = f.samplerate
        frame_len = max(1, round(params.frame * sr))
        block = max(frame_len, int(params.window * sr) // frame_len * frame_len)
        values: list[np.ndarray] = []
        total = 0
        while True:
            data = f.read(block, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                break
            total += data.shape[0]
            mono = data.mean(axis=1)
            n = -(-mono.shape[0] // frame_len)
            padded = np.zeros(n * frame_len, dtype=np.float32)
            padded[: mono.shape[0]] = mono
            frames = padded.reshape(n, frame_len)
            lengths = np.full(n, frame_len)
            lengths[-1] = mono.shape[0] - (n - 1) * frame_len
            power = (frames.astype(np.float64) ** 2).sum(axis=1) / lengths
            values.append(10 * np.log10(np.maximum(power, 1e-12)))
            del data, mono, padded, frames
    if total == 0:
        raise AudioError(path, "holds no audio samples (0 frames)")
    return np.concatenate(values), int(sr), total / sr


def speech_segments(db: np.ndarray, *, params: TimelineParams = TimelineParams(),
                    duration: float | None = None) -> list[Segment]:
    """Energy-based voice activity: frames -> padded speech segments (may be empty)."""
    frame = params.frame
    duration = len(db) * frame if duration is None else duration
    floor = float(np.percentile(db, 10))
    threshold = max(params.floor_dbfs, floor + params.margin_db)
    active = db > threshold
    if not active.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = [[s * frame, e * frame] for s, e in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[list[float]] = [runs[0]]
    for start, end in runs[1:]:
        if start - merged[-1][1] < params.min_silence:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [Segment(max(0.0, s - params.pad), min(duration, e + params.pad), "speech")
            for s, e in merged if e - s >= params.min_speech]


def fixed_windows(start: float, end: float, *, window: float, hop: float,
                  kind: str = "window") -> list[Segment]:
    """Windows of ``window`` s every ``hop`` s over ``[start, end]``; the last ends at ``end``."""
    if end - start <= window:
        return [Segment(start, end, kind)]
    starts = list(np.arange(start, end - window, hop))
    if starts[-1] + window < end:
        starts.append(end - window)
    return [Segment(float(s), float(min(s + window, end)), kind) for s in starts]


def plan_segments(db: np.ndarray, duration: float, *,
                  params: TimelineParams = TimelineParams()) -> list[Segment]:
    """Speech segments (each at most ``window`` s), or fixed windows when there is no speech."""
    speech = speech_segments(db, params=params, duration=duration) if params.vad else []
    if not speech:
        return fixed_windows(0.0, duration, window=params.window, hop=params.hop)
    out: list[Segment] = []
    for seg in speech:
        out.extend(fixed_windows(seg.start, seg.end, window=params.window, hop=params.hop,
                                 kind="speech"))
    return out


def read_segment(f: sf.SoundFile, segment: Segment) -> np.ndarray:
    """Mono float32 samples of ``segment`` (seeks; reads only that stretch)."""
    sr = f.samplerate
    start = int(round(segment.start * sr))
    n = max(0, int(round(segment.end * sr)) - start)
    f.seek(start)
    return f.read(n, dtype="float32", always_2d=True).mean(axis=1)


# --------------------------------------------------------------------------- timeline


def emotion_timeline(path: str | Path, model: SignalModel, *,
                     params: TimelineParams = TimelineParams(),
                     progress: Callable[[int], object] | None = None,
                     planned: Callable[[int], object] | None = None,
                     speaker_from_recording: bool = False) -> pd.DataFrame:
    """Classify every segment of a long recording.

    Parameters
    ----------
    path
        Any file libsndfile reads, any rate and channel count (channels are averaged).
    model
        A :class:`SignalModel`, e.g. a :class:`ser.predict.inference.Predictor`.
    params
        Segmentation settings.
    progress
        Called with ``1`` after each segment (e.g. ``tqdm.update``).
    planned
        Called once with the number of segments, after the first pass (e.g. to
        set a progress bar's total).
    speaker_from_recording
        A speaker-normalised ``model`` (a :class:`ser.predict.inference.Predictor`) takes the
        speaker's statistics from the features of all segments of this recording
        (one speaker assumed); the statistics are in ``frame.attrs["speaker"]``.

    Returns
    -------
    pandas.DataFrame
        ``start, end, kind, emotion, probability`` and ``p_<label>`` per class,
        one row per segment in time order. Segments too short or silent to
        yield features are left out.
    """
    path = Path(path)
    db, _sr, duration = frame_energies(path, params=params)
    segments = plan_segments(db, duration, params=params)
    if planned is not None:
        planned(len(segments))
    labels = list(model.labels)
    if speaker_from_recording:
        return _timeline_from_recording_stats(path, model, segments, labels, progress)
    rows: list[dict[str, Any]] = []
    with _open(path) as f:
        for seg in segments:
            y = read_segment(f, seg)
            try:
                proba = np.asarray(model.proba_from_signal(y, f.samplerate), dtype=np.float64)
            except (FeatureError, AudioError):  # this segment has no features (trimmed away)
                proba = None  # a ConfigError (the model cannot do this) is never a skip
            if proba is not None:
                rows.append(_row(seg, proba, labels))
            if progress is not None:
                progress(1)
    columns = ["start", "end", "kind", "emotion", "probability"] + [f"p_{x}" for x in labels]
    return pd.DataFrame(rows, columns=columns)


def _row(seg: Segment, proba: np.ndarray, labels: list[str]) -> dict[str, Any]:
    best = int(np.argmax(proba))
    return {"start": round(seg.start, 3), "end": round(seg.end, 3), "kind": seg.kind,
            "emotion": labels[best], "probability": float(proba[best]),
            **{f"p_{label}": float(p) for label, p in zip(labels, proba, strict=True)}}


def _timeline_from_recording_stats(path: Path, model, segments: list[Segment],
                                   labels: list[str], progress) -> pd.DataFrame:
    """Features of every segment first, then the speaker's statistics from all of them
    (:data:`ser.predict.speaker_profile.MIN_RECORDING_SEGMENTS` at least), then the predictions."""
    from ser.predict.speaker_profile import MIN_RECORDING_SEGMENTS, stats_from_features

    kept: list[Segment] = []
    seqs: list[Any] = []
    summaries: list[np.ndarray] = []
    with _open(path) as f:
        for seg in segments:
            try:
                seq, summary = model.signal_features(read_segment(f, seg), f.samplerate)
            except SerError:  # e.g. nothing left after trimming
                seq = summary = None
            if summary is not None:
                kept.append(seg)
                seqs.append(seq)
                summaries.append(summary)
            if progress is not None:
                progress(1)
    what = (f"--speaker-from-recording {path}: {len(kept)} classifiable segment(s); the "
            f"recording itself needs at least {MIN_RECORDING_SEGMENTS} for the speaker's "
            "statistics - use --speaker-clips DIR or --speaker-profile FILE instead")
    if len(kept) < MIN_RECORDING_SEGMENTS:
        raise SerError(what)
    stacked = np.vstack(summaries)
    stats = stats_from_features(seqs, stacked, representation=model.representation,
                                feature_params=model.card["feature_params"],
                                source={"kind": "recording", "path": str(path),
                                        "n_segments": len(kept)},
                                minimum=MIN_RECORDING_SEGMENTS)
    stats = model.adapted(stats)  # shrunk toward the training speakers where the card says
    proba = model.proba_from_features(seqs, stacked, speaker=stats)
    columns = ["start", "end", "kind", "emotion", "probability"] + [f"p_{x}" for x in labels]
    frame = pd.DataFrame([_row(seg, p, labels) for seg, p in zip(kept, proba, strict=True)],
                         columns=columns)
    frame.attrs["speaker"] = stats
    return frame


def write_timeline(frame: pd.DataFrame, out_dir: str | Path, *, source: str | Path,
                   model: str, params: TimelineParams = TimelineParams(),
                   plot: bool = True, checked: bool = False,
                   warnings: Sequence[str] = (), speaker: dict[str, Any] | None = None,
                   ) -> dict[str, Path]:
    """Write ``timeline.csv``, ``timeline.json`` and (``plot``) ``timeline.png`` as the folder
    ``out_dir``, atomically (:func:`ser.outputs.atomic_path`).

    ``out_dir`` must be new, empty or an earlier timeline output (replaced whole); a
    folder holding other files is refused unless ``--force``
    (:func:`ser.outputs.replacing_allowed`),
    which writes the three files into it, keeping the rest and refusing a name clash.
    ``warnings`` (the model's, e.g. trained on synthetic data only) go into the JSON;
    ``speaker``: how a speaker-normalised model's speaker was normalised.
    """
    out_dir = Path(out_dir)
    labels = [c[2:] for c in frame.columns if c.startswith("p_")]
    paths = {"csv": out_dir / "timeline.csv", "json": out_dir / "timeline.json"}
    if plot:
        paths["png"] = out_dir / "timeline.png"
    doc = {"file": str(source), "model": str(model), "labels": labels,
           "warnings": list(warnings), "params": asdict(params),
           **({"speaker_normalisation": speaker} if speaker is not None else {}),
           "segments": [{"start": float(r.start), "end": float(r.end), "kind": r.kind,
                         "emotion": r.emotion, "probability": round(float(r.probability), 4),
                         "probabilities": {x: round(float(getattr(r, f"p_{x}")), 4)
                                           for x in labels}}
                        for r in frame.itertuples(index=False)]}
    with atomic_path(out_dir, checked=checked) as tmp:
        tmp.mkdir()
        frame.to_csv(tmp / "timeline.csv", index=False, float_format="%.4f")
        (tmp / "timeline.json").write_text(json.dumps(doc, indent=2) + "\n")
        if plot:
            plot_timeline(frame, tmp / "timeline.png", title=f"{Path(source).name} - {model}")
    return paths


def plot_timeline(frame: pd.DataFrame, out: str | Path, *, title: str = "") -> None:
    """PNG: the winning emotion per segment (top) and every class' probability (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [c[2:] for c in frame.columns if c.startswith("p_")]
    colours = {x: plt.get_cmap("tab10")(i % 10) for i, x in enumerate(labels)}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 4.5), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 3]})
    span = float(frame["end"].max() - frame["start"].min()) if len(frame) else 1.0
    for r in frame.itertuples(index=False):
        top.axvspan(r.start, r.end, color=colours[r.emotion], alpha=0.35 + 0.6 * r.probability)
        if r.end - r.start >= 0.05 * span:  # name the emotion where there is room
            top.text((r.start + r.end) / 2, 0.5, r.emotion, ha="center", va="center",
                     fontsize=7, transform=top.get_xaxis_transform())
    top.set_yticks([])
    top.set_ylabel("emotion")
    mid = ((frame["start"] + frame["end"]) / 2).to_numpy()
    for x in labels:
        bottom.plot(mid, frame[f"p_{x}"].to_numpy(), marker="o", ms=3, lw=1.2,
                    color=colours[x], label=x)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("probability")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    top.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------- one recording


def default_out(audio: str | Path, model_dir: str | Path, *,
                taken: set[Path] | frozenset[Path] = frozenset()) -> Path:
    """``timelines/<file stem>-<model folder name>``, numbered ``-2``, ``-3`` ... when that
    folder is in ``taken`` or holds the timeline of another file (``a/x.wav`` and
    ``b/x.wav`` never share a folder)."""
    base = f"timelines/{Path(audio).stem}-{Path(model_dir).name}"
    n = 1
    while True:
        out = Path(base if n == 1 else f"{base}-{n}")
        if out not in taken and _free_for(out, audio):
            return out
        n += 1


def _free_for(out: Path, audio: str | Path) -> bool:
    """Whether ``out`` is missing, or holds only a timeline of ``audio`` itself."""
    if not out.exists() and not out.is_symlink():
        return True
    try:
        doc = json.loads((out / "timeline.json").read_text())
        return Path(doc["file"]).resolve() == Path(audio).resolve()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def timeline_for_file(audio: Path, model: SignalModel, *, model_dir: str | Path,
                      out: str | Path | None = None,
                      params: TimelineParams = TimelineParams(), plot: bool = True,
                      progress: bool = True, speaker_from_recording: bool = False) -> str:
    """Classify the segments of ``audio``, write the timeline files; return a one-line summary.

    Shared by ``ser timeline`` and ``predict.py --segments``. A speaker-normalised
    ``model`` needs its :attr:`~ser.predict.inference.Predictor.speaker` set or
    ``speaker_from_recording``; the summary and timeline.json say which was used.
    """
    from tqdm import tqdm

    from ser.outputs import check_output

    normalised = getattr(model, "speaker_normalised", False)
    if normalised and not speaker_from_recording and model.speaker is None:
        raise model.missing_speaker(recording_option=True)
    out = Path(out) if out else default_out(audio, model_dir)
    check_output(out, kind="dir")  # refused at once, not after the classification
    with tqdm(desc=f"timeline {audio.name}", unit="segment", disable=not progress) as bar:
        frame = emotion_timeline(audio, model, params=params, progress=bar.update,
                                 planned=lambda n: setattr(bar, "total", n),
                                 speaker_from_recording=normalised and speaker_from_recording)
    if frame.empty:
        raise AudioError(audio, "no segment could be classified (silent or too short?)")
    warnings = model.warnings() if callable(getattr(model, "warnings", None)) else []
    speaker = frame.attrs.get("speaker") or (model.speaker if normalised else None)
    write_timeline(frame, out, source=audio, model=str(model_dir), params=params, plot=plot,
                   checked=True, warnings=warnings,
                   speaker=speaker.to_json() if speaker is not None else None)
    share = frame.groupby("emotion").apply(lambda g: (g["end"] - g["start"]).sum(),
                                           include_groups=False)
    share = (share / share.sum()).sort_values(ascending=False)
    return (f"{audio}: {len(frame)} segments ({frame['kind'].iloc[0]}-based) classified with "
            f"{model_dir}; time share: "
            + ", ".join(f"{e} {s:.0%}" for e, s in share.items())
            + (f"; {speaker.describe()}" if speaker is not None else "") + f" -> {out}")
