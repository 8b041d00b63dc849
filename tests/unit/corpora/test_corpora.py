"""Corpus parsers, the manifest stage and audio loading, on real and synthetic folders."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.audio import audio_info, load_audio
from ser.corpora import COLUMNS, PARSERS, cremad, emodb, parse_corpus, ravdess, savee, tess
from ser.errors import AudioError, ConfigError

ROOT = Path(__file__).resolve().parents[3]

# Facts from ../shared/data/README.md, written out independently of ser.labels.
RAVDESS_EMOTION = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                   "06": "fearful", "07": "disgust", "08": "surprised"}
ACTORS = [f"{a:02d}" for a in range(1, 13)]
N_FILES = 716
#: Files absent from the subset, per actor (the README's "Missing files").
MISSING = {"01": ("03-01-02-01-01-02-01.wav", "03-01-08-01-02-02-01.wav"),
           "05": ("03-01-02-01-02-02-05.wav", "03-01-02-02-02-01-05.wav")}
SHORT_FILE = "Actor_02/03-01-07-02-01-01-02.wav"


def write_wav(path: Path, sr: int = 16000, n: int = 160) -> Path:
    """A tiny valid 16-bit mono WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(n) / sr
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), sr, subtype="PCM_16")
    return path


def make_tree(root: Path, names: list[str]) -> Path:
    """Write a WAV (or, for non-.wav names, a text file) at each relative path."""
    for name in names:
        if name.lower().endswith(".wav"):
            write_wav(root / name)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("not audio\n")
    return root


def by_name(result) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in result.rows}


def rejected_by_name(result) -> dict[str, str]:
    return {Path(p).name: reason for p, reason in result.rejected}


# ------------------------------------------------------------------ real RAVDESS subset


@pytest.fixture(scope="module")
def real_ravdess(shared_data):
    return shared_data / "ravdess"


def test_real_ravdess_every_file_parses_correctly(real_ravdess):
    result = parse_corpus("ravdess", real_ravdess)
    files = sorted(real_ravdess.glob("Actor_*/*.wav"))
    assert len(files) == N_FILES
    assert len(result.rows) == N_FILES
    assert result.rejected == []
    assert {r["path"] for r in result.rows} == {str(p) for p in files}
    for row in result.rows:
        name = Path(row["path"]).name
        fields = name.removesuffix(".wav").split("-")
        actor = fields[6]
        assert Path(row["path"]).parent.name == f"Actor_{actor}"
        assert row["emotion"] == RAVDESS_EMOTION[fields[2]], name
        assert row["label_code"] == fields[2]
        assert row["speaker"] == actor
        assert row["gender"] == ("male" if int(actor) % 2 == 1 else "female"), name
        assert (row["modality"], row["vocal_channel"]) == ("03", "01")
        assert (row["intensity"], row["statement"], row["repetition"]) == tuple(fields[3:6])
        assert row["corpus"] == "ravdess"
    per_actor = Counter(r["speaker"] for r in result.rows)
    assert per_actor == {a: 58 if a in MISSING else 60 for a in ACTORS}
    genders = {r["speaker"]: r["gender"] for r in result.rows}
    assert genders == {a: "male" if int(a) % 2 else "female" for a in ACTORS}
    # 4 neutral and 8 of every other emotion per actor, minus the missing files
    counts = Counter((r["speaker"], r["emotion"]) for r in result.rows)
    for actor in ACTORS:
        gaps = Counter(RAVDESS_EMOTION[name.split("-")[2]] for name in MISSING.get(actor, ()))
        for emotion in RAVDESS_EMOTION.values():
            expected = (4 if emotion == "neutral" else 8) - gaps[emotion]
            assert counts[(actor, emotion)] == expected, (actor, emotion)
    for actor, names in MISSING.items():
        for missing in names:
            assert not (real_ravdess / f"Actor_{actor}" / missing).exists()
            assert missing not in by_name(result)


