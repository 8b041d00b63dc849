"""The synthetic demo corpus: layouts, format, determinism, speech-likeness, difficulty."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import ser.corpora.demo.generate as demo_generate
from ser.corpora import CORPUS_CODES
from ser.corpora.demo import CORPORA, PRESETS, generate_corpus, plan_corpus
from ser.corpora.demo.syllables import text_to_syllables
from ser.corpora.demo.synth import derive_rng
from ser.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
SEED = 3

#: The file-name pattern of each corpus, relative to its root.
PATTERNS: dict[str, re.Pattern[str]] = {
    "tess": re.compile(r"(?P<folder>(?P<spk0>OAF|YAF)_[A-Za-z_]+)/"
                       r"(?P<spk>OAF|YAF)_(?P<word>[a-z]+)_(?P<emo>[a-z]+)\.wav"),
    "ravdess": re.compile(r"Actor_(?P<spk0>\d\d)/03-01-(?P<emo>0[1-8])-(?P<level>0[12])-"
                          r"(?P<stmt>0[12])-(?P<rep>0[12])-(?P<spk>\d\d)\.wav"),
    "cremad": re.compile(r"AudioWAV/(?P<spk>1\d{3})_(?P<sent>[A-Z]{3})_(?P<emo>[A-Z]{3})_"
                         r"(?P<level>LO|MD|HI|XX)\.wav"),
    "savee": re.compile(r"AudioData/(?P<spk0>DC|JE|JK|KL)/(?P<emo>sa|su|a|d|f|h|n)"
                        r"(?P<num>\d\d)\.wav"),
    "emodb": re.compile(r"wav/(?P<spk>\d\d)(?P<text>[ab]\d\d)(?P<emo>[WLEAFTN])(?P<ver>[a-f])"
                        r"\.wav"),
}
RATES = {"tess": 24414, "ravdess": 48000, "cremad": 16000, "savee": 44100, "emodb": 16000}
FULL_SIZES = {"tess": 2800, "ravdess": 1440, "cremad": 7442, "savee": 480, "emodb": 535}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Every corpus at the tiny preset, written once for the module."""
    root = tmp_path_factory.mktemp("demo_tiny")
    for corpus in CORPORA:
        n = generate_corpus(corpus, root / corpus, preset="tiny", seed=SEED, workers=2)
        assert n == len(plan_corpus(corpus, preset="tiny"))
    return root


def _wavs(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))


def _parse(corpus: str, relpath: str) -> dict[str, str]:
    m = PATTERNS[corpus].fullmatch(relpath)
    assert m, f"{corpus}: bad name {relpath}"
    d = m.groupdict()
    d.setdefault("spk", d.get("spk0"))
    if d.get("spk0") is not None:
        assert d["spk0"] == d["spk"], relpath
    return d


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("corpus", CORPORA)
def test_tiny_layout_names_and_labels(tiny: Path, corpus: str) -> None:
    files = _wavs(tiny / corpus)
    assert files == sorted(c.relpath for c in plan_corpus(corpus, preset="tiny"))
    parsed = [_parse(corpus, f) for f in files]
    emotions = {p["emo"] for p in parsed}
    assert emotions <= set(CORPUS_CODES[corpus]) | {"fear"}
    speakers = {p["spk"] for p in parsed}
    assert len(speakers) == 2 if corpus == "tess" else len(speakers) >= 2
    assert 25 <= len(files) <= 60
    # every emotion of the corpus, for every speaker
    for spk in speakers:
        assert {p["emo"] for p in parsed if p["spk"] == spk} == set(CORPUS_CODES[corpus])


def test_tess_folder_names_are_the_inconsistent_real_ones(tiny: Path) -> None:
    folders = {p.name for p in (tiny / "tess").iterdir() if p.is_dir()}
    assert {"OAF_Fear", "OAF_Pleasant_surprise", "OAF_Sad", "YAF_pleasant_surprised",
            "YAF_fear", "OAF_angry"} <= folders
    assert len(folders) == 14
    for f in _wavs(tiny / "tess"):
        folder, name = f.split("/")
        assert name.startswith(folder[:4]), f  # speaker prefix matches the folder


def test_ravdess_fields(tiny: Path) -> None:
    for f in plan_corpus("ravdess", preset="full"):
        p = _parse("ravdess", f.relpath)
        assert not (p["emo"] == "01" and p["level"] == "02"), "neutral has no strong intensity"
        assert f.speaker.sex == ("male" if int(p["spk"]) % 2 else "female")
    full = plan_corpus("ravdess", preset="full")
    assert Counter(c.speaker.id for c in full) == {f"{a:02d}": 60 for a in range(1, 25)}
    demo = plan_corpus("ravdess", preset="demo")
    assert len({c.speaker.id for c in demo}) == 8 and len(demo) == 8 * 15


