"""SAVEE (Surrey Audio-Visual Expressed Emotion) parser."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import ParseResult, Reject, parse_files, unified_emotion

NAME = "savee"
#: Name shown in reports.
DISPLAY = "SAVEE"
#: The corpus' own emotion codes -> unified label (:data:`ser.labels.EMOTIONS`).
CODES: dict[str, str] = {
    "n": "neutral",
    "h": "happy",
    "sa": "sad",
    "a": "angry",
    "f": "fearful",
    "d": "disgust",
    "su": "surprised",
}
#: Corpus-specific manifest columns (after the common ones).
EXTRA_COLUMNS: tuple[str, ...] = ("sentence",)
#: The four speakers, all male.
SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")

# The whole letter prefix is the code, so "sa01"/"su01" can never be read as "s".
_FLAT = re.compile(r"^([A-Za-z]+)_([A-Za-z]+)(\d{2})$")
_NESTED = re.compile(r"^([A-Za-z]+)(\d{2})$")


def parse(root: Path) -> ParseResult:
    """Parse a SAVEE copy (original nested or flat layout) into one row per clip.

    Expected tree, either of (searched recursively)::

        <root>/                             original
            AudioData/
                DC/
                    a01.wav                 <emotion><sentence>.wav, speaker = folder
                    sa01.wav
                JE/ JK/ KL/

        <root>/                             flat copy
            DC_a01.wav                      <speaker>_<emotion><sentence>.wav
            JE_su15.wav

    Emotion codes: ``a`` anger, ``d`` disgust, ``f`` fear, ``h`` happiness,
    ``n`` neutral, ``sa`` sadness, ``su`` surprise (the whole letter prefix is
    the code, so ``sa``/``su`` are never read as ``s``). Speakers ``DC JE JK KL``,
    all male; 480 clips.

    Parameters
    ----------
    root
        Corpus root folder.

    Returns
    -------
    ParseResult
        Columns: common ones plus ``sentence`` (two digits, numbered within
        each emotion).
    """
    return parse_files(NAME, root, EXTRA_COLUMNS, _parse_file)


def _parse_file(path: Path, rel: Path) -> tuple[tuple[str, str, str], dict[str, str]]:
    flat, nested = _FLAT.match(path.stem), _NESTED.match(path.stem)
    if flat:
        speaker, code, sentence = flat.groups()
        if speaker.upper() not in SPEAKERS:
            raise Reject(f"unknown speaker {speaker!r} (SAVEE has {', '.join(SPEAKERS)})")
    elif nested:
        code, sentence = nested.groups()
        speaker = path.parent.name
        if speaker.upper() not in SPEAKERS:
            raise Reject(f"cannot tell the speaker: folder {speaker!r} is not one of "
                         f"{', '.join(SPEAKERS)}, and the name has no <speaker>_ prefix")
    else:
        raise Reject("file name is not <speaker>_<emotion><NN>.wav or <speaker>/<emotion><NN>.wav")
    speaker, code = speaker.upper(), code.lower()
    emotion = unified_emotion(CODES, code)
    row = {
        "speaker": speaker,
        "gender": "male",
        "emotion": emotion,
        "label_code": code,
        "sentence": sentence,
    }
    return (speaker, code, sentence), row
