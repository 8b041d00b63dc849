"""Optional extras of ``predict.py``: what was said, and a spoken answer.

Both features run fully offline and import their heavy, optional
dependencies only when used, so the rest of the package works without them:

* :func:`transcribe` uses ``speech_recognition``'s CMU PocketSphinx recogniser
  (``pip install pocketsphinx SpeechRecognition``; English ``en-US`` model is
  bundled with SpeechRecognition).
* :func:`speak` uses ``pyttsx3`` with its eSpeak NG driver, which needs the
  system library (``apt-get install espeak-ng``, ``brew install espeak-ng``).
  Playing aloud additionally needs an audio player (``aplay`` from
  ``alsa-utils``, ``paplay``/``pw-play``, ``afplay`` on macOS) and a sound
  device; on a headless machine write the answer to a WAV with ``to_file``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from ser.audio import load_audio
from ser.errors import SerError

#: Sample rate, width and channel count PocketSphinx's acoustic models expect.
SPHINX_SR = 16_000
#: Speaking rate (words per minute) when ``rate`` is not given; eSpeak NG's own default.
DEFAULT_RATE = 175

# Recogniser pre-processing.  Synthetic or gated recordings contain stretches of
# exact digital silence; PocketSphinx's log-mel features and cepstral mean
# normalisation degrade badly on them (an espeak-ng clip of "kids are talking by
# the door" comes back as "the war").  Its decoder has a ``-dither`` option for
# exactly this, but speech_recognition does not expose the decoder config, so we
# add the dither ourselves: the clip is scaled to a fixed peak and seeded
# Gaussian noise ~54 dB below that peak is added (inaudible on real recordings,
# deterministic for a given file), plus a little silence either side.
_PEAK = 0.5
_DITHER_RMS = 1e-3
_PAD_S = 0.3
_DITHER_SEED = 0

_PIP_HINT = "pip install pocketsphinx SpeechRecognition"
_ESPEAK_HINT = (
    "install eSpeak NG (Debian/Ubuntu: apt-get install espeak-ng; "
    "macOS: brew install espeak-ng) and pip install pyttsx3"
)
# Command-line players tried in order for :func:`speak` without ``to_file``.
_PLAYERS: tuple[tuple[str, ...], ...] = (
    ("aplay", "-q"),
    ("paplay",),
    ("pw-play",),
    ("afplay",),
)
_PLAY_TIMEOUT_S = 120
# The one pyttsx3 engine of this process (eSpeak NG initialises once per process).
_ENGINE = None


def transcribe(path: str | Path, *, language: str = "en-US") -> str:
    """Return what is said in an audio file, recognised offline by PocketSphinx.

    Parameters
    ----------
    path
        Any audio file :func:`ser.audio.load_audio` reads, at any sample rate
        and channel count; it is mixed to mono and resampled to 16 kHz 16-bit
        in memory first.
    language
        Language tag of a PocketSphinx model installed for SpeechRecognition.
        Only ``"en-US"`` ships with it.

    Returns
    -------
    str
        The recognised words in lower case, or ``""`` if nothing was recognised
        (silence, noise). PocketSphinx is a small offline model: expect some
        words to be wrong, especially on noisy or accented speech.

    Raises
    ------
    AudioError
        If the file is missing or cannot be read as audio.
    SerError
        If SpeechRecognition/PocketSphinx are not installed or the language
        has no model.
    """
    sr_module = _import_speech_recognition()
    y, _ = load_audio(path, sr=SPHINX_SR, mono=True)
    audio = sr_module.AudioData(_sphinx_pcm(y), SPHINX_SR, 2)
    try:
        text = sr_module.Recognizer().recognize_sphinx(audio, language=language)
    except sr_module.UnknownValueError:
        return ""
    except sr_module.RequestError as exc:
        raise SerError(
            f"cannot transcribe {path}: PocketSphinx is not usable for language "
            f"{language!r} ({exc}); only 'en-US' is bundled - use it, or reinstall "
            f"with {_PIP_HINT}"
        ) from None
    return " ".join(str(text).split())


def speak(
    text: str,
    *,
    to_file: str | Path | None = None,
    rate: int | None = None,
) -> Path | None:
    """Say ``text`` aloud, or write it as speech to a WAV file.

    Speech is synthesised with ``pyttsx3``'s eSpeak NG driver (22.05 kHz mono
    16-bit). If pyttsx3 cannot be used (not installed, or its driver fails),
    the ``espeak-ng`` command (``espeak-ng -w``) is used instead.

    Without ``to_file`` the speech is synthesised to a temporary WAV and played
    with the first working player of ``aplay``, ``paplay``, ``pw-play`` or
    ``afplay`` (``winsound`` on Windows). pyttsx3's own ``say()`` does the same
    on Linux but silently ignores a missing player or sound device; doing it
    here turns that into a clear error.

    Parameters
    ----------
    text
        What to say; must contain something besides white space.
    to_file
        Write a ``.wav`` file here instead of playing it (works headless).
        Its folder must exist; an existing file is replaced only under ``--force``
        (:func:`ser.outputs.replacing_allowed`), a folder or a link never.
    rate
        Speaking rate in words per minute, 80-450 (default :data:`DEFAULT_RATE`).

    Returns
    -------
    Path or None
        The WAV written, or ``None`` when the speech was played.

    Raises
    ------
    SerError
        If the text is empty, the output path is unusable, eSpeak NG is not
        installed, or (when playing) no audio player/sound device works.
    """
    # Control characters would be read as eSpeak embedded commands.
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in str(text))
    if not text.strip():
        raise SerError("nothing to say: the text to speak is empty")
    rate = DEFAULT_RATE if rate is None else int(rate)
    if not 80 <= rate <= 450:
        raise SerError(f"speaking rate {rate} is out of range; use 80-450 words per minute")

    if to_file is not None:
        target = Path(to_file)
        if target.suffix.lower() != ".wav":
            raise SerError(f"{target}: the spoken answer is written as WAV; name it *.wav")
        if not target.parent.is_dir():
            raise SerError(f"{target}: folder {target.parent} does not exist; create it first")

    with tempfile.TemporaryDirectory(prefix="ser-speak-") as tmp:
        wav = Path(tmp) / "speech.wav"
        _synthesise(text.strip(), wav, rate)
        if to_file is None:
            _play(wav)
            return None
        from ser.outputs import atomic_path

        try:
            # A WAV cannot say who wrote it: an existing one is never taken as the tool's.
            with atomic_path(target, owned=lambda _path: False, option="--speak-to") as out:
                shutil.copyfile(wav, out)
        except OSError as exc:
            raise SerError(
                f"{target}: cannot write the spoken answer ({exc.strerror or exc}); "
                "check the path and its permissions"
            ) from None
        return target


# --------------------------------------------------------------------- helpers


def _import_speech_recognition():
    """Import ``speech_recognition`` and check PocketSphinx, or raise a hint."""
    try:
        sr_module = importlib.import_module("speech_recognition")
        importlib.import_module("pocketsphinx")
    except ImportError as exc:
        raise SerError(
            f"transcription needs SpeechRecognition and PocketSphinx ({exc}); "
            f"install them with: {_PIP_HINT}"
        ) from None
    return sr_module


def _sphinx_pcm(y: np.ndarray) -> bytes:
    """16 kHz mono float samples -> padded, dithered little-endian int16 bytes."""
    y = np.asarray(y, dtype=np.float64)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1e-4:  # leave (near-)silent clips alone rather than amplify noise
        y = y * (_PEAK / peak)
    pad = np.zeros(int(_PAD_S * SPHINX_SR))
    y = np.concatenate([pad, y, pad])
    y = y + _DITHER_RMS * np.random.default_rng(_DITHER_SEED).standard_normal(y.size)
    return (np.clip(y, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _synthesise(text: str, wav: Path, rate: int) -> None:
    """Write ``text`` as speech to ``wav``: pyttsx3 first, else ``espeak-ng -w``."""
    problems = []
    try:
        _synthesise_pyttsx3(text, wav, rate)
    except Exception as exc:  # any driver failure (ImportError, RuntimeError, OSError...)
        problems.append(f"pyttsx3: {_one_line(exc)}")
    else:
        if _is_speech_wav(wav):
            return
        problems.append("pyttsx3 wrote no audio")

    exe = shutil.which("espeak-ng")
    if exe is None:
        problems.append("espeak-ng: command not found")
    else:
        try:
            proc = subprocess.run(
                [exe, "-s", str(rate), "-w", str(wav), "--", text],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"espeak-ng: {_one_line(exc)}")
        else:
            if proc.returncode == 0 and _is_speech_wav(wav):
                return
            problems.append(f"espeak-ng: exit {proc.returncode} {_one_line(proc.stderr)}".strip())
    raise SerError(f"cannot synthesise speech ({'; '.join(problems)}); {_ESPEAK_HINT}")


def _synthesise_pyttsx3(text: str, wav: Path, rate: int) -> None:
    global _ENGINE
    if _ENGINE is None:
        import pyttsx3

        # Keep a strong reference: pyttsx3 caches engines only weakly, and a
        # collected engine's driver leaves a dangling eSpeak callback behind
        # (ReferenceError, then no audio) for the next engine in the process.
        _ENGINE = pyttsx3.init("espeak")
    engine = _ENGINE
    # The rate goes in as an eSpeak embedded command (Ctrl-A, "<wpm>S") rather
    # than engine.setProperty("rate", ...): with pyttsx3 2.99 + espeak-ng 1.51
    # the property only takes effect for the first utterance of a process, later
    # changes are silently ignored. The embedded command applies every time.
    text = f"\x01{rate}S {text}"
    # The espeak driver prints "Audio saved to ..." on stdout; keep stdout clean
    # for callers that print results (e.g. JSON) there.
    with contextlib.redirect_stdout(io.StringIO()):
        engine.save_to_file(text, str(wav))
        engine.runAndWait()


def _is_speech_wav(wav: Path) -> bool:
    """True if ``wav`` exists and soundfile reads at least one frame from it."""
    if not wav.is_file() or wav.stat().st_size <= 44:
        return False
    import soundfile as sf

    try:
        return sf.info(str(wav)).frames > 0
    except (sf.LibsndfileError, RuntimeError):
        return False


def _play(wav: Path) -> None:
    """Play a WAV on the default sound device, or raise a SerError saying why not."""
    if sys.platform == "win32":
        import winsound

        try:
            winsound.PlaySound(str(wav), winsound.SND_FILENAME)
        except RuntimeError as exc:
            raise SerError(
                f"cannot play the spoken answer ({exc}); check the sound device, "
                "or write it to a file instead (predict.py --speak-to answer.wav)"
            ) from None
        return

    problems = []
    for cmd in _PLAYERS:
        exe = shutil.which(cmd[0])
        if exe is None:
            continue
        try:
            proc = subprocess.run(
                [exe, *cmd[1:], str(wav)],
                capture_output=True,
                text=True,
                timeout=_PLAY_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{cmd[0]}: {_one_line(exc)}")
            continue
        if proc.returncode == 0:
            return
        problems.append(f"{cmd[0]}: {_one_line(proc.stderr) or f'exit {proc.returncode}'}")
    found = (
        "; ".join(problems)
        if problems
        else ("no audio player found (tried " + ", ".join(c[0] for c in _PLAYERS) + ")")
    )
    raise SerError(
        f"cannot play the spoken answer: {found}. Install a player and check the sound "
        "device (Debian/Ubuntu: apt-get install alsa-utils), or on a headless machine "
        "write it to a file instead (predict.py --speak-to answer.wav)"
    )


def _one_line(obj: object) -> str:
    """Last non-empty line of a message (stderr dumps and tracebacks are long)."""
    lines = [ln.strip() for ln in str(obj).splitlines() if ln.strip()]
    return lines[-1] if lines else ""
