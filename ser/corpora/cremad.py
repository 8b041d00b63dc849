"""CREMA-D (Crowd-sourced Emotional Multimodal Actors Dataset) parser."""

from __future__ import annotations

import csv
from pathlib import Path

from ser.corpora.base import ParseResult, Reject, parse_files, unified_emotion, walk_files
from ser.errors import ConfigError

NAME = "cremad"
#: Name shown in reports.
DISPLAY = "CREMA-D"
#: The corpus' own emotion codes -> unified label (:data:`ser.labels.EMOTIONS`).
CODES: dict[str, str] = {
    "NEU": "neutral",
    "HAP": "happy",
    "SAD": "sad",
    "ANG": "angry",
    "FEA": "fearful",
    "DIS": "disgust",
}
#: Corpus-specific manifest columns (after the common ones).
EXTRA_COLUMNS: tuple[str, ...] = ("sentence", "level")
#: Actor ids.
ACTORS = range(1001, 1092)
#: The 12 sentence codes.
SENTENCES: tuple[str, ...] = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA",
                              "ITS", "TSI", "WSI")
#: Emotion levels: low, medium, high, unspecified.
LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX")
#: File holding each actor's sex (columns ActorID, Sex).
DEMOGRAPHICS = "VideoDemographics.csv"


def parse(root: Path, *, demographics: Path | None = None) -> ParseResult:
    """Parse a CREMA-D copy into one row per clip.

    Expected tree (searched recursively)::

        <root>/
            VideoDemographics.csv           ActorID,Age,Sex,Race,Ethnicity (for gender)
            AudioWAV/
                1001_DFA_ANG_XX.wav         <actor>_<sentence>_<emotion>_<level>.wav
                ...                         91 actors, 7,442 clips

    Actors are ``1001``-``1091``; sentences the 12 codes in :data:`SENTENCES`;
    emotions ``ANG DIS FEA HAP NEU SAD``; levels ``LO MD HI XX``. Gender comes
    from ``VideoDemographics.csv`` (the first one found in or under the root,
    unless given); without it, or for an actor it does not list, gender is
    ``unknown`` and the summary says so.

    Parameters
    ----------
    root
        Corpus root folder (e.g. a clone of the CREMA-D repository).
    demographics
        Path of ``VideoDemographics.csv`` if it is not under ``root``.

    Returns
    -------
    ParseResult
        Columns: common ones plus ``sentence`` and ``level``; ``speaker`` is
        the four-digit actor id.

    Raises
    ------
    ConfigError
        If the demographics file exists but cannot be read or lacks the
        ``ActorID``/``Sex`` columns.
    """
    root = Path(root)
    if demographics is None:
        found = walk_files(root, lambda name: name.lower() == DEMOGRAPHICS.lower())
        demographics = found[0] if found else None
    sexes = read_demographics(demographics) if demographics is not None else {}

    def parse_file(path: Path, rel: Path) -> tuple[str, dict[str, str]]:
        return _parse_file(path, sexes)

    result = parse_files(NAME, root, EXTRA_COLUMNS, parse_file)
    unknown = sorted({r["speaker"] for r in result.rows if r["gender"] == "unknown"})
    if demographics is None:
        result.notes.append(f"gender unknown for every clip: no {DEMOGRAPHICS} in or under "
                            f"{root}; copy it there from the CREMA-D repository")
    elif unknown:
        result.notes.append(f"gender unknown for actors {', '.join(unknown)}: "
                            f"not listed in {demographics}")
    return result


def read_demographics(path: Path) -> dict[str, str]:
    """Read ``VideoDemographics.csv`` into actor id -> ``female``/``male``/``unknown``.

    Raises
    ------
    ConfigError
        If the file cannot be read or has no ``ActorID`` and ``Sex`` columns.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in reader.fieldnames or []]
            if "ActorID" not in fields or "Sex" not in fields:
                raise ConfigError(f"{path}: expected columns ActorID and Sex, found "
                                  f"{', '.join(fields) or 'none'}; use the CREMA-D original")
            sexes = {}
            for record in reader:
                record = {(k or "").strip(): (v or "").strip() for k, v in record.items()}
                sex = record["Sex"].lower()
                sexes[record["ActorID"]] = sex if sex in ("female", "male") else "unknown"
            return sexes
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the CREMA-D demographics ({exc})") from None


def _parse_file(path: Path, sexes: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = path.stem.split("_")
    if len(parts) != 4:
        raise Reject(f"expected 4 fields <actor>_<sentence>_<emotion>_<level>, found {len(parts)}")
    actor, sentence, code, level = parts[0], *(part.upper() for part in parts[1:])
    if not (len(actor) == 4 and actor.isdigit()):
        raise Reject(f"actor {actor!r} is not a four-digit id")
    if int(actor) not in ACTORS:
        raise Reject(f"actor {actor} out of range ({ACTORS[0]}-{ACTORS[-1]})")
    if sentence not in SENTENCES:
        raise Reject(f"unknown sentence code {sentence!r}")
    emotion = unified_emotion(CODES, code)
    if level not in LEVELS:
        raise Reject(f"unknown level {level!r} ({' '.join(LEVELS)})")
    row = {
        "speaker": actor,
        "gender": sexes.get(actor, "unknown"),
        "emotion": emotion,
        "label_code": code,
        "sentence": sentence,
        "level": level,
    }
    return path.stem, row
