"""Machinery shared by the corpus parsers: walking a root, rows, rejections, summaries.

A parser turns a corpus folder into one row per usable clip. Every audio file
(``.wav``, ``.flac``, ``.ogg``, ... any extension libsndfile reads) under the
root either becomes a row or is *rejected* with a reason, so
nothing is silently dropped or mislabelled: the manifest stage writes the
rejections next to the manifest and prints their most common reasons.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ser.audio import wav_truncation
from ser.labels import sort_labels
from ser.outputs import display_path

#: Columns every manifest has, in this order; corpus-specific columns follow.
COMMON_COLUMNS: tuple[str, ...] = ("path", "corpus", "speaker", "gender", "emotion", "label_code")

#: Values of the ``gender`` column.
GENDERS: tuple[str, ...] = ("female", "male", "unknown")

#: A WAV file this small (a bare 44-byte header or less) cannot hold any audio.
MIN_WAV_BYTES = 45

#: How a Git LFS pointer file starts (a clone made without ``git lfs``).
GIT_LFS_POINTER = b"version https://git-lfs"

#: Folders never searched for audio (VCS/DVC metadata, macOS archive debris).
SKIPPED_DIRS = frozenset({"__MACOSX"})


class Reject(Exception):  # noqa: N818 - it is a verdict, not an error condition
    """Raised by a per-file parser: this file is not a usable clip, for this reason."""


@dataclass
class ParseResult:
    """What a parser found under a corpus root.

    Attributes
    ----------
    corpus
        Corpus name (``"ravdess"``, ...).
    root
        The root folder, as it was given.
    columns
        Column order of :meth:`to_frame` (common columns, then corpus-specific).
    rows
        One dict per usable clip, with exactly the keys in ``columns``.
    rejected
        ``(path, reason)`` for every ``.wav`` file that did not become a row.
    notes
        Remarks about the whole corpus (e.g. genders unknown), shown in
        :meth:`summary`.
    """

    corpus: str
    root: Path
    columns: tuple[str, ...]
    rows: list[dict[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """Return the rows as a DataFrame with the stable column order :attr:`columns`."""
        frame = pd.DataFrame(self.rows, columns=list(self.columns))
        return frame.astype({c: "str" for c in self.columns})

    def rejected_frame(self) -> pd.DataFrame:
        """Return the rejections as a DataFrame with columns ``path, reason``."""
        frame = pd.DataFrame(self.rejected, columns=["path", "reason"])
        return frame.astype({"path": "str", "reason": "str"})

    def summary(self, top: int = 5) -> str:
        """Return a short human-readable report: counts per emotion/speaker/gender, rejections.

        Parameters
        ----------
        top
            How many of the most common rejection reasons to list.
        """
        emotions = Counter(r["emotion"] for r in self.rows)
        speakers = Counter(r["speaker"] for r in self.rows)
        genders = Counter(r["gender"] for r in self.rows)
        lines = [
            f"{self.corpus}: {len(self.rows)} clips from {len(speakers)} speakers, "
            f"{len(self.rejected)} rejected"
        ]
        if self.rows:
            lines.append("  emotions: " + _counts(emotions, sort_labels(emotions)))
            lines.append("  speakers: " + _counts(speakers, sorted(speakers)))
            lines.append("  genders:  " + _counts(genders, [g for g in GENDERS if g in genders]))
        if self.rejected:
            reasons = Counter(reason for _, reason in self.rejected)
            lines.append(f"  rejected: {len(self.rejected)}; top reasons:")
            for reason, n in reasons.most_common(top):
                example = next(p for p, r in self.rejected if r == reason)
                lines.append(f"    {n} x {reason} (e.g. {example})")
            if len(reasons) > top:
                lines.append(f"    ... and {len(reasons) - top} other reasons")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _counts(counter: Counter, order: Iterable[str]) -> str:
    return ", ".join(f"{key} {counter[key]}" for key in order)


#: Extensions libsndfile decodes (soundfile); the scan accepts all of them, so
#: a corpus converted to FLAC or OGG parses like its WAV original.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff",
                              ".aif", ".aifc", ".au", ".caf", ".w64", ".rf64"})


#: Why a file whose (folder) name is not valid UTF-8 is rejected.
NOT_UTF8 = "file or folder name is not valid UTF-8; rename it (e.g. convmv -f latin1 -t utf8)"


def walk_files(
    root: Path,
    keep: Callable[[str], bool],
    *,
    rejected: list[tuple[str, str]] | None = None,
) -> list[Path]:
    """Return files under ``root`` whose name passes ``keep``, sorted by relative path.

    The walk never leaves ``root``: every folder and file is resolved, and a
    symbolic link pointing outside the root (``-> ..``, ``-> /``), a dangling
    link, and anything that is not a regular file (FIFO, device, socket) is
    left out and recorded in ``rejected`` as ``(path, reason)`` (if given).
    Nothing is opened, so a FIFO can never block the scan. Links inside the
    root are followed, with a guard against loops. Hidden folders (``.git``,
    ``.dvc``, ...) and ``__MACOSX`` are not searched.

    Parameters
    ----------
    root : Path
        The corpus folder.
    keep : callable
        ``keep(file_name) -> bool`` (e.g. :func:`is_audio`).
    rejected : list, optional
        Receives ``(path, reason)`` of every file left out for safety.
    """
    root = Path(root)
    real_root = Path(os.path.realpath(root))
    found: list[Path] = []
    seen: set[str] = set()

    def reject(path: Path, reason: str) -> None:
        if rejected is not None:
            rejected.append((display_path(path), reason))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        kept = []
        for d in dirnames:
            if d.startswith(".") or d in SKIPPED_DIRS:
                continue
            sub = Path(dirpath) / d
            target = Path(os.path.realpath(sub))
            if not target.is_relative_to(real_root):
                reject(sub, "symbolic link to a folder outside the corpus root "
                            f"(-> {display_path(target)}); not followed")
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            if not keep(name):
                continue
            path = Path(dirpath) / name
            reason = not_a_plain_file(path, real_root)
            if reason:
                reject(path, reason)
            else:
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def not_a_plain_file(path: Path, real_root: Path) -> str | None:
    """Why ``path`` is not a regular file inside the root (never opens it), or ``None``."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        try:
            target_st = path.stat()
        except OSError:
            return (f"dangling symbolic link (-> {display_path(os.readlink(path))}); "
                    "the target is missing")
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(real_root):
            return (f"symbolic link pointing outside the corpus root "
                    f"(-> {display_path(target)}); left out")
        st = target_st
    if stat.S_ISREG(st.st_mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a device file" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file")
    return f"{kind}, not an audio file; left out without opening it"


