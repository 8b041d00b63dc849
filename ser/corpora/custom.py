"""A user's own recordings: folder-per-label, or a CSV/TSV manifest.

No code to write: put the clips in folders named after their emotion, or list
them in a table, and point ``corpora: {custom: <folder>}`` in params.yaml at it.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path

import soundfile as sf

from ser.audio import wav_truncation
from ser.corpora.base import (
    COMMON_COLUMNS,
    GIT_LFS_POINTER,
    MIN_WAV_BYTES,
    NOT_UTF8,
    ParseResult,
    Reject,
    not_a_plain_file,
    walk_files,
)
from ser.errors import ConfigError
from ser.labels import EMOTIONS, normalise_label
from ser.outputs import display_path

NAME = "custom"
#: Name shown in reports (a user's own recordings keep the key).
DISPLAY = "custom"
#: No fixed codes: labels are the user's own, normalised (:func:`ser.labels.normalise_label`).
CODES: dict[str, str] = {}
#: Corpus-specific manifest columns (after the common ones): the split the user
#: assigned (``train``/``val``/``test`` or empty; not the protocol's ``split``)
#: and where the row came from (``folder`` or the manifest's file and line).
EXTRA_COLUMNS: tuple[str, ...] = ("user_split", "source")

#: Manifest file names looked for in the root when ``manifest`` is not given.
MANIFEST_NAMES: tuple[str, ...] = ("manifest.csv", "manifest.tsv", "labels.csv", "labels.tsv")

#: Accepted column names (lower-case) in a manifest -> the column they fill.
COLUMN_ALIASES: dict[str, str] = {
    "path": "path", "file": "path", "filename": "path", "file_name": "path", "filepath": "path",
    "audio": "path", "wav": "path",
    "emotion": "emotion", "label": "emotion", "class": "emotion",
    "speaker": "speaker", "speaker_id": "speaker", "actor": "speaker", "subject": "speaker",
    "gender": "gender", "sex": "gender",
    "split": "split", "set": "split", "subset": "split",
}

_GENDERS = {"f": "female", "female": "female", "w": "female", "woman": "female",
            "m": "male", "male": "male", "man": "male"}
_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
           "validation": "val", "dev": "val", "test": "test", "testing": "test", "": ""}

#: Shown when no clip names its speaker.
NO_SPEAKER_WARNING = (
    "WARNING: no speaker is given for any clip (speaker 'unknown'), so speaker-independent "
    "protocols (speaker, grouped CV) are impossible and a random split mixes each voice into "
    "train and test, which overstates accuracy; put clips in <emotion>/<speaker>/ folders or "
    "add a 'speaker' column to the manifest")


@lru_cache(maxsize=1)
def audio_extensions() -> frozenset[str]:
    """File extensions (lower-case, no dot) the installed libsndfile decodes."""
    formats = {fmt.lower() for fmt in sf.available_formats()}
    aliases = {"aiff": {"aif", "aifc"}, "ogg": {"oga", "opus"}, "wav": {"wave"}}
    extra = {alias for fmt, names in aliases.items() if fmt in formats for alias in names}
    return frozenset(formats | extra)


def is_audio(name: str) -> bool:
    """True for a file name whose extension libsndfile reads (``.wav``, ``.flac``, ...)."""
    return not name.startswith(".") and Path(name).suffix.lower().lstrip(".") in audio_extensions()


def find_inputs(root: Path) -> list[Path]:
    """What this parser would read under ``root``: a manifest, else the audio files.

    For :func:`ser.corpora.parse_corpus`'s "is there anything here" check,
    which otherwise looks for ``.wav`` files only (a FLAC-only folder or a
    manifest of absolute paths would be refused).
    """
    root = Path(root)
    table = _find_manifest(root, None)
    if table is not None:
        return [table]
    return walk_files(root, is_audio)


def parse(root: Path, *, manifest: str | None = None) -> ParseResult:
    """Parse a user's own recordings into one row per clip.

    Two layouts are read. **Folder per label** (the folder name is the
    emotion; an optional level below it names the speaker)::

        <root>/                         e.g. my_data/
            angry/
                clip001.wav             any rate, channels, format libsndfile reads
                take2.flac              (.wav .flac .ogg .aiff ...)
            happy/
                alice/                  optional speaker level:
                    a1.wav              my_data/<emotion>/<speaker>/...
            neutral/ ...

    **Manifest** (``manifest.csv``/``.tsv`` or ``labels.csv``/``.tsv`` in the
    root, or the file named by ``manifest``): a table with a header row::

        <root>/manifest.csv
        path,emotion,speaker,gender,split
        clips/0001.wav,anger,spk01,f,train
        /data/other/0002.flac,Happiness,spk02,m,test

    ``path`` and ``emotion`` are required (also accepted: ``file``/``filename``
    and ``label``); ``speaker``, ``gender`` (f/m/female/male) and ``split``
    (train/val/test) are optional. Relative paths are relative to the
    manifest's folder. Delimiter: tab for ``.tsv``, else detected (``,``/``;``).

    Labels are lower-cased and common synonyms unified (``anger`` ->
    ``angry``, ``happiness`` -> ``happy``, see :func:`ser.labels.normalise_label`);
    other labels are kept as the user's own classes. Without speakers the
    result carries :data:`NO_SPEAKER_WARNING` in its notes.

    Parameters
    ----------
    root
        The folder (or directly a ``.csv``/``.tsv`` manifest file).
    manifest
        Manifest file, relative to ``root`` or absolute; default: look for
        :data:`MANIFEST_NAMES` in ``root``, else read the folder layout.

    Returns
    -------
    ParseResult
        Columns: common ones plus ``user_split`` and ``source`` (the folder
        layout or the manifest's line). ``label_code`` is the label as written.

    Raises
    ------
    ConfigError
        If the manifest is missing, unreadable or lacks a required column.
    """
    root = Path(root)
    table = _find_manifest(root, manifest)
    if table is not None:
        result = _parse_manifest(root, table)
    else:
        result = _parse_folders(root)
    _add_notes(result)
    return result


def _find_manifest(root: Path, manifest: str | None) -> Path | None:
    if manifest is not None:
        path = Path(manifest)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise ConfigError(f"custom corpus: manifest {path} not found; give a CSV/TSV file "
                              "relative to the corpus folder, or leave 'manifest' out to read "
                              "the <emotion>/ folders")
        return path
    if root.is_file() and root.suffix.lower() in (".csv", ".tsv"):
        return root
    return next((root / n for n in MANIFEST_NAMES if (root / n).is_file()), None)


def _check_audio(path: Path) -> None:
    """:class:`Reject` unless ``path`` is a readable, non-empty, complete audio file
    whose name is valid UTF-8 (the manifest is UTF-8 Parquet)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise Reject(NOT_UTF8) from None
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Reject(f"cannot read the file ({exc.strerror or exc}); a broken link?") from None
    if size < MIN_WAV_BYTES:
        raise Reject(f"only {size} bytes: too small to hold any audio")
    if size < 1024:
        with open(path, "rb") as fh:
            if fh.read(64).startswith(GIT_LFS_POINTER):
                raise Reject("Git LFS pointer, not the audio: run 'git lfs pull' in the clone")
    try:
        info = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        detail = str(exc).split(":")[-1].strip() or type(exc).__name__
        raise Reject(f"not readable audio ({detail}); convert it to WAV or FLAC") from None
    if info.frames == 0:
        raise Reject("holds no audio samples (0 frames)")
    truncated = wav_truncation(path)
    if truncated:
        raise Reject(truncated)


def _label(text: str) -> str:
    try:
        return normalise_label(text)
    except ValueError:
        raise Reject("empty emotion label") from None


def _parse_folders(root: Path) -> ParseResult:
    result = ParseResult(corpus=NAME, root=root, columns=COMMON_COLUMNS + EXTRA_COLUMNS)
    skipped = 0
    # Links out of the root, FIFOs and devices are listed as rejected (never opened).
    for path in walk_files(root, lambda name: True, rejected=result.rejected):
        rel = path.relative_to(root)
        if path.name.startswith("._"):
            result.rejected.append((display_path(path),
                                    "macOS metadata file (AppleDouble '._' name)"))
            continue
        if not is_audio(path.name):
            skipped += 1
            continue
        try:
            if len(rel.parts) < 2:
                raise Reject("not inside an <emotion>/ folder; move it to <root>/<emotion>/")
            label = _label(rel.parts[0])
            speaker = rel.parts[1] if len(rel.parts) >= 3 else "unknown"
            _check_audio(path)
        except Reject as reason:
            result.rejected.append((display_path(path), str(reason)))
            continue
        result.rows.append({
            "path": str(path), "corpus": NAME, "speaker": speaker, "gender": "unknown",
            "emotion": label, "label_code": rel.parts[0], "user_split": "",
            "source": "folder",
        })
    if skipped:
        result.notes.append(f"{skipped} files that are not audio (by extension) were ignored")
    return result


def _read_table(table: Path) -> tuple[list[str], list[list[str]]]:
    try:
        text = table.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"custom corpus: cannot read manifest {table} ({exc}); save it as "
                          "UTF-8 CSV or TSV") from None
    lines = text.splitlines()
    if not lines:
        raise ConfigError(f"custom corpus: manifest {table} is empty; it needs a header row "
                          "'path,emotion[,speaker,gender,split]' and one row per clip")
    if table.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    return [h.strip().lower() for h in rows[0]], rows[1:]


