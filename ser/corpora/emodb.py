"""EMO-DB (Berlin Database of Emotional Speech) parser."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import ParseResult, Reject, parse_files, unified_emotion

NAME = "emodb"
#: Name shown in reports.
DISPLAY = "EMO-DB"
#: The corpus' own emotion codes -> unified label (:data:`ser.labels.EMOTIONS`).
CODES: dict[str, str] = {
    "N": "neutral",
    "F": "happy",
    "T": "sad",
    "W": "angry",
    "A": "fearful",
    "E": "disgust",
    "L": "boredom",
}
#: Corpus-specific manifest columns (after the common ones).
EXTRA_COLUMNS: tuple[str, ...] = ("text", "version")
#: Speaker id -> gender.
SPEAKERS: dict[str, str] = {
    "03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
    "08": "female", "09": "female", "13": "female", "14": "female", "16": "female",
}

_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Za-z])([a-z])$")


def parse(root: Path) -> ParseResult:
    """Parse an EMO-DB copy into one row per clip.

    Expected tree (searched recursively; ``download.zip`` unpacks to ``wav/``)::

        <root>/
            wav/
                03a01Fa.wav                 <speaker><text><emotion><version>.wav
                ...                         10 speakers, 535 clips

    Speaker: two digits (males ``03 10 11 12 15``, females ``08 09 13 14 16``);
    text: ``a01``-``b10``; emotion letter: ``W`` anger, ``L`` boredom, ``E``
    disgust, ``A`` fear, ``F`` happiness, ``T`` sadness, ``N`` neutral;
    version: a lower-case letter.

    Parameters
    ----------
    root
        Corpus root folder.

    Returns
    -------
    ParseResult
        Columns: common ones plus ``text`` and ``version``.
    """
    return parse_files(NAME, root, EXTRA_COLUMNS, _parse_file)


def _parse_file(path: Path, rel: Path) -> tuple[str, dict[str, str]]:
    match = _NAME.match(path.stem)
    if not match:
        raise Reject("file name is not <speaker NN><text a01-b10><emotion letter><version>.wav")
    speaker, text, code, version = match.groups()
    code = code.upper()
    if speaker not in SPEAKERS:
        raise Reject(f"unknown speaker {speaker!r} (EMO-DB has {' '.join(sorted(SPEAKERS))})")
    emotion = unified_emotion(CODES, code)
    row = {
        "speaker": speaker,
        "gender": SPEAKERS[speaker],
        "emotion": emotion,
        "label_code": code,
        "text": text,
        "version": version,
    }
    return f"{speaker}{text}{code}{version}", row