def test_real_ravdess_frame_and_summary(real_ravdess):
    result = ravdess.parse(real_ravdess)
    frame = result.to_frame()
    assert list(frame.columns) == list(COLUMNS["ravdess"])
    assert len(frame) == N_FILES
    text = result.summary()
    assert f"{N_FILES} clips from 12 speakers, 0 rejected" in text
    # 12 actors x 4 neutral; 12 x 8 calm minus 3 missing; 12 x 8 surprised minus 1
    assert "neutral 48" in text and "calm 93" in text and "surprised 95" in text


def test_real_ravdess_audio_opens(real_ravdess):
    files = sorted(real_ravdess.glob("Actor_*/*.wav"))
    short = []
    for path in files:
        info = audio_info(path)
        assert (info.samplerate, info.channels) == (48000, 1), path
        y, sr = load_audio(path)
        assert sr == 48000 and y.ndim == 1 and y.dtype == np.float32
        assert len(y) == info.frames
        if info.frames != 114688:
            short.append((path.relative_to(real_ravdess).as_posix(), info.frames))
    assert short == [(SHORT_FILE, 114649)]


# ------------------------------------------------------------------ synthetic layouts


def test_tess_inconsistent_folders(tmp_path):
    root = make_tree(tmp_path / "datasets" / "TESS", [
        "OAF_angry/OAF_back_angry.wav",
        "OAF_Fear/OAF_back_fear.wav",
        "OAF_Sad/OAF_bite_SAD.wav",
        "YAF_pleasant_surprised/YAF_back_ps.wav",
        "YAF_neutral/YAF_germ_neutral.wav",
        "YAF_happy/YAF_dog_happy.WAV",
        "OAF_angry/OAF_back.wav",
        "OAF_angry/OAF_back_bored.wav",
        "OAF_angry/XYZ_back_angry.wav",
        "OAF_angry/readme.txt",
    ])
    result = tess.parse(tmp_path / "datasets")
    rows = by_name(result)
    assert {n: r["emotion"] for n, r in rows.items()} == {
        "OAF_back_angry.wav": "angry",
        "OAF_back_fear.wav": "fearful",
        "OAF_bite_SAD.wav": "sad",
        "YAF_back_ps.wav": "surprised",
        "YAF_germ_neutral.wav": "neutral",
        "YAF_dog_happy.WAV": "happy",
    }
    assert rows["YAF_back_ps.wav"]["label_code"] == "ps"
    assert rows["OAF_bite_SAD.wav"]["word"] == "bite"
    assert {r["gender"] for r in result.rows} == {"female"}
    assert {r["speaker"] for r in result.rows} == {"OAF", "YAF"}
    rejected = rejected_by_name(result)
    assert set(rejected) == {"OAF_back.wav", "OAF_back_bored.wav", "XYZ_back_angry.wav"}
    assert "not <speaker>_<word>_<emotion>" in rejected["OAF_back.wav"]
    assert "unknown emotion code 'bored'" in rejected["OAF_back_bored.wav"]
    assert "unknown speaker 'XYZ'" in rejected["XYZ_back_angry.wav"]
    assert all(p.startswith(str(root.parent)) for p, _ in result.rejected)
    assert list(result.to_frame().columns) == list(COLUMNS["tess"])


