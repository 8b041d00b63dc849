"""A user's own corpus (folder per label, or a CSV/TSV manifest) from generated clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.corpora import COLUMNS, PARSERS, custom, parse_corpus
from ser.corpora.demo import plan_corpus, render_clip
from ser.errors import ConfigError

#: Synthetic RAVDESS "tiny" clips: 4 actors x 8 emotions, 48 kHz mono.
CLIPS = plan_corpus("ravdess", preset="tiny")
#: The user's own spelling of some labels, as folder names / manifest cells.
USER_SPELLING = {"angry": "Anger", "happy": "happiness", "fearful": "FEAR", "sad": "Sadness",
                 "surprised": "surprise"}


def _write(path: Path, clip, *, stereo_flac: bool) -> None:
    y = render_clip("ravdess", clip).astype(np.float32) / 32768.0
    path.parent.mkdir(parents=True, exist_ok=True)
    if stereo_flac:  # what a phone or DAW export looks like: 44.1 kHz, two channels, FLAC
        import librosa

        y = librosa.resample(y, orig_sr=48_000, target_sr=44_100)
        sf.write(path, np.stack([y, 0.8 * y], axis=1), 44_100, format="FLAC")
    else:
        sf.write(path, y, 48_000, subtype="PCM_16")


@pytest.fixture(scope="module")
def folder_corpus(tmp_path_factory) -> Path:
    """my_data/<label>/<speaker>/clip: actors 01-02 with speakers, 03 without a speaker level."""
    root = tmp_path_factory.mktemp("custom") / "my_data"
    for i, clip in enumerate(CLIPS):
        label = USER_SPELLING.get(clip.emotion, clip.emotion)
        actor = clip.speaker.id
        if actor == "04":
            continue
        flac = i % 3 == 0
        name = f"clip{i:02d}.{'flac' if flac else 'wav'}"
        sub = Path(label) / (f"actor{actor}" if actor != "03" else "") / name
        _write(root / sub, clip, stereo_flac=flac)
    (root / "README.txt").write_text("my recordings\n")          # not audio: ignored
    (root / "loose.wav").write_bytes(next(root.rglob("*.wav")).read_bytes())  # no label folder
    (root / "Anger" / "broken.wav").write_bytes(b"RIFF" + b"\0" * 200)  # corrupt
    return root


def test_folder_per_label(folder_corpus):
    result = custom.parse(folder_corpus)
    frame = result.to_frame()
    assert list(frame.columns) == list(COLUMNS["custom"])
    assert len(frame) == 24                       # actors 01-03 x 8 emotions
    # Synonyms unified, capitalisation ignored; the user's own spelling kept in label_code.
    assert set(frame["emotion"]) == {"neutral", "calm", "happy", "sad", "angry", "fearful",
                                     "disgust", "surprised"}
    assert set(frame.loc[frame["emotion"] == "angry", "label_code"]) == {"Anger"}
    # Speakers from the second level; files directly in a label folder have none.
    assert set(frame["speaker"]) == {"actor01", "actor02", "unknown"}
    assert (frame["speaker"] == "unknown").sum() == 8
    assert set(frame["gender"]) == {"unknown"}
    assert frame["path"].str.endswith(".flac").sum() == 8
    reasons = dict((Path(p).name, r) for p, r in result.rejected)
    assert set(reasons) == {"loose.wav", "broken.wav"}
    assert "emotion" in reasons["loose.wav"] and "readable" in reasons["broken.wav"]
    assert any("not audio" in n for n in result.notes)          # README.txt, counted
    assert any("8 clips have no speaker" in n for n in result.notes)


def test_folder_corpus_through_parse_corpus_and_features(folder_corpus, tmp_path):
    """Registered, and every row (stereo 44.1 kHz FLAC too) yields features at 16 kHz."""
    from ser.features import features_from_file

    assert "custom" in PARSERS
    result = parse_corpus("custom", folder_corpus)
    params = {"sample_rate": 16000, "n_mfcc": 13, "n_fft": 512, "hop_length": 160,
              "n_mels": 40, "fmin": 0.0}
    flac = next(r["path"] for r in result.rows if r["path"].endswith(".flac"))
    info = sf.info(flac)
    assert (info.samplerate, info.channels, info.format) == (44_100, 2, "FLAC")
    seq, summary = features_from_file(flac, params=params)
    assert seq.shape[1] == 13 and np.isfinite(summary).all()


def test_no_speakers_warns(tmp_path):
    root = tmp_path / "flat"
    for i, clip in enumerate(CLIPS[:8]):
        _write(root / clip.emotion / f"{i}.wav", clip, stereo_flac=False)
    result = custom.parse(root)
    assert len(result.rows) == 8
    assert custom.NO_SPEAKER_WARNING in result.notes
    assert "speaker-independent protocols" in result.summary()


def _manifest_corpus(root: Path, *, delimiter: str = ",", name: str = "manifest.csv") -> Path:
    """clips/ under root plus a manifest; actor 04's clips are given by absolute path."""
    lines = [delimiter.join(["Path", "Emotion", "Speaker", "Gender", "Split"])]
    outside = root.parent / f"elsewhere_{name}"
    for i, clip in enumerate(CLIPS):
        absolute = clip.speaker.id == "04"
        ext = "ogg" if i % 5 == 0 else "wav"
        path = (outside if absolute else root / "clips") / f"c{i:02d}.{ext}"
        y = render_clip("ravdess", clip).astype(np.float32) / 32768.0
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y, 48_000)
        cell = str(path) if absolute else f"clips/{path.name}"
        label = USER_SPELLING.get(clip.emotion, clip.emotion)
        gender = "f" if clip.speaker.sex == "female" else "M"
        split = "test" if clip.speaker.id == "04" else "train"
        lines.append(delimiter.join([cell, label, f"spk{clip.speaker.id}", gender, split]))
    lines.append(delimiter.join(["clips/missing.wav", "sad", "spk01", "f", "train"]))
    lines.append(delimiter.join(["clips/c01.wav", "calm", "spk01", "m", "train"]))  # again
    lines.append(delimiter.join(["clips/c02.wav", "", "spk01", "m", "train"]))
    lines.append("")
    (root / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize(("delimiter", "name"), [(",", "manifest.csv"), ("\t", "labels.tsv"),
                                                 (";", "manifest.csv")])
def test_manifest(tmp_path, delimiter, name):
    root = _manifest_corpus(tmp_path / "corpus", delimiter=delimiter, name=name)
    result = parse_corpus("custom", root)
    frame = result.to_frame()
    # 32 listed clips; c02 listed twice (second time without a label) and c01 twice.
    assert len(frame) == 32
    assert set(frame["speaker"]) == {"spk01", "spk02", "spk03", "spk04"}
    assert frame.groupby("speaker")["gender"].nunique().eq(1).all()
    assert set(frame["gender"]) <= {"female", "male"}
    assert set(frame.loc[frame["speaker"] == "spk04", "user_split"]) == {"test"}
    assert frame.loc[frame["speaker"] == "spk04", "path"].map(lambda p: Path(p).is_absolute()).all()
    assert frame["path"].str.endswith(".ogg").sum() == 7
    assert set(frame.loc[frame["label_code"] == "happiness", "emotion"]) == {"happy"}
    reasons = [r for _, r in result.rejected]
    assert len(reasons) == 3
    assert any("not found" in r and "line 34" in r for r in reasons)
    assert any("duplicate" in r for r in reasons)
    assert any("empty emotion label" in r for r in reasons)
    assert custom.NO_SPEAKER_WARNING not in result.notes


def test_manifest_errors(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,mood\na.wav,happy\n")
    with pytest.raises(ConfigError, match="no emotion column.*found: file, mood"):
        custom.parse(tmp_path)
    with pytest.raises(ConfigError, match="manifest .*nope.csv not found"):
        custom.parse(tmp_path, manifest="nope.csv")


def test_manifest_file_as_root(tmp_path):
    root = _manifest_corpus(tmp_path / "corpus")
    assert len(custom.parse(root / "manifest.csv").rows) == 32


def test_audio_extensions():
    assert {"wav", "flac", "ogg", "aiff"} <= custom.audio_extensions()
    assert custom.is_audio("A.WAV") and not custom.is_audio("notes.txt")


def test_flac_only_folder_and_find_inputs(tmp_path):
    root = tmp_path / "flac_only"
    for i, clip in enumerate(CLIPS[:4]):
        _write(root / clip.emotion / "spk" / f"{i}.flac", clip, stereo_flac=True)
    assert len(custom.parse(root).rows) == 4
    assert [p.suffix for p in custom.find_inputs(root)] == [".flac"] * 4
    (root / "manifest.csv").write_text("path,emotion\n")
    assert custom.find_inputs(root) == [root / "manifest.csv"]


def test_parse_corpus_takes_a_csv_file_as_the_custom_root(tmp_path):
    root = _manifest_corpus(tmp_path / "corpus")
    result = parse_corpus("custom", root / "manifest.csv")
    assert len(result.rows) == 32
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        parse_corpus("ravdess", root / "manifest.csv")          # only custom reads a table
    with pytest.raises(ConfigError, match="corpora.custom' at the folder or the CSV"):
        parse_corpus("custom", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio files .* and no manifest"):
        parse_corpus("custom", tmp_path / "empty")


def _odd_custom_root(tmp_path: Path) -> Path:
    """Issue 17 item 8: non-UTF-8 folder and file names, a truncated WAV, a FIFO and a
    link out of the root, beside two good clips."""
    import os

    root = tmp_path / "odd"
    y = (0.3 * np.sin(np.linspace(0, 3000, 32000))).astype(np.float32)
    for label in ("angry", "happy"):
        (root / label / "spk1").mkdir(parents=True)
        sf.write(root / label / "spk1" / "good.wav", y, 16000)
    os.makedirs(os.fsencode(root) + b"/angry/sp\xff")
    sf.write(os.fsencode(root) + b"/angry/sp\xff/x.wav", y, 16000)
    sf.write(os.fsencode(root) + b"/happy/spk1/b\xe9.wav", y, 16000)
    whole = root / "happy" / "spk1" / "whole.wav"
    sf.write(whole, y, 16000)
    data = whole.read_bytes()
    (root / "happy" / "spk1" / "cut.wav").write_bytes(data[: len(data) // 2])
    whole.unlink()
    os.mkfifo(root / "happy" / "spk1" / "pipe.wav")
    outside = tmp_path / "outside.wav"
    sf.write(outside, y, 16000)
    (root / "happy" / "spk1" / "out.wav").symlink_to(outside)
    return root


def test_odd_names_and_files_are_listed_as_rejected(tmp_path, capsys):
    """The manifest stage on such a folder: one row per good clip, every odd file in
    <out>_rejected.csv with its own reason, no traceback."""
    import runpy

    import pandas as pd

    from ser.cli import run_cli

    root = _odd_custom_root(tmp_path)
    out = tmp_path / "custom.parquet"
    main = runpy.run_path(str(Path(__file__).parents[3] / "scripts" / "prepare_manifest.py"))
    assert run_cli(main["main"], ["--corpus", "custom", "--root", str(root),
                                  "--out", str(out), "--params",
                                  str(Path(__file__).parents[3] / "params.yaml")]) == 0
    assert len(pd.read_parquet(out)) == 2
    rejected = pd.read_csv(tmp_path / "custom_rejected.csv")
    reasons = dict(zip(rejected["path"].map(lambda p: Path(p).name), rejected["reason"],
                       strict=True))
    assert reasons["x.wav"].startswith("file or folder name is not valid UTF-8")
    assert reasons["b\\xe9.wav"].startswith("file or folder name is not valid UTF-8")
    assert reasons["cut.wav"].startswith("truncated: the header promises")
    assert reasons["pipe.wav"].startswith("a FIFO (named pipe)")
    assert reasons["out.wav"].startswith("symbolic link pointing outside the corpus root")
    assert "Traceback" not in capsys.readouterr().err


def test_manifest_rows_at_a_fifo_or_device_get_their_own_reason(tmp_path):
    import os

    root = tmp_path / "m"
    root.mkdir()
    os.mkfifo(root / "pipe.wav")
    (root / "manifest.csv").write_text("path,emotion\npipe.wav,angry\n/dev/null,sad\n"
                                       ".,happy\n")
    result = custom.parse(root)
    reasons = [r for _, r in result.rejected]
    assert "a FIFO (named pipe)" in reasons[0] and "a device file" in reasons[1]
    assert "is a folder" in reasons[2] and not result.rows