def test_cremad_levels_and_demographics(tiny: Path) -> None:
    for clip in plan_corpus("cremad", preset="full"):
        p = _parse("cremad", clip.relpath)
        if p["sent"] != "IEO" or p["emo"] == "NEU":
            assert p["level"] == "XX", clip.relpath
        else:
            assert p["level"] in {"LO", "MD", "HI"}, clip.relpath
    levels = {_parse("cremad", c.relpath)["level"] for c in plan_corpus("cremad", preset="demo")}
    assert levels == {"LO", "MD", "HI", "XX"}
    with open(tiny / "cremad" / "VideoDemographics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["ActorID", "Age", "Sex", "Race", "Ethnicity"]
    assert len(rows) == 91 and rows[0]["ActorID"] == "1001"
    sex = {r["ActorID"]: r["Sex"] for r in rows}
    assert Counter(sex.values()) == {"Male": 48, "Female": 43}
    for clip in plan_corpus("cremad", preset="full"):
        assert sex[clip.speaker.id].lower() == clip.speaker.sex


def test_savee_neutral_has_twice_the_sentences() -> None:
    for preset in PRESETS:
        counts = Counter((c.speaker.id, _parse("savee", c.relpath)["emo"])
                         for c in plan_corpus("savee", preset=preset))
        for (_spk, emo), n in counts.items():
            assert n == 2 * counts[_spk, "a"] if emo == "n" else n == counts[_spk, "a"]
    assert {c.speaker.sex for c in plan_corpus("savee", preset="full")} == {"male"}


def test_emodb_speakers_and_sex() -> None:
    males = {"03", "10", "11", "12", "15"}
    for clip in plan_corpus("emodb", preset="full"):
        p = _parse("emodb", clip.relpath)
        assert clip.speaker.sex == ("male" if p["spk"] in males else "female")
    counts = Counter(_parse("emodb", c.relpath)["emo"] for c in plan_corpus("emodb", preset="full"))
    assert counts == {"W": 127, "L": 81, "E": 46, "A": 69, "F": 71, "T": 62, "N": 79}


@pytest.mark.parametrize("corpus", CORPORA)
def test_preset_sizes(corpus: str) -> None:
    sizes = [len(plan_corpus(corpus, preset=p)) for p in PRESETS]
    assert sizes == sorted(sizes)
    assert sizes[2] == FULL_SIZES[corpus]
    full = plan_corpus(corpus, preset="full")
    assert len({c.relpath for c in full}) == len(full), "duplicate file names"


def test_demo_preset_totals() -> None:
    sizes = {c: len(plan_corpus(c, preset="demo")) for c in ("tess", "ravdess", "cremad", "savee")}
    assert sizes == {"tess": 112, "ravdess": 120, "cremad": 144, "savee": 96}


# --------------------------------------------------------------------------- format / API


@pytest.mark.parametrize("corpus", CORPORA)
def test_format(tiny: Path, corpus: str) -> None:
    durations = []
    for f in _wavs(tiny / corpus):
        info = sf.info(str(tiny / corpus / f))
        assert (info.samplerate, info.channels) == (RATES[corpus], 1)
        assert (info.format, info.subtype) == ("WAV", "PCM_16")
        durations.append(info.duration)
    lo, hi = (2.0, 6.0) if corpus == "ravdess" else (1.0, 5.0)  # RAVDESS: long silences
    assert lo <= min(durations) and max(durations) <= hi, (min(durations), max(durations))


def test_unknown_corpus_or_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown demo corpus 'iemocap'.*tess"):
        generate_corpus("iemocap", tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown demo preset 'huge'.*tiny"):
        generate_corpus("tess", tmp_path / "x", preset="huge")
    assert not (tmp_path / "x").exists()


def test_deterministic_and_seed_dependent(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_corpus("emodb", again, preset="tiny", seed=SEED)  # one process this time
    files = _wavs(again)
    assert files == _wavs(tiny / "emodb")
    for f in files:
        assert (again / f).read_bytes() == (tiny / "emodb" / f).read_bytes(), f
    other = tmp_path / "other"
    generate_corpus("emodb", other, preset="tiny", seed=SEED + 1)
    assert all((other / f).read_bytes() != (again / f).read_bytes() for f in files)
    # corpora draw from separate streams
    assert derive_rng(SEED, "tess", "x").random() != derive_rng(SEED, "emodb", "x").random()


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "emodb"
    generate_corpus("emodb", out, preset="tiny", seed=SEED + 1)  # a previous run
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = {"n": 0}
    real_write = demo_generate._write

    def failing(job):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real_write(job)

    monkeypatch.setattr(demo_generate, "_write", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus("emodb", out, preset="tiny", seed=SEED)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the previous output is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["emodb"]  # no partial folder left over
    monkeypatch.setattr(demo_generate, "_write", real_write)
    generate_corpus("emodb", out, preset="tiny", seed=SEED)  # its own output: replaced whole
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} != before
    assert [p.name for p in tmp_path.iterdir()] == ["emodb"]


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "emodb"
    res = subprocess.run(
        [sys.executable, "scripts/generate_demo.py", "--corpus", "emodb", "--preset", "tiny",
         "--out", str(out), "--params", "params.yaml"], cwd=ROOT, capture_output=True,
        text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"wrote 28 clips to {out}"
    res = subprocess.run(
        [sys.executable, "scripts/generate_demo.py", "--corpus", "tess", "--out",
         str(tmp_path / "tess"), "--params", str(tmp_path / "missing.yaml")], cwd=ROOT,
        capture_output=True, text=True, check=False)
    assert res.returncode == 2 and res.stderr.startswith("error: ")


# --------------------------------------------------------------------------- speech-likeness


def _frame_db(y: np.ndarray, sr: int) -> np.ndarray:
    hop = sr // 100
    frames = y[: len(y) // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def test_letter_to_sound_is_stable() -> None:
    sylls = text_to_syllables("Kids are talking by the door")
    assert len(sylls) == 7 and sylls[-1].phrase_end
    assert [s.vowel for s in text_to_syllables("say the word back")] == ["eI", "E", "O", "ae"]
    assert len(text_to_syllables(
        "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück",
        language="de", max_syllables=9)) <= 9


def test_audio_is_speech_like(tiny: Path) -> None:
    import librosa

    clips = {"male": "Actor_01/03-01-01-01-01-01-01.wav",
             "female": "Actor_02/03-01-01-01-01-01-02.wav"}
    medians = {}
    for sex, rel in clips.items():
        y, sr = sf.read(str(tiny / "ravdess" / rel))
        db = _frame_db(y, sr)
        loud = db.max()
        # silence at both ends, like the real RAVDESS clips
        assert db[:20].max() < loud - 25 and db[-20:].max() < loud - 25
        # a syllabic envelope: dips between syllables inside the speech
        speech = db[db > loud - 45]
        assert np.ptp(speech) > 20
        active = db > loud - 25
        assert 0.2 < active.mean() < 0.8
        y16 = librosa.resample(y, orig_sr=sr, target_sr=16000)
        f0, voiced, _ = librosa.pyin(y16, fmin=60, fmax=600, sr=16000, frame_length=1024,
                                     hop_length=320)
        assert voiced.mean() > 0.15
        medians[sex] = float(np.nanmedian(f0))
        assert 70 < medians[sex] < 400
        assert np.nanpercentile(f0, 90) / np.nanpercentile(f0, 10) > 1.15  # intonation
    assert medians["female"] > 1.25 * medians["male"]


def test_emotions_change_the_voice(tiny: Path) -> None:
    """Angry is louder and brighter than sad, for the same actor and statement."""
    for actor in ("01", "02", "03", "04"):
        ang, sr = sf.read(str(tiny / "ravdess" / f"Actor_{actor}/03-01-05-01-01-01-{actor}.wav"))
        sad, _ = sf.read(str(tiny / "ravdess" / f"Actor_{actor}/03-01-04-01-01-01-{actor}.wav"))
        assert np.percentile(_frame_db(ang, sr), 95) > np.percentile(_frame_db(sad, sr), 95) + 4
        assert _centroid(ang, sr) > _centroid(sad, sr)


def _centroid(y: np.ndarray, sr: int) -> float:
    """Spectral centroid (Hz) below 8 kHz."""
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    band = freqs < 8000
    return float((spec[band] * freqs[band]).sum() / spec[band].sum())


# --------------------------------------------------------------------------- difficulty


def _mfcc_stats(path: Path) -> np.ndarray:
    import librosa

    y, sr = sf.read(str(path), dtype="float32")
    y = librosa.resample(y, orig_sr=sr, target_sr=16000)
    y, _ = librosa.effects.trim(y, top_db=30)
    m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=40, n_fft=512, hop_length=160, n_mels=64)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)])


#: Held-out speakers of the speaker-independent check (TESS: train OAF, test YAF).
HELD_OUT = {"tess": {"YAF"}, "ravdess": {"07", "08"}, "cremad": {"1006", "1014"},
            "savee": {"KL"}}


def test_demo_is_learnable_but_not_trivial(tmp_path: Path) -> None:
    """Pooled speaker-independent UAR of MFCC + SVM: well above chance, well below 1."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    feats, labels, held = [], [], []
    for corpus, speakers in HELD_OUT.items():
        generate_corpus(corpus, tmp_path / corpus, preset="demo", seed=2026, workers=2)
        for clip in plan_corpus(corpus, preset="demo"):
            feats.append(_mfcc_stats(tmp_path / corpus / clip.relpath))
            labels.append(clip.emotion)
            held.append(clip.speaker.id in speakers)
    X, y, test = np.array(feats), np.array(labels), np.array(held)

    def model() -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("svm", SVC(C=10.0, gamma="scale"))])

    pred = model().fit(X[~test], y[~test]).predict(X[test])
    uar_speaker = balanced_accuracy_score(y[test], pred)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test.mean(), stratify=y,
                                              random_state=0)
    uar_random = balanced_accuracy_score(y_te, model().fit(X_tr, y_tr).predict(X_te))
    chance = 1.0 / len(set(y))
    print(f"\ndemo UAR: speaker-independent {uar_speaker:.3f}, random {uar_random:.3f}, "
          f"chance {chance:.3f}")
    assert 2 * chance < uar_speaker < 0.95
    assert uar_random > uar_speaker