def test_ravdess_song_video_and_bad_names(tmp_path):
    root = make_tree(tmp_path / "rav", [
        "Actor_01/03-01-05-01-02-01-01.wav",
        "Actor_01/03-01-01-01-01-01-01.wav",
        "Actor_02/03-02-03-01-01-01-02.wav",     # song
        "Actor_02/01-01-03-01-01-01-02.wav",     # audio-video
        "Actor_02/02-01-03-01-01-01-02.wav",     # video-only
        "Actor_02/03-01-09-01-01-01-02.wav",     # unknown emotion
        "Actor_02/03-01-05-01-01-01.wav",        # 6 fields
        "Actor_02/03-01-05-01-01-01-25.wav",     # actor out of range
        "Actor_02/03-01-05-01-01-01-03.wav",     # contradicts its folder
        "Actor_02/03-01-01-02-01-01-02.wav",     # neutral cannot be strong
        "Actor_02/03-01-0x-01-01-01-02.wav",     # not digits
        "Actor_02/notes.txt",
    ])
    result = ravdess.parse(root)
    assert set(by_name(result)) == {"03-01-05-01-02-01-01.wav", "03-01-01-01-01-01-01.wav"}
    row = by_name(result)["03-01-05-01-02-01-01.wav"]
    assert (row["emotion"], row["speaker"], row["gender"], row["statement"]) == (
        "angry", "01", "male", "02")
    rejected = rejected_by_name(result)
    assert "song" in rejected["03-02-03-01-01-01-02.wav"]
    assert "ravdess_song" in rejected["03-02-03-01-01-01-02.wav"]
    assert "audio-video" in rejected["01-01-03-01-01-01-02.wav"]
    assert "video-only" in rejected["02-01-03-01-01-01-02.wav"]
    assert "unknown emotion code '09'" in rejected["03-01-09-01-01-01-02.wav"]
    assert "expected 7 fields" in rejected["03-01-05-01-01-01.wav"]
    assert "out of range" in rejected["03-01-05-01-01-01-25.wav"]
    assert "contradicts its folder Actor_02" in rejected["03-01-05-01-01-01-03.wav"]
    assert "neutral" in rejected["03-01-01-02-01-01-02.wav"]
    assert "not two digits" in rejected["03-01-0x-01-01-01-02.wav"]
    assert len(result.rejected) == 9

    with_song = ravdess.parse(root, include_song=True)
    song = by_name(with_song)["03-02-03-01-01-01-02.wav"]
    assert (song["vocal_channel"], song["emotion"], song["gender"]) == ("02", "happy", "female")
    assert len(with_song.rejected) == 8


def test_cremad_with_and_without_demographics(tmp_path):
    names = [
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1002_IEO_HAP_HI.wav",
        "AudioWAV/1091_WSI_NEU_XX.wav",
        "AudioWAV/1001_DFA_ANG.wav",            # 3 fields
        "AudioWAV/0999_DFA_ANG_XX.wav",         # actor out of range
        "AudioWAV/1001_DFA_XXX_XX.wav",         # unknown emotion
        "AudioWAV/1001_ABC_ANG_XX.wav",         # unknown sentence
        "AudioWAV/1001_DFA_ANG_ZZ.wav",         # unknown level
    ]
    root = make_tree(tmp_path / "CREMA-D", names)
    result = cremad.parse(root)
    rows = by_name(result)
    assert set(rows) == {"1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav", "1091_WSI_NEU_XX.wav"}
    assert {r["gender"] for r in result.rows} == {"unknown"}
    assert any("VideoDemographics.csv" in note for note in result.notes)
    assert "VideoDemographics.csv" in result.summary()
    assert rows["1002_IEO_HAP_HI.wav"]["level"] == "HI"
    assert rows["1002_IEO_HAP_HI.wav"]["sentence"] == "IEO"
    rejected = rejected_by_name(result)
    assert "expected 4 fields" in rejected["1001_DFA_ANG.wav"]
    assert "out of range" in rejected["0999_DFA_ANG_XX.wav"]
    assert "unknown emotion code 'XXX'" in rejected["1001_DFA_XXX_XX.wav"]
    assert "unknown sentence" in rejected["1001_ABC_ANG_XX.wav"]
    assert "unknown level" in rejected["1001_DFA_ANG_ZZ.wav"]

    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n")
    result = cremad.parse(root)
    genders = {Path(r["path"]).name[:4]: r["gender"] for r in result.rows}
    assert genders == {"1001": "male", "1002": "female", "1091": "unknown"}
    assert any("1091" in note for note in result.notes)
    assert list(result.to_frame().columns) == list(COLUMNS["cremad"])

    (root / "VideoDemographics.csv").write_text("id,sex\n1001,Male\n")
    with pytest.raises(ConfigError, match="ActorID and Sex"):
        cremad.parse(root)


