"""Transcription (PocketSphinx) and spoken answers (pyttsx3 / eSpeak NG), offline.

The test clip is synthesised with ``espeak-ng``. Tests that need it are
skipped when it is not installed on a developer machine, and fail on CI
(``CI`` set), so they can never silently not run there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import load_audio
from ser.errors import AudioError, SerError
from ser.predict import speech as speech_io
from ser.predict.speech import speak, transcribe

SENTENCE = "kids are talking by the door"
CONTENT_WORDS = {"kids", "talking", "door"}


@pytest.fixture(scope="module")
def espeak_ng() -> str:
    """Path of the ``espeak-ng`` command (skip, or fail on CI, without it)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        msg = "espeak-ng not installed (apt-get install espeak-ng)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}; it is required on CI")
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="module")
def clip(espeak_ng: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``SENTENCE`` spoken by espeak-ng (US English voice, 22.05 kHz mono)."""
    path = tmp_path_factory.mktemp("speech") / "kids.wav"
    subprocess.run([espeak_ng, "-v", "en-us", "-w", str(path), SENTENCE], check=True)
    return path


def _content_words(text: str) -> set[str]:
    return CONTENT_WORDS & set(text.split())


# ----------------------------------------------------------------- transcribe


def test_transcribe_espeak_clip(clip: Path) -> None:
    text = transcribe(clip)
    # PocketSphinx is imperfect; two of the three content words is a robust bar
    # (measured with espeak-ng 1.51: every word comes back).
    assert len(_content_words(text)) >= 2, text


def test_transcribe_any_rate_and_channels(clip: Path, tmp_path: Path) -> None:
    y, _ = load_audio(clip, sr=44_100)
    stereo = np.stack([y, 0.6 * y], axis=1)
    path = tmp_path / "kids_44k_stereo.wav"
    sf.write(path, stereo, 44_100, subtype="PCM_16")
    assert sf.info(str(path)).channels == 2
    text = transcribe(path)
    assert len(_content_words(text)) >= 2, text


def test_transcribe_silence_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(8_000, dtype=np.float32), 8_000)
    assert transcribe(path) == ""


def test_transcribe_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="not found") as info:
        transcribe(path)
    assert str(path) in str(info.value)


def test_transcribe_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioError, match="not a readable audio file") as info:
        transcribe(path)
    assert str(path) in str(info.value)


def test_transcribe_unknown_language(clip: Path) -> None:
    with pytest.raises(SerError, match="en-US") as info:
        transcribe(clip, language="xx-XX")
    assert str(clip) in str(info.value)


def test_transcribe_without_dependencies(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "speech_recognition", None)  # import fails
    with pytest.raises(SerError, match="pip install pocketsphinx SpeechRecognition"):
        transcribe(clip)


# ---------------------------------------------------------------------- speak


def _check_speech_wav(path: Path) -> np.ndarray:
    y, sr = sf.read(path, dtype="float32")
    assert y.ndim == 1 and sr > 0
    assert y.size / sr > 0.3
    rms = float(np.sqrt(np.mean(y**2)))
    assert rms > 0.02, f"RMS {rms:.4f}: looks silent"
    return y


def test_speak_to_file(espeak_ng: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "answer.wav"
    assert speak(SENTENCE, to_file=str(out)) == out
    _check_speech_wav(out)
    assert capsys.readouterr().out == ""  # pyttsx3's "Audio saved to" is swallowed
    # It is speech, not just noise: the recogniser finds at least one content word
    # (measured: "kids are talking by the gold").
    assert _content_words(transcribe(out)), transcribe(out)


def test_speak_rate_changes_duration(espeak_ng: str, tmp_path: Path) -> None:
    slow = speak(SENTENCE, to_file=tmp_path / "slow.wav", rate=100)
    fast = speak(SENTENCE, to_file=tmp_path / "fast.wav", rate=300)
    assert sf.info(str(slow)).duration > 1.5 * sf.info(str(fast)).duration


def test_speak_falls_back_to_espeak_cli(
    espeak_ng: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def broken(*args: object) -> None:
        calls.append(args)
        raise RuntimeError("could not initialize espeak")

    monkeypatch.setattr(speech_io, "_synthesise_pyttsx3", broken)
    out = speak(SENTENCE, to_file=tmp_path / "cli.wav")
    assert calls, "pyttsx3 was not tried first"
    _check_speech_wav(out)


def test_speak_without_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech_io, "_ENGINE", None)  # forget a cached engine
    monkeypatch.setitem(sys.modules, "pyttsx3", None)  # pyttsx3 not installed
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng command either
    with pytest.raises(SerError, match="apt-get install espeak-ng"):
        speak(SENTENCE, to_file=tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


def test_speak_without_audio_player(espeak_ng: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows plays through winsound, not a command")
    monkeypatch.setattr(speech_io, "_PLAYERS", (("ser-test-no-such-player",),))
    with pytest.raises(SerError, match="--speak-to"):
        speak("hello")


@pytest.mark.parametrize(
    ("name", "match"),
    [("missing/answer.wav", "does not exist"), ("answer.mp3", r"\*\.wav")],
)
def test_speak_bad_target(tmp_path: Path, name: str, match: str) -> None:
    target = tmp_path / name
    with pytest.raises(SerError, match=match) as info:
        speak("hello", to_file=target)
    assert str(target) in str(info.value)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_speak_empty_text(text: str) -> None:
    with pytest.raises(SerError, match="empty"):
        speak(text)


def test_optional_imports_are_lazy() -> None:
    code = (
        "import sys, ser.predict.speech; "
        "bad = {'pyttsx3', 'speech_recognition', 'pocketsphinx'} & set(sys.modules); "
        "sys.exit(sorted(bad) or 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
