"""Reading audio files: one place that turns bad files into clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ser.errors import AudioError


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Return soundfile's header info, raising :class:`AudioError` on bad input."""
    path = Path(path)
    _check_file(path)
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(path, _unreadable(exc)) from None


def load_audio(
    path: str | Path,
    *,
    sr: int | None = None,
    mono: bool = True,
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
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
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


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found; check the path")
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "is empty (0 bytes); re-download or remove it")


def _unreadable(exc: Exception) -> str:
    detail = str(exc).split(":")[-1].strip() or type(exc).__name__
    return (
        f"not a readable audio file ({detail}); "
        "expected WAV/FLAC/OGG/AIFF - convert it or remove it"
    )
