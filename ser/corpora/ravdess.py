"""RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song) parser."""

from __future__ import annotations

import re
from pathlib import Path

from ser.corpora.base import ParseResult, Reject, parse_files, two_digits, unified_emotion

NAME = "ravdess"
#: Name shown in reports.
DISPLAY = "RAVDESS"
#: The corpus' own emotion codes -> unified label (:data:`ser.labels.EMOTIONS`).
CODES: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
#: Corpus-specific manifest columns (after the common ones).
EXTRA_COLUMNS: tuple[str, ...] = ("modality", "vocal_channel", "intensity", "statement",
                                  "repetition")
#: Actor ids 01-24; odd = male, even = female.
N_ACTORS = 24

_FIELDS = ("modality", "vocal channel", "emotion", "intensity", "statement", "repetition",
           "actor")
_MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
_ACTOR_FOLDER = re.compile(r"^actor_(\d+)$", re.IGNORECASE)


def parse(root: Path, *, include_song: bool = False) -> ParseResult:
    """Parse a RAVDESS audio copy into one row per clip.

    Expected tree (searched recursively, so ``Audio_Speech_Actors_01-24/``
    or the seed's ``datasets/RAVDESS/`` around it do not matter)::

        <root>/
            Actor_01/
                03-01-01-01-01-01-01.wav    MM-VV-EE-II-SS-RR-AA.wav
                ...                         60 speech clips per actor
            ...
            Actor_24/

    Fields: modality (``03`` audio-only; ``01``/``02`` are video and are
    rejected), vocal channel (``01`` speech, ``02`` song), emotion (``01``
    neutral ... ``08`` surprised), intensity (``01`` normal, ``02`` strong;
    neutral has no strong), statement (``01``/``02``), repetition
    (``01``/``02``), actor (``01``-``24``; odd = male). A file inside an
    ``Actor_NN`` folder must carry that actor number.

    Parameters
    ----------
    root
        Corpus root folder.
    include_song
        Also keep sung clips (vocal channel ``02``); by default they are
        rejected with a reason saying how to keep them.

    Returns
    -------
    ParseResult
        Columns: common ones plus ``modality, vocal_channel, intensity,
        statement, repetition`` (two-digit strings); ``speaker`` is the
        two-digit actor id.
    """

    def parse_file(path: Path, rel: Path) -> tuple[str, dict[str, str]]:
        return _parse_file(path, rel, include_song=include_song)

    return parse_files(NAME, root, EXTRA_COLUMNS, parse_file)


def _parse_file(path: Path, rel: Path, *, include_song: bool) -> tuple[str, dict[str, str]]:
    parts = path.stem.split("-")
    if len(parts) != len(_FIELDS):
        raise Reject(f"expected {len(_FIELDS)} fields MM-VV-EE-II-SS-RR-AA, found {len(parts)}")
    for value, what in zip(parts, _FIELDS, strict=True):
        two_digits(value, what)
    modality, channel, code, intensity, statement, repetition, actor = parts
    if modality != "03":
        kind = _MODALITIES.get(modality)
        raise Reject(f"modality {modality} ({kind}) is not audio-only (03)" if kind
                     else f"unknown modality {modality!r} (01, 02 or 03)")
    if channel == "02" and not include_song:
        raise Reject("song clip (vocal channel 02) left out; set manifest.ravdess_song: true "
                     "in params.yaml to keep song")
    if channel not in ("01", "02"):
        raise Reject(f"unknown vocal channel {channel!r} (01 speech, 02 song)")
    emotion = unified_emotion(CODES, code)
    if intensity not in ("01", "02"):
        raise Reject(f"unknown intensity {intensity!r} (01 normal, 02 strong)")
    if intensity == "02" and emotion == "neutral":
        raise Reject("neutral with strong intensity (02) does not exist in RAVDESS")
    if statement not in ("01", "02"):
        raise Reject(f"unknown statement {statement!r} (01, 02)")
    if repetition not in ("01", "02"):
        raise Reject(f"unknown repetition {repetition!r} (01, 02)")
    if not 1 <= int(actor) <= N_ACTORS:
        raise Reject(f"actor {actor} out of range (01-{N_ACTORS})")
    for folder in rel.parent.parts:
        match = _ACTOR_FOLDER.match(folder)
        if match and int(match.group(1)) != int(actor):
            raise Reject(f"actor field {actor} contradicts its folder {folder}")
    row = {
        "speaker": actor,
        "gender": "male" if int(actor) % 2 else "female",
        "emotion": emotion,
        "label_code": code,
        "modality": modality,
        "vocal_channel": channel,
        "intensity": intensity,
        "statement": statement,
        "repetition": repetition,
    }
    return path.stem, row