def test_savee_nested_and_flat(tmp_path):
    root = make_tree(tmp_path / "SAVEE", [
        "AudioData/DC/a01.wav",
        "AudioData/DC/sa01.wav",
        "AudioData/DC/su02.wav",
        "AudioData/DC/n30.wav",
        "AudioData/Other/a01.wav",              # speaker unknown
        "ALL/JE_sa03.wav",
        "ALL/JK_su01.wav",
        "ALL/KL_h15.wav",
        "ALL/DC_s01.wav",                        # 's' alone is no code
        "ALL/XX_z01.wav",                        # unknown speaker and code
        "ALL/JE_d1.wav",                         # one-digit sentence
    ])
    result = savee.parse(root)
    got = {(r["speaker"], r["label_code"], r["sentence"]): r["emotion"] for r in result.rows}
    assert got == {
        ("DC", "a", "01"): "angry",
        ("DC", "sa", "01"): "sad",
        ("DC", "su", "02"): "surprised",
        ("DC", "n", "30"): "neutral",
        ("JE", "sa", "03"): "sad",
        ("JK", "su", "01"): "surprised",
        ("KL", "h", "15"): "happy",
    }
    assert {r["gender"] for r in result.rows} == {"male"}
    rejected = {Path(p).relative_to(root).as_posix(): r for p, r in result.rejected}
    assert set(rejected) == {"AudioData/Other/a01.wav", "ALL/DC_s01.wav", "ALL/XX_z01.wav",
                             "ALL/JE_d1.wav"}
    assert "folder 'Other'" in rejected["AudioData/Other/a01.wav"]
    assert "unknown emotion code 's'" in rejected["ALL/DC_s01.wav"]
    assert "unknown speaker 'XX'" in rejected["ALL/XX_z01.wav"]
    assert "file name is not" in rejected["ALL/JE_d1.wav"]


def test_savee_same_clip_in_both_layouts_is_a_duplicate(tmp_path):
    root = make_tree(tmp_path / "SAVEE", ["AudioData/DC/a01.wav", "flat/DC_a01.wav"])
    result = savee.parse(root)
    assert len(result.rows) == 1
    [(path, reason)] = result.rejected
    assert path.endswith("DC_a01.wav") and "duplicate of" in reason


def test_emodb(tmp_path):
    root = make_tree(tmp_path / "emodb", [
        "wav/03a01Fa.wav", "wav/08a02Lb.wav", "wav/16b10Tc.wav",
        "wav/03a01Xa.wav", "wav/99a01Fa.wav", "wav/03a01Fa_copy.wav",
        "lablaut/03a01Fa.lab",
    ])
    result = emodb.parse(root)
    rows = by_name(result)
    assert {n: (r["speaker"], r["gender"], r["emotion"], r["text"], r["version"])
            for n, r in rows.items()} == {
        "03a01Fa.wav": ("03", "male", "happy", "a01", "a"),
        "08a02Lb.wav": ("08", "female", "boredom", "a02", "b"),
        "16b10Tc.wav": ("16", "female", "sad", "b10", "c"),
    }
    rejected = rejected_by_name(result)
    assert "unknown emotion code 'X'" in rejected["03a01Xa.wav"]
    assert "unknown speaker '99'" in rejected["99a01Fa.wav"]
    assert "file name is not" in rejected["03a01Fa_copy.wav"]
    assert list(result.to_frame().columns) == list(COLUMNS["emodb"])


