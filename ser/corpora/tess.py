"""TESS (Toronto Emotional Speech Set) parser."""

from __future__ import annotations

from pathlib import Path

from ser.corpora.base import ParseResult, Reject, parse_files, unified_emotion

NAME = "tess"
#: Name shown in reports.
DISPLAY = "TESS"
#: The corpus' own emotion codes -> unified label (:data:`ser.labels.EMOTIONS`).
CODES: dict[str, str] = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fear": "fearful",
    "disgust": "disgust",
    "ps": "surprised",
}
#: Corpus-specific manifest columns (after the common ones).
EXTRA_COLUMNS: tuple[str, ...] = ("word",)
#: The two speakers, both female.
SPEAKERS: tuple[str, ...] = ("OAF", "YAF")


def parse(root: Path) -> ParseResult:
    """Parse a TESS copy into one row per clip.

    Expected tree (folders are searched recursively; their names are *not*
    used, because they vary between copies)::

        <root>/
            OAF_angry/
                OAF_back_angry.wav          <speaker>_<word>_<emotion>.wav
                ...
            OAF_Fear/OAF_back_fear.wav
            YAF_pleasant_surprised/YAF_back_ps.wav
            ...                             2 speakers x 200 words x 7 emotions = 2,800

    The emotion is the file name's last token (``angry``, ``disgust``,
    ``fear``, ``happy``, ``neutral``, ``ps``, ``sad``; case ignored); the word
    is whatever lies between speaker and emotion. Both speakers (``OAF``,
    ``YAF``) are female.

    Parameters
    ----------
    root
        Corpus root folder (e.g. ``data/raw/tess`` or the seed's ``datasets/TESS``).

    Returns
    -------
    ParseResult
        Columns: common ones plus ``word``. Files with another speaker, an
        unknown emotion or fewer than three ``_``-separated tokens are rejected.
    """
    return parse_files(NAME, root, EXTRA_COLUMNS, _parse_file)


def _parse_file(path: Path, rel: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    tokens = path.stem.split("_")
    if len(tokens) < 3 or not all(tokens):
        raise Reject("file name is not <speaker>_<word>_<emotion>.wav")
    speaker, word, code = tokens[0].upper(), "_".join(tokens[1:-1]), tokens[-1].lower()
    if speaker not in SPEAKERS:
        raise Reject(f"unknown speaker {tokens[0]!r} (TESS has {', '.join(SPEAKERS)})")
    emotion = unified_emotion(CODES, code, shown=tokens[-1])
    row = {
        "speaker": speaker,
        "gender": "female",
        "emotion": emotion,
        "label_code": code,
        "word": word,
    }
    return (speaker, word.lower(), code), row