def is_wav(name: str) -> bool:
    """True for a ``.wav`` file name, whatever the case of the extension."""
    return name.lower().endswith(".wav")


def is_audio(name: str) -> bool:
    """True for a name with an extension libsndfile reads (:data:`AUDIO_EXTENSIONS`)."""
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def find_wavs(root: Path, *, rejected: list[tuple[str, str]] | None = None) -> list[Path]:
    """Return every audio file (``.wav`` or another :data:`AUDIO_EXTENSIONS`) under ``root``.

    Sorted by relative path; links outside the root and special files go to
    ``rejected`` (see :func:`walk_files`).

    Parameters
    ----------
    root : Path
        The corpus folder.
    rejected : list, optional
        Receives ``(path, reason)`` of every file left out.
    """
    return walk_files(root, is_audio, rejected=rejected)


#: A per-file parser: (path, path relative to the root) -> (clip key, columns
#: other than ``path`` and ``corpus``); raises :class:`Reject`.
FileParser = Callable[[Path, Path], tuple[Hashable, dict[str, str]]]


def parse_files(
    corpus: str,
    root: Path,
    extra_columns: tuple[str, ...],
    parse_file: FileParser,
    *,
    files: Iterable[Path] | None = None,
) -> ParseResult:
    """Run ``parse_file`` on every ``.wav`` file under ``root`` and collect the result.

    Parameters
    ----------
    corpus
        Corpus name, written into the ``corpus`` column.
    root
        Corpus root folder; row paths are ``root`` joined with the file's
        relative path (so they stay relative if ``root`` is relative).
    extra_columns
        The corpus-specific columns ``parse_file`` returns besides the common ones.
    parse_file
        Per-file parser returning ``(key, columns)``; ``key`` identifies the
        clip, so a second file with the same key is rejected as a duplicate
        (copies that hold the corpus twice would otherwise leak test clips
        into training).
    files
        Files to parse instead of searching ``root`` (for tests).

    Returns
    -------
    ParseResult
    """
    root = Path(root)
    result = ParseResult(corpus=corpus, root=root, columns=COMMON_COLUMNS + extra_columns)
    first_seen: dict[Hashable, str] = {}
    for path in find_wavs(root, rejected=result.rejected) if files is None else files:
        outcome = _parse_one(path, root, parse_file)
        if isinstance(outcome, str):
            result.rejected.append((display_path(path), outcome))
            continue
        key, values = outcome
        if key in first_seen:
            result.rejected.append((str(path), f"duplicate of {first_seen[key]} (same clip)"))
            continue
        first_seen[key] = str(path)
        row = {"path": str(path), "corpus": corpus, **values}
        if set(row) != set(result.columns):  # a bug in the parser, not in the data
            raise RuntimeError(f"{corpus} parser returned columns {sorted(row)}, "
                               f"expected {sorted(result.columns)}")
        if row["gender"] not in GENDERS:
            raise RuntimeError(f"{corpus} parser returned gender {row['gender']!r}")
        result.rows.append({c: row[c] for c in result.columns})
    return result