def _parse_manifest(root: Path, table: Path) -> ParseResult:
    result = ParseResult(corpus=NAME, root=root, columns=COMMON_COLUMNS + EXTRA_COLUMNS)
    header, rows = _read_table(table)
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        column = COLUMN_ALIASES.get(name)
        if column is not None and column not in index:
            index[column] = i
    missing = [c for c in ("path", "emotion") if c not in index]
    if missing:
        raise ConfigError(f"custom corpus: manifest {table} has no {' or '.join(missing)} "
                          f"column (found: {', '.join(header) or 'none'}); the header must name "
                          "at least 'path' and 'emotion'")
    base = table.parent
    first_seen: dict[str, str] = {}
    for line_no, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(column: str, row: list[str] = row) -> str:
            i = index.get(column)
            return row[i].strip() if i is not None and i < len(row) else ""

        where = f"{table.name} line {line_no}"
        raw_path = cell("path")
        path = Path(raw_path) if os.path.isabs(raw_path) else base / raw_path
        try:
            if not raw_path:
                raise Reject("empty path")
            if not path.exists():
                raise Reject("listed but not found (relative paths start at the manifest's "
                             "folder)")
            if path.is_dir():
                raise Reject("is a folder, not an audio file")
            special = not_a_plain_file(path, Path(os.path.realpath("/")))
            if special:  # a FIFO or device is never opened
                raise Reject(special)
            if not is_audio(path.name):
                raise Reject(f"extension {path.suffix or '(none)'} is not an audio format "
                             "libsndfile reads")
            label = _label(cell("emotion"))
            gender_text = cell("gender").lower()
            gender = _GENDERS.get(gender_text, "unknown")
            split_text = cell("split").lower()
            if split_text not in _SPLITS:
                raise Reject(f"split {cell('split')!r} is not train, val or test")
            key = os.path.realpath(path)
            if key in first_seen:
                raise Reject(f"duplicate of {first_seen[key]} (same file listed twice)")
            _check_audio(path)
        except Reject as reason:
            result.rejected.append((display_path(path), f"{where}: {reason}"))
            continue
        first_seen[key] = where
        result.rows.append({
            "path": str(path), "corpus": NAME, "speaker": cell("speaker") or "unknown",
            "gender": gender, "emotion": label, "label_code": cell("emotion"),
            "user_split": _SPLITS[split_text], "source": where,
        })
        if gender_text and gender == "unknown":
            result.notes.append(f"{where}: gender {cell('gender')!r} not understood "
                                "(use f/m/female/male); recorded as unknown")
    return result


def _add_notes(result: ParseResult) -> None:
    speakers = Counter(r["speaker"] for r in result.rows)
    if result.rows and set(speakers) == {"unknown"}:
        result.notes.append(NO_SPEAKER_WARNING)
    elif speakers.get("unknown"):
        result.notes.append(f"{speakers['unknown']} clips have no speaker (grouped as one "
                            "speaker 'unknown' by speaker-independent protocols)")
    elif result.rows and len(speakers) < 2:
        result.notes.append("only one speaker: speaker-independent protocols need at least two")
    own = sorted({r["emotion"] for r in result.rows} - set(EMOTIONS))
    if own:
        result.notes.append(f"labels outside the unified set kept as your own classes: "
                            f"{', '.join(own)}")
