"""Reading audio files: one place that turns bad files into clear errors."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.errors import AudioError, SerError


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Return soundfile's header info, raising :class:`AudioError` on bad input."""
    path = Path(path)
    _check_file(path)
    try:
        return sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(path, _unreadable(exc)) from None


def load_audio(
    path: str | Path,
    *,
    sr: int | None = None,
    mono: bool = True,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Load an audio file as float32, optionally mixed to mono and resampled.

    Parameters
    ----------
    path
        Any format libsndfile reads (WAV, FLAC, OGG, AIFF, ...).
    sr
        Target sample rate; ``None`` keeps the file's own rate.
    mono
        Average the channels into one.
    max_seconds
        Decode at most this many seconds from the start of the file (``None``:
        all). Only that much is read from disk, so memory stays flat however
        long the recording is.

    Returns
    -------
    y, sr
        Samples (``(n,)`` if mono else ``(channels, n)``) and their rate.

    Raises
    ------
    AudioError
        If the file is missing, empty, not audio, corrupt or holds no samples.
    """
    path = Path(path)
    _check_file(path)
    try:
        # bytes: a name that is not valid UTF-8 still opens (str would not encode)
        with sf.SoundFile(os.fsencode(path)) as fh:
            file_sr = fh.samplerate
            frames = -1 if max_seconds is None else max(1, int(np.ceil(max_seconds * file_sr)))
            data = fh.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(path, _unreadable(exc)) from None
    if data.shape[0] == 0:
        raise AudioError(path, "holds no audio samples (0 frames); re-export or remove it")
    if not np.all(np.isfinite(data)):
        raise AudioError(path, "contains NaN or infinite samples; the file is corrupt")
    y = data.mean(axis=1) if mono else data.T
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr is not None and sr != file_sr:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
        file_sr = sr
    return y, int(file_sr)


def rms_db(y: np.ndarray) -> float:
    """Level of a signal's varying part in dB re full scale (DC removed; ``-inf`` for silence).

    A constant offset (DC) carries no sound, so it counts as silence.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return float("-inf")
    ac = y - y.mean()
    power = float(np.mean(ac * ac))
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def wav_truncation(path: str | Path) -> str | None:
    """If ``path`` is a RIFF/WAVE file whose data chunk claims more bytes than the file holds,
    say so; else ``None``.

    libsndfile silently decodes what is there, so a download cut short would
    otherwise become a shorter, valid-looking clip. Reads only the header
    (never opens anything but a regular file).
    """
    path = Path(path)
    try:
        if not path.is_file():
            return None
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    have = size - (pos + 8)
                    if clen in (0, 0xFFFFFFFF) or have >= clen:
                        return None
                    return (f"truncated: the header promises {clen} bytes of audio but the file "
                            f"holds {have} ({100 * have / clen:.0f}%); re-download or re-export "
                            "it")
                pos += 8 + clen + (clen & 1)
    except OSError:
        return None
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found; check the path")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if not path.is_file():  # FIFO, device, socket: opening it could block for ever
        raise AudioError(path, "is not a regular file (FIFO, device or socket); "
                               "give an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "is empty (0 bytes); re-download or remove it")


def _unreadable(exc: Exception) -> str:
    detail = str(exc).split(":")[-1].strip() or type(exc).__name__
    return (
        f"not a readable audio file ({detail}); "
        "expected WAV/FLAC/OGG/AIFF - convert it or remove it"
    )


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc", ".mp3", ".au"}


def collect_files(items: Sequence[str]) -> list[Path]:
    """Expand folders into the audio files below them (sorted); keep files as given."""
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            # is_file() is False for FIFOs/devices, so nothing here can block.
            found = sorted(p for p in path.rglob("*")
                           if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise SerError(f"{path}: folder holds no audio files "
                               f"({', '.join(sorted(AUDIO_SUFFIXES))})")
            files.extend(found)
        else:
            files.append(path)
    return files