def _parse_one(
    path: Path, root: Path, parse_file: FileParser
) -> str | tuple[Hashable, dict[str, str]]:
    """Return the parser's ``(key, columns)`` for one file, or the reason to reject it."""
    if path.name.startswith("._"):
        return "macOS metadata file (AppleDouble '._' name), not audio"
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return NOT_UTF8
    try:
        outcome = parse_file(path, path.relative_to(root))
    except Reject as reason:
        return str(reason)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc}); a broken link?"
    if size < MIN_WAV_BYTES:
        return f"only {size} bytes: too small to hold any audio"
    if size < 1024 and _head(path).startswith(GIT_LFS_POINTER):
        return "Git LFS pointer, not the audio: run 'git lfs pull' in the clone"
    truncated = wav_truncation(path)
    if truncated:
        return truncated
    return outcome


def _head(path: Path, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def two_digits(value: str, what: str) -> str:
    """Return ``value`` if it is exactly two digits, else :class:`Reject` naming ``what``.

    Parameters
    ----------
    value : str
        A field of a file name (e.g. RAVDESS' actor number).
    what : str
        The field's name, for the rejection reason.
    """
    if len(value) != 2 or not value.isdigit():
        raise Reject(f"{what} {value!r} is not two digits")
    return value


def unified_emotion(codes: Mapping[str, str], code: str, *, shown: str | None = None) -> str:
    """The unified label of a corpus' own emotion ``code`` (``codes``: its module's
    ``CODES``); :class:`Reject` if unknown.

    Parameters
    ----------
    corpus : str
        Corpus name (its codes are in :data:`ser.corpora.CORPUS_CODES`).
    code : str
        The corpus' own emotion code.
    shown : str, optional
        How the code appears in the file name, when that differs (for the reason).
    """
    if code not in codes:
        raise Reject(f"unknown emotion code {shown or code!r} ({' '.join(sorted(codes))})")
    return codes[code]