def test_duplicates_empty_files_and_macos_debris(tmp_path):
    root = make_tree(tmp_path / "rav", [
        "Actor_01/03-01-05-01-01-01-01.wav",
        "copy/Actor_01/03-01-05-01-01-01-01.wav",
        "Actor_01/._03-01-05-01-01-02-01.wav",
        "__MACOSX/Actor_01/._03-01-05-01-01-01-01.wav",
        ".hidden/Actor_01/03-01-05-01-02-01-01.wav",
    ])
    (root / "Actor_01" / "03-01-06-01-01-01-01.wav").write_bytes(b"")
    result = ravdess.parse(root)
    assert [Path(r["path"]).relative_to(root).as_posix() for r in result.rows] == [
        "Actor_01/03-01-05-01-01-01-01.wav"]
    rejected = {Path(p).relative_to(root).as_posix(): r for p, r in result.rejected}
    assert set(rejected) == {"copy/Actor_01/03-01-05-01-01-01-01.wav",
                             "Actor_01/._03-01-05-01-01-02-01.wav",
                             "Actor_01/03-01-06-01-01-01-01.wav"}
    assert "duplicate of" in rejected["copy/Actor_01/03-01-05-01-01-01-01.wav"]
    assert "AppleDouble" in rejected["Actor_01/._03-01-05-01-01-02-01.wav"]
    assert "0 bytes" in rejected["Actor_01/03-01-06-01-01-01-01.wav"]
    assert "3 rejected" in result.summary() and "duplicate of" in result.summary()


def test_git_lfs_pointers_are_rejected(tmp_path):
    root = tmp_path / "CREMA-D" / "AudioWAV"
    root.mkdir(parents=True)
    (root / "1001_DFA_ANG_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 12345\n")
    result = cremad.parse(tmp_path / "CREMA-D")
    assert result.rows == []
    assert "git lfs pull" in result.rejected[0][1]
    with pytest.raises(ConfigError, match="git lfs pull"):
        parse_corpus("cremad", tmp_path / "CREMA-D")


def test_relative_root_gives_relative_paths(tmp_path, monkeypatch):
    make_tree(tmp_path / "data" / "tess", ["OAF_angry/OAF_back_angry.wav"])
    monkeypatch.chdir(tmp_path)
    result = parse_corpus("tess", "data/tess")
    assert [r["path"] for r in result.rows] == ["data/tess/OAF_angry/OAF_back_angry.wav"]


def test_parse_corpus_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown corpus 'iemocap'"):
        parse_corpus("iemocap", tmp_path)
    with pytest.raises(ConfigError) as err:
        parse_corpus("ravdess", tmp_path / "nowhere")
    message = str(err.value)
    assert "'ravdess'" in message and str(tmp_path / "nowhere") in message
    assert "demo" in message and "corpora.ravdess" in message and "\n" not in message
    (tmp_path / "empty").mkdir()
    make_tree(tmp_path / "empty", ["readme.txt"])
    with pytest.raises(ConfigError, match="no audio files"):
        parse_corpus("tess", tmp_path / "empty")
    write_wav(tmp_path / "a.wav")
    with pytest.raises(ConfigError, match="is a file"):
        parse_corpus("tess", tmp_path / "a.wav")
    make_tree(tmp_path / "wrong", ["03-01-05-01-01-01-01.wav"])
    with pytest.raises(ConfigError, match="none of the 1 audio files"):
        parse_corpus("tess", tmp_path / "wrong")
    with pytest.raises(ConfigError, match="unknown parser option"):
        parse_corpus("tess", tmp_path / "wrong", include_song=True)
    assert parse_corpus("ravdess", tmp_path / "wrong", include_song=False).rows


def test_parsers_registry():
    assert set(PARSERS) == {"tess", "ravdess", "cremad", "savee", "emodb", "custom"}
    for name, columns in COLUMNS.items():
        assert columns[:6] == ("path", "corpus", "speaker", "gender", "emotion", "label_code")
        assert PARSERS[name].__doc__ and "<root>" in PARSERS[name].__doc__


# ------------------------------------------------------------------ manifest stage


