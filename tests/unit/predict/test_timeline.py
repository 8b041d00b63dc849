"""Emotion timelines of long recordings: segmentation, bounded memory, labels that follow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.corpora.demo import plan_corpus, render_clip
from ser.predict.timeline import (
    Segment,
    TimelineParams,
    emotion_timeline,
    fixed_windows,
    frame_energies,
    plan_segments,
    speech_segments,
    write_timeline,
)

EMOTIONS = ("angry", "sad", "happy", "neutral")
FEATURES = {"sample_rate": 16000, "n_mfcc": 20, "n_fft": 512, "hop_length": 160, "n_mels": 40,
            "fmin": 0.0}
SR = 48_000
HELD_OUT = ("07", "08")


def _audio(clip) -> np.ndarray:
    return render_clip("ravdess", clip).astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def clips():
    """Synthetic RAVDESS demo clips of four emotions (8 actors)."""
    return [c for c in plan_corpus("ravdess", preset="demo") if c.emotion in EMOTIONS]


@pytest.fixture(scope="module")
def model_dir(clips, tmp_path_factory) -> Path:
    """An SVM on MFCC summaries of actors 01-06, saved as the pipeline saves models."""
    import librosa

    from ser.features.mfcc import (
        feature_params_fingerprint,
        mfcc_sequence,
        mfcc_summary,
        summary_names,
    )
    from ser.models.classical import make_pipeline
    from ser.models.store import save_model

    train = [c for c in clips if c.speaker.id not in HELD_OUT]
    X = np.array([mfcc_summary(mfcc_sequence(librosa.resample(_audio(c), orig_sr=SR,
                                                              target_sr=16000),
                                             16000, params=FEATURES)) for c in train])
    y = np.array([c.emotion for c in train])
    pipe = make_pipeline("svm", seed=0).fit(X, y)
    fp = feature_params_fingerprint(FEATURES)
    card = {"model": "svm", "protocol": "speaker", "format": "skops",
            "labels": [str(c) for c in pipe.classes_], "feature_set": "mfcc",
            "feature_params": fp, "feature_columns": summary_names(fp["n_coeffs"]),
            "corpora": ["ravdess"], "n_train": len(train)}
    out = tmp_path_factory.mktemp("timeline_model") / "svm"
    save_model(out, pipe, card)
    return out


@pytest.fixture(scope="module")
def long_file(clips, tmp_path_factory) -> tuple[Path, list[tuple[float, float, str]]]:
    """Held-out actors' clips of alternating emotions, 0.8 s of faint noise between them.

    Written as 44.1 kHz stereo FLAC; returns the path and the truth ``(start, end, emotion)``.
    """
    import librosa

    rng = np.random.default_rng(0)
    order = [c for c in clips if c.speaker.id in HELD_OUT]
    rng.shuffle(order)
    gap = 0.8
    parts, truth, t = [], [], 0.0
    for clip in order:
        silence = 0.002 * rng.standard_normal(int(gap * SR)).astype(np.float32)
        y = _audio(clip)
        parts += [silence, y]
        t += gap
        truth.append((t, t + len(y) / SR, clip.emotion))
        t += len(y) / SR
    parts.append(0.002 * rng.standard_normal(int(gap * SR)).astype(np.float32))
    mono = librosa.resample(np.concatenate(parts), orig_sr=SR, target_sr=44_100)
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, np.stack([mono, mono], axis=1), 44_100, format="FLAC")
    return path, truth


def _truth_at(truth, t: float) -> str | None:
    return next((e for s, end, e in truth if s <= t <= end), None)


def test_timeline_follows_the_concatenation(model_dir, long_file, tmp_path):
    from ser.predict.inference import Predictor

    path, truth = long_file
    assert len({e for *_, e in truth}) == 4 and len(truth) >= 8
    model = Predictor.load(model_dir)
    frame = emotion_timeline(path, model, params=TimelineParams(window=4.0, hop=2.0))
    assert set(frame["kind"]) == {"speech"}
    # The detector finds every clip and no segment lies in a silence between clips.
    mids = (frame["start"] + frame["end"]) / 2
    expected = [_truth_at(truth, t) for t in mids]
    assert None not in expected, frame[["start", "end"]].to_string()
    assert all(((mids > s) & (mids < e)).any() for s, e, _ in truth)
    hits = np.mean([e == p for e, p in zip(expected, frame["emotion"], strict=True)])
    assert hits > 0.5, f"segment labels follow the clips in {hits:.0%} (chance 25%)"
    probs = frame[[f"p_{x}" for x in model.labels]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)

    paths = write_timeline(frame, tmp_path / "out", source=path, model=str(model_dir))
    import json

    import pandas as pd

    doc = json.loads(paths["json"].read_text())
    assert len(doc["segments"]) == len(frame) and doc["labels"] == model.labels
    assert set(doc["segments"][0]) == {"start", "end", "kind", "emotion", "probability",
                                       "probabilities"}
    assert list(pd.read_csv(paths["csv"])["emotion"]) == list(frame["emotion"])
    with open(paths["png"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_timeline_command(model_dir, long_file, tmp_path, capsys):
    from ser.cli import main

    path, truth = long_file
    out = tmp_path / "cli"
    assert main(["timeline", "--model", str(model_dir), "--file", str(path), "--out", str(out),
                 "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} == {"timeline.csv", "timeline.json", "timeline.png",
                                               ".ser-output"}
    assert "segments" in capsys.readouterr().out
    assert main(["timeline", "--model", str(model_dir), "--file", str(tmp_path / "no.wav"),
                 "--out", str(out)]) == 2
    assert "no.wav: file not found" in capsys.readouterr().err


class _Recorder:
    """A SignalModel that records the longest signal it was given."""

    labels = ["a", "b"]

    def __init__(self):
        self.longest = 0

    def proba_from_signal(self, y, sr):
        self.longest = max(self.longest, len(y))
        return np.array([0.3, 0.7]) if y.std() > 0.05 else np.array([0.9, 0.1])


def test_memory_is_bounded_by_the_window(tmp_path, monkeypatch):
    """A 90 s file, a 2 s window: no read and no classified signal exceeds 2 s of audio."""
    sr = 8000
    rng = np.random.default_rng(1)
    t = np.arange(90 * sr) / sr
    loud = (np.sin(2 * np.pi * 0.05 * t) > 0).astype(np.float32)  # 10 s on, 10 s off
    y = (0.001 + 0.3 * loud) * rng.standard_normal(t.size).astype(np.float32)
    path = tmp_path / "ninety.wav"
    sf.write(path, np.stack([y, y], axis=1), sr)

    reads: list[int] = []
    original = sf.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        out = original(self, frames, *args, **kwargs)
        reads.append(out.shape[0])
        return out

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    model = _Recorder()
    params = TimelineParams(window=2.0, hop=1.0)
    frame = emotion_timeline(path, model, params=params)
    limit = int(params.window * sr)
    assert reads and max(reads) <= limit and model.longest <= limit
    assert sum(reads) >= 2 * y.size * 0.9       # two passes, both through the whole file
    # Speech (the loud halves) gets label "b", and segments stay inside the loud stretches.
    assert set(frame["kind"]) == {"speech"} and set(frame["emotion"]) == {"b"}
    assert frame["end"].max() <= 90.0 and (frame["end"] - frame["start"]).max() <= 2.0 + 1e-6


def test_no_speech_falls_back_to_windows(tmp_path):
    sr = 8000
    y = 0.1 * np.random.default_rng(2).standard_normal(10 * sr).astype(np.float32)  # steady
    path = tmp_path / "steady.wav"
    sf.write(path, y, sr)
    db, file_sr, duration = frame_energies(path)
    assert file_sr == sr and duration == pytest.approx(10.0) and len(db) == 500
    segs = plan_segments(db, duration, params=TimelineParams(window=3.0, hop=1.5))
    assert {s.kind for s in segs} == {"window"}
    assert segs[0].start == 0 and segs[-1].end == pytest.approx(10.0)
    assert all(b.start - a.start == pytest.approx(1.5) for a, b in zip(segs[:-2], segs[1:-1],
                                                                       strict=True))
    no_vad = plan_segments(db, duration, params=TimelineParams(vad=False))
    assert {s.kind for s in no_vad} == {"window"}


def test_speech_segments_bridge_short_pauses_and_drop_clicks():
    frame = 0.02
    db = np.full(500, -70.0)                 # 10 s of near silence
    db[50:100] = -20                         # 1.0-2.0 s speech
    db[110:160] = -20                        # 0.2 s pause (bridged), speech to 3.2 s
    db[300:305] = -10                        # a 0.1 s click: ignored
    db[400:450] = -25                        # 8.0-9.0 s speech
    segs = speech_segments(db, params=TimelineParams(frame=frame, pad=0.0))
    assert [(round(s.start, 2), round(s.end, 2)) for s in segs] == [(1.0, 3.2), (8.0, 9.0)]


def test_fixed_windows_cover_the_span():
    wins = fixed_windows(1.0, 8.0, window=3.0, hop=2.0)
    assert wins[0] == Segment(1.0, 4.0, "window") and wins[-1].end == 8.0
    assert all(w.end - w.start == pytest.approx(3.0) for w in wins)
    assert fixed_windows(0.0, 2.0, window=3.0, hop=1.0) == [Segment(0.0, 2.0, "window")]


def test_bad_params():
    from ser.errors import ConfigError

    with pytest.raises(ConfigError, match="hop"):
        TimelineParams(window=2.0, hop=3.0)


def test_timeline_says_the_models_warnings_and_records_them(model_dir, long_file, tmp_path,
                                                            capsys, monkeypatch):
    """Like predict.py: a model trained on synthetic data only is said so on stderr, and
    timeline.json carries the warning."""
    import json

    from ser.cli import main
    from ser.predict.inference import Predictor

    warning = f"{model_dir} was trained on synthetic demo data only (ravdess); its answers"
    monkeypatch.setattr(Predictor, "warnings", lambda self: [warning])
    path, _ = long_file
    out = tmp_path / "warned"
    assert main(["timeline", "--model", str(model_dir), "--file", str(path), "--out", str(out),
                 "--no-progress", "--no-plot"]) == 0
    assert f"warning: {warning}" in capsys.readouterr().err
    assert json.loads((out / "timeline.json").read_text())["warnings"] == [warning]