def run_stage(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """prepare_manifest.py with ``args`` (and the repository's params.yaml unless given)."""
    params = [] if "--params" in args else ["--params", str(ROOT / "params.yaml")]
    return subprocess.run([sys.executable, "scripts/prepare_manifest.py", *args, *params],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_prepare_manifest_on_real_ravdess(real_ravdess, tmp_path):
    out = tmp_path / "manifests" / "ravdess.parquet"
    proc = run_stage("--corpus", "ravdess", "--root", str(real_ravdess), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{N_FILES} clips" in proc.stdout
    frame = pd.read_parquet(out)
    assert list(frame.columns) == list(COLUMNS["ravdess"]) and len(frame) == N_FILES
    assert (tmp_path / "manifests" / "ravdess_rejected.csv").read_text().strip() == "path,reason"
    assert [p.name for p in out.parent.iterdir()] != []
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".partial")]


def test_prepare_manifest_rejections_params_and_errors(tmp_path):
    root = make_tree(tmp_path / "rav", ["Actor_02/03-01-05-01-01-01-02.wav",
                                        "Actor_02/03-02-05-01-01-01-02.wav"])
    params = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(
        params.replace("ravdess_song: false", "ravdess_song: true")
        .replace("ravdess: data/demo/ravdess", f"ravdess: {root}"))
    out = tmp_path / "m" / "ravdess.parquet"
    proc = run_stage("--corpus", "ravdess", "--params", str(tmp_path / "params.yaml"),
                     "--root", str(root), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out)) == 2  # song kept by manifest.ravdess_song

    proc = run_stage("--corpus", "ravdess", "--root", str(root), "--out", str(out))  # no song
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out)) == 1
    rejected = pd.read_csv(tmp_path / "m" / "ravdess_rejected.csv")
    assert list(rejected.columns) == ["path", "reason"] and len(rejected) == 1
    assert "song" in rejected.loc[0, "reason"]

    proc = run_stage("--corpus", "ravdess", "--root", str(tmp_path / "missing"),
                     "--out", str(tmp_path / "x.parquet"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert not (tmp_path / "x.parquet").exists()

    proc = run_stage("--help")
    assert proc.returncode == 0 and "--corpus" in proc.stdout and "params.yaml" in proc.stdout


# ------------------------------------------------------------------ bad audio files


@pytest.mark.parametrize("kind", ["corrupt", "empty", "text", "missing"])
def test_load_audio_bad_files_give_clear_errors(tmp_path, kind):
    path = tmp_path / f"{kind}_clip.wav"
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("this is not audio\n" * 20)
    for reader in (load_audio, audio_info):
        with pytest.raises(AudioError) as err:
            reader(path)
        assert path.name in str(err.value)
        assert err.value.path == str(path)
        assert "\n" not in str(err.value)


# ------------------------------------------------------------------ demo corpora

DEMO_EMOTIONS = {
    "tess": {"neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"},
    "ravdess": {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"},
    "cremad": {"neutral", "happy", "sad", "angry", "fearful", "disgust"},
    "savee": {"neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"},
    "emodb": {"neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"},
}


def _demo_ready() -> bool:
    try:
        return importlib.util.find_spec("ser.corpora.demo") is not None and hasattr(
            importlib.import_module("ser.corpora.demo"), "generate_corpus")
    except ImportError:
        return False


@pytest.mark.skipif(not _demo_ready(),
                    reason="ser.corpora.demo.generate_corpus not available yet")
@pytest.mark.parametrize("corpus", sorted(DEMO_EMOTIONS))
def test_demo_corpora_parse_cleanly(tmp_path, corpus):
    from ser.corpora.demo import generate_corpus

    generate_corpus(corpus, tmp_path / corpus, preset="tiny", seed=0)
    result = parse_corpus(corpus, tmp_path / corpus)
    assert result.rejected == [], result.summary()
    assert {r["emotion"] for r in result.rows} == DEMO_EMOTIONS[corpus]
    assert "unknown" not in {r["gender"] for r in result.rows}  # CREMA-D: demographics CSV
    assert all(os.path.exists(r["path"]) for r in result.rows)
