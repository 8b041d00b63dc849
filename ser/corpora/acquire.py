"""Bring real corpora into the project: verify, unpack safely, track with DVC.

``ser data import NAME SOURCE`` takes an archive (.zip, .tar.gz, .tgz, .tar)
or a folder you already have, checks it (sha256 if given; the corpus parser
must recognise its files), unpacks it into ``data/raw/<name>`` without
letting any member escape that folder, and runs ``dvc add data/raw/<name>``
so the audio is versioned by DVC, not git. ``ser data download NAME`` fetches
the corpora that have a stable public URL first (with pooch), then imports.
Only audio (``.wav`` and the other formats libsndfile reads: ``.flac``,
``.ogg``, ...) and small metadata files (``.csv``, ``.txt``, ...) are kept;
videos and the like are skipped and counted.

Nothing the tool did not write is ever deleted: an existing, non-empty
``--dest`` is refused unless ``--force``, and even then only the files a
previous import recorded in ``.ser-import.json`` are replaced. An archive that
would unpack to more than ``--max-unpacked-gb`` or expands more than
``--max-ratio`` times its own size (a zip bomb) is refused before anything is
written.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ser.corpora import PARSERS, ParseResult
from ser.corpora.base import AUDIO_EXTENSIONS, walk_files
from ser.errors import ConfigError, SerError
from ser.layout import raw_root
from ser.outputs import atomic_path, inside_without_links, place_new, sha256_file

#: Environment variable overriding the download cache (default ``~/.cache/ser``,
#: outside the project, so archives are never committed).
DOWNLOAD_CACHE_ENV = "SER_DOWNLOAD_DIR"

#: Suffixes of the small metadata files kept besides ``.wav`` audio.
METADATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".md", ".json", ".yaml", ".yml", ".pdf"})
#: Record of the files an import wrote into its destination (what ``--force`` may replace).
IMPORT_RECORD = ".ser-import.json"
#: Default limits of an archive import (raise with --max-unpacked-gb / --max-ratio).
MAX_UNPACKED_GB = 50.0
MAX_RATIO = 20.0
#: Archives unpacking to less than this are never refused for their ratio.
RATIO_FLOOR_BYTES = 16 << 20
#: File-name prefixes (upper case) of licence/readme files kept.
METADATA_PREFIXES = ("LICENSE", "LICENCE", "README", "COPYING")


@dataclass(frozen=True)
class CorpusInfo:
    """What is known about obtaining one corpus.

    Attributes
    ----------
    name
        Corpus name (a key of :data:`ser.corpora.PARSERS`).
    title
        Full name.
    expected_wavs
        Number of ``.wav`` clips of the complete corpus (as the archive below
        holds it, where there is one).
    licence
        Licence or terms of use.
    source
        Where the corpus is published.
    archive
        File name of the official archive, if there is one.
    url
        Stable public download URL, or None if it must be fetched by hand.
    sha256
        SHA-256 of that archive, only where it is actually known; None
        otherwise (the import then prints the hash so you can pin it).
    how_to_get
        What to do when there is no URL.
    verify_options
        Parser options used to verify an import (e.g. accept RAVDESS song).
    """

    name: str
    title: str
    expected_wavs: int
    licence: str
    source: str
    archive: str | None = None
    url: str | None = None
    sha256: str | None = None
    how_to_get: str = ""
    verify_options: dict[str, Any] = field(default_factory=dict)


#: Corpus name -> what is known about getting it.
CORPORA: dict[str, CorpusInfo] = {
    "tess": CorpusInfo(
        name="tess",
        title="Toronto Emotional Speech Set (TESS)",
        expected_wavs=2800,
        licence="CC BY-NC-ND 4.0",
        source="University of Toronto Dataverse, doi:10.5683/SP2/E8H2MF",
        how_to_get="download all files of https://doi.org/10.5683/SP2/E8H2MF as one zip, "
                   "then: ser data import tess <that zip>",
    ),
    "ravdess": CorpusInfo(
        name="ravdess",
        title="Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS), "
              "audio-only speech",
        expected_wavs=1440,
        licence="CC BY-NC-SA 4.0",
        source="Zenodo record 1188976 (https://zenodo.org/records/1188976)",
        archive="Audio_Speech_Actors_01-24.zip",
        url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip",
        how_to_get="ser data download ravdess (about 200 MB)",
        verify_options={"include_song": True},
    ),
    "cremad": CorpusInfo(
        name="cremad",
        title="Crowd-sourced Emotional Multimodal Actors Dataset (CREMA-D)",
        expected_wavs=7442,
        licence="Open Database License (ODbL)",
        source="https://github.com/CheyneyComputerScience/CREMA-D (audio in AudioWAV/, Git LFS)",
        how_to_get="git lfs install && git clone "
                   "https://github.com/CheyneyComputerScience/CREMA-D, "
                   "then: ser data import cremad CREMA-D (keeps AudioWAV/ and "
                   "VideoDemographics.csv, skips the videos)",
    ),
    "savee": CorpusInfo(
        name="savee",
        title="Surrey Audio-Visual Expressed Emotion (SAVEE)",
        expected_wavs=480,
        licence="free for research after registration with the University of Surrey",
        source="University of Surrey, CVSSP (registration required)",
        how_to_get="register on the SAVEE web page of the University of Surrey, download "
                   "the audio (AudioData), then: ser data import savee <zip or folder>",
    ),
    "emodb": CorpusInfo(
        name="emodb",
        title="Berlin Database of Emotional Speech (EMO-DB)",
        expected_wavs=535,
        licence="see http://emodb.bilderbar.info",
        source="http://emodb.bilderbar.info",
        archive="download.zip",
        url="http://emodb.bilderbar.info/download/download.zip",
        how_to_get="ser data download emodb",
    ),
}


@dataclass
class ImportResult:
    """What :func:`import_corpus` did.

    Attributes
    ----------
    name, source, dest
        Corpus, what was imported, where it now is.
    sha256
        SHA-256 of the source archive (None for a folder).
    n_written, n_skipped
        Files written into ``dest``; files left out (not audio or metadata).
    parse
        The corpus parser's verdict on the imported files.
    expected_wavs
        Clip count of the complete corpus, if known.
    dvc_file
        The ``.dvc`` file written by ``dvc add``, or None.
    dvc_note
        What happened about DVC, for people.
    """

    name: str
    source: Path
    dest: Path
    sha256: str | None
    n_written: int
    n_skipped: int
    parse: ParseResult
    expected_wavs: int | None
    dvc_file: Path | None = None
    dvc_note: str = ""

    def report(self) -> str:
        """Several lines for people: what was written, verified and tracked, what next."""
        n = len(self.parse.rows)
        lines = [f"imported {self.name} from {self.source} into {self.dest}: "
                 f"{self.n_written} files written, {self.n_skipped} other files skipped"]
        if self.sha256:
            lines.append(f"sha256 of {self.source.name}: {self.sha256} "
                         "(pass it as --sha256 next time to pin this version)")
        if self.expected_wavs:
            verdict = ("complete" if n == self.expected_wavs else
                       f"{self.expected_wavs - n} fewer than the complete corpus"
                       if n < self.expected_wavs else "more than the complete corpus")
            lines.append(f"verified: {n} clips parse ({len(self.parse.rejected)} rejected); "
                         f"expected {self.expected_wavs}: {verdict}")
        lines.append(self.parse.summary())
        lines.append(self.dvc_note)
        lines.append(f"next: set 'corpora.{self.name}: {self.dest}' in params.yaml")
        return "\n".join(line for line in lines if line)


# ---------------------------------------------------------------- helpers


def corpus_info(name: str) -> CorpusInfo:
    """Return :data:`CORPORA` ``[name]`` or raise :class:`ConfigError` listing the known ones."""
    if name not in CORPORA or name not in PARSERS:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    return CORPORA[name]


def is_wanted(rel: PurePosixPath) -> bool:
    """True for files an import keeps: ``.wav`` audio and small metadata, not hidden ones."""
    if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
        return False
    suffix = rel.suffix.lower()
    return (suffix in AUDIO_EXTENSIONS or suffix in METADATA_SUFFIXES
            or rel.name.upper().startswith(METADATA_PREFIXES))


def _unsafe(archive: Path, member: str, why: str) -> SerError:
    return SerError(f"{archive}: refusing to unpack: member {member!r} {why} (path traversal); "
                    "nothing was written - the archive is corrupt or malicious, get a clean copy")


def safe_member_path(archive: Path, name: str) -> PurePosixPath:
    """Return an archive member's relative path, or raise if it could land outside the dest.

    Raises
    ------
    SerError
        For absolute paths (``/x``, ``C:\\x``) and ``..`` components.
    """
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise _unsafe(archive, name, "has an absolute path")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, name, "climbs out of the destination with '..'")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _link_escapes(rel: PurePosixPath, target: str) -> bool:
    """True if a link at ``rel`` pointing to ``target`` resolves outside the dest."""
    target = target.replace("\\", "/")
    if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return True
    joined = posixpath.normpath(posixpath.join(str(rel.parent), target))
    return joined == ".." or joined.startswith("../")


@dataclass
class _Member:
    rel: PurePosixPath
    open: Any  # () -> binary file object
    size: int = 0  # unpacked bytes (as the archive declares them)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> tuple[list[_Member], int]:
    members, skipped = [], 0
    for info in zf.infolist():
        rel = safe_member_path(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            if _link_escapes(rel, zf.read(info).decode("utf-8", "replace")):
                raise _unsafe(archive, info.filename, "is a symbolic link pointing outside")
            skipped += 1
            continue
        if info.is_dir():
            continue
        if not is_wanted(rel):
            skipped += 1
            continue
        members.append(_Member(rel, lambda info=info: zf.open(info), info.file_size))
    return members, skipped


def _tar_members(archive: Path, tf: tarfile.TarFile) -> tuple[list[_Member], int]:
    members, skipped = [], 0
    for info in tf.getmembers():
        rel = safe_member_path(archive, info.name)
        if info.issym() or info.islnk():
            # a symlink's target is relative to its folder, a hard link's to the archive root
            where = rel if info.issym() else PurePosixPath("member")
            if _link_escapes(where, info.linkname):
                raise _unsafe(archive, info.name, "is a link pointing outside")
            skipped += 1
            continue
        if info.isdir():
            continue
        if not info.isfile():  # devices, fifos
            skipped += 1
            continue
        if not is_wanted(rel):
            skipped += 1
            continue
        members.append(_Member(rel, lambda info=info: tf.extractfile(info), info.size))
    return members, skipped


def _folder_members(source: Path) -> tuple[list[_Member], int]:
    everything = walk_files(source, lambda _name: True)
    members = []
    for path in everything:
        rel = PurePosixPath(path.relative_to(source).as_posix())
        if is_wanted(rel):
            members.append(_Member(rel, lambda path=path: open(path, "rb")))
    return members, len(everything) - len(members)


@dataclass
class _Opened:
    members: list[_Member]
    skipped: int
    handle: Any = None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _open_source(source: Path) -> _Opened:
    if source.is_dir():
        return _Opened(*_folder_members(source))
    if zipfile.is_zipfile(source):
        try:
            zf = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SerError(f"{source}: not a readable zip archive ({exc}); "
                           "download it again") from None
        try:
            return _Opened(*_zip_members(source, zf), handle=zf)
        except BaseException:
            zf.close()
            raise
    try:
        is_tar = tarfile.is_tarfile(source)
    except OSError:
        is_tar = False
    if is_tar:
        try:
            tf = tarfile.open(source)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SerError(f"{source}: not a readable tar archive ({exc}); "
                           "download it again") from None
        try:
            return _Opened(*_tar_members(source, tf), handle=tf)
        except (tarfile.TarError, OSError, EOFError) as exc:
            tf.close()
            raise SerError(f"{source}: not a readable tar archive ({exc}); "
                           "download it again") from None
        except BaseException:
            tf.close()
            raise
    raise SerError(f"{source}: not a .zip/.tar.gz/.tar archive (or a truncated one) nor a "
                   "folder; pass the complete archive as downloaded, or the unpacked folder")


def check_archive_size(source: Path, members: list[_Member], *,
                       max_unpacked_gb: float = MAX_UNPACKED_GB,
                       max_ratio: float = MAX_RATIO) -> None:
    """Refuse an archive that unpacks to too much, or far more than its own size (zip bomb).

    Raises
    ------
    SerError
        Naming the archive, the limit and the option that raises it.
    """
    if source.is_dir():
        return
    total = sum(m.size for m in members)
    packed = max(1, source.stat().st_size)
    if total > max_unpacked_gb * 1e9:
        raise SerError(f"{source}: would unpack to {total / 1e9:.1f} GB, above the limit of "
                       f"{max_unpacked_gb:g} GB; nothing was written - if the archive is "
                       "genuine, raise the limit with --max-unpacked-gb")
    ratio = total / packed
    if total > RATIO_FLOOR_BYTES and ratio > max_ratio:
        raise SerError(f"{source}: expands {ratio:.0f} times ({packed / 1e6:.1f} MB -> "
                       f"{total / 1e6:.0f} MB), above the limit of {max_ratio:g}x for audio; "
                       "nothing was written - it looks like a zip bomb; if it is genuine, "
                       "raise the limit with --max-ratio")


def _check_dest(dest: Path, *, force: bool, name: str) -> list[str] | None:
    """Refuse a destination the import could damage; return the files a previous import wrote.

    ``None``: ``dest`` is missing or empty (written whole, atomically).
    """
    here = Path.cwd().resolve()
    resolved = dest.resolve()
    if here.is_relative_to(resolved):
        raise SerError(f"--dest {dest}: is the current folder or one above it; the corpus "
                       f"needs a folder of its own, e.g. --dest data/raw/{name}")
    if dest.is_symlink():
        raise SerError(f"--dest {dest}: is a link (to {os.readlink(dest)}); an import never "
                       "writes through links - give the real folder as --dest")
    if dest.exists() and not dest.is_dir():
        raise SerError(f"--dest {dest}: exists and is not a folder; choose another --dest")
    if not dest.is_dir() or not any(dest.iterdir()):
        return None
    if not force:
        raise SerError(f"--dest {dest}: exists and is not empty; an import never deletes files "
                       f"it did not write - choose a new folder (e.g. data/raw/{name}) or pass "
                       "--force to add the corpus there, replacing only the files a previous "
                       "import wrote")
    record = dest / IMPORT_RECORD
    if not record.is_file():
        return []
    try:
        files = json.loads(record.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise SerError(f"{record}: unreadable import record; delete it if you are sure the "
                       "folder holds nothing of yours, or choose another --dest") from None
    return [str(f) for f in files]


def _merge_into(staging: Path, dest: Path, previous: list[str]) -> None:
    """Move a verified staging copy into an existing ``dest``.

    Only files listed in ``previous`` (a former import's record) are removed;
    a new file that would overwrite anything else, or be written through a link
    (a linked sub-folder of ``dest`` pointing elsewhere), is refused before any change.
    A file that appears at a new name while merging is never overwritten.
    """
    new = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()}
    new.discard(IMPORT_RECORD)
    owned = set(previous)
    links = sorted(rel for rel in new | {IMPORT_RECORD}
                   if not inside_without_links(dest, dest / rel) or (dest / rel).is_symlink())
    if links:
        raise SerError(f"--dest {dest}: {len(links)} file(s) would be written through a link "
                       f"(e.g. {links[0]}); an import never writes outside --dest - nothing "
                       "was changed; replace the link by a real folder or choose another --dest")
    clashes = sorted(rel for rel in new if (dest / rel).is_dir() or (
        rel not in owned and (dest / rel).exists()))
    if clashes:
        raise SerError(f"--dest {dest}: {len(clashes)} file(s) there were not written by an "
                       f"import and would be overwritten (e.g. {clashes[0]}); nothing was "
                       "changed - move them away or choose another --dest")
    for rel in sorted(owned - new):
        old = dest / rel
        if inside_without_links(dest, old) and old.is_file() and not old.is_symlink():
            old.unlink()
    for rel in sorted(new):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in owned and target.is_file():
            os.replace(staging / rel, target)
        else:
            place_new(staging / rel, target, option="--dest")
    os.replace(staging / IMPORT_RECORD, dest / IMPORT_RECORD)


def _write_record(folder: Path, name: str, source: Path) -> None:
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != IMPORT_RECORD)
    (folder / IMPORT_RECORD).write_text(json.dumps(
        {"corpus": name, "source": str(source), "files": files}, indent=1) + "\n")


def _copy_members(members: list[_Member], dest: Path, source: Path) -> int:
    """Write every member under ``dest`` (already checked to stay inside it)."""
    root = dest.resolve()
    from tqdm import tqdm

    for member in tqdm(members, desc=f"unpacking into {dest.name}", unit="file",
                       disable=None, leave=False):
        target = dest.joinpath(*member.rel.parts)
        if not target.resolve().is_relative_to(root):  # belt and braces
            raise SerError(f"refusing to write {member.rel}: it resolves outside {dest}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with member.open() as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, RuntimeError) as exc:
            raise SerError(f"{source}: cannot read member {member.rel} ({exc}); the archive is "
                           "corrupt or truncated - download it again") from None
    return len(members)


def find_dvc_root(path: Path) -> Path | None:
    """Return the nearest folder at or above ``path`` holding a ``.dvc/`` folder, or None."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def _dvc_command() -> list[str] | None:
    try:
        import dvc  # noqa: F401
    except ImportError:
        exe = shutil.which("dvc")
        return [exe] if exe else None
    return [sys.executable, "-m", "dvc"]


def run_dvc_add(path: Path) -> tuple[Path | None, str]:
    """Run ``dvc add <path>`` (one entry for the whole folder) from the DVC repository root.

    Returns
    -------
    dvc_file, note
        The ``.dvc`` file (None if DVC was not run) and a sentence for people.

    Raises
    ------
    SerError
        If ``dvc add`` fails; the files stay where they are.
    """
    repo = find_dvc_root(path.parent)
    if repo is None:
        return None, (f"dvc: {path} is not inside a DVC repository; skipped 'dvc add' "
                      "(run 'dvc init' in the project, then 'dvc add' the folder)")
    command = _dvc_command()
    if command is None:
        return None, "dvc: not installed; skipped 'dvc add' (pip install dvc)"
    rel = path.resolve().relative_to(repo)
    proc = subprocess.run([*command, "add", str(rel)], cwd=repo, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise SerError(f"'dvc add {rel}' failed in {repo} ({detail[-1] if detail else 'no output'})"
                       f"; the files are in {path}: fix the problem and run 'dvc add {rel}'")
    dvc_file = path.with_name(path.name + ".dvc")
    rel_file = rel.with_name(rel.name + ".dvc")
    return dvc_file, (f"dvc: tracked as {rel_file}; commit it with "
                      f"'git add {rel_file} {rel.parent / '.gitignore'}' and upload the "
                      "audio with 'dvc push'")


# ---------------------------------------------------------------- import


def import_corpus(
    name: str,
    source: str | Path,
    *,
    dest: str | Path | None = None,
    dvc_add: bool = True,
    expected_sha256: str | None = None,
    force: bool = False,
    max_unpacked_gb: float = MAX_UNPACKED_GB,
    max_ratio: float = MAX_RATIO,
) -> ImportResult:
    """Verify a corpus archive or folder, unpack it safely into ``dest``, track it with DVC.

    Parameters
    ----------
    name
        Corpus name (see :data:`CORPORA`).
    source
        A ``.zip``/``.tar.gz``/``.tgz``/``.tar`` archive, or a folder.
    dest
        Where the corpus goes; default ``data/raw/<name>``. A missing or empty
        ``dest`` is written only once the new copy is complete and verified.
        A non-empty one is refused unless ``force``.
    dvc_add
        Run ``dvc add <dest>`` if ``dest`` is inside a DVC repository.
    expected_sha256
        Refuse an archive whose SHA-256 differs (hex digest).
    force
        Import into a non-empty ``dest``: files a previous import recorded in
        ``.ser-import.json`` are replaced, every other file is kept (and an
        import that would overwrite one is refused).
    max_unpacked_gb, max_ratio
        Refuse an archive unpacking to more than this many GB, or more than
        this many times its own size (see :func:`check_archive_size`).

    Returns
    -------
    ImportResult
        Use :meth:`ImportResult.report` to show it.

    Raises
    ------
    SerError
        Missing source, unknown format, SHA-256 mismatch, unsafe archive
        member (absolute path, ``..``, link outside), no ``.wav`` file, or no
        file that parses as this corpus. Nothing is written to ``dest`` then.
    """
    info = corpus_info(name)
    source = Path(source)
    dest = raw_root(name) if dest is None else Path(dest)
    if not source.exists():
        raise SerError(f"{source}: not found; give the path of the downloaded {name} archive "
                       f"or folder ({info.how_to_get})")
    digest = None
    if source.is_dir() and expected_sha256:
        raise ConfigError(f"{source}: is a folder; a sha256 can only be checked for an archive")
    if source.is_file():
        digest = sha256_file(source)
        if expected_sha256 and digest.lower() != expected_sha256.lower().removeprefix("sha256:"):
            raise SerError(f"{source}: sha256 mismatch (expected {expected_sha256}, got {digest}); "
                           "the file is corrupt or another version - delete it and download "
                           "it again")

    if source.is_dir() and source.resolve() == dest.resolve():
        result = _verify(name, dest, source, info)
        written, skipped = 0, 0
    else:
        if source.is_dir() and dest.resolve().is_relative_to(source.resolve()):
            raise SerError(f"{dest}: the destination is inside the source folder {source}; "
                           "choose another --dest")
        previous = _check_dest(dest, force=force, name=name)
        opened = _open_source(source)
        try:
            check_archive_size(source, opened.members, max_unpacked_gb=max_unpacked_gb,
                               max_ratio=max_ratio)
            if previous is None:  # new or empty folder: written whole, atomically
                # Renamed onto the empty or missing folder; if files appeared there
                # meanwhile they are kept and the corpus is moved in beside them.
                with atomic_path(dest, marker=False, option="--dest") as staging:
                    staging.mkdir()
                    written = _copy_members(opened.members, staging, source)
                    _verify(name, staging, source, info)
                    _write_record(staging, name, source)
            else:  # an existing folder is never replaced: staged beside it, then merged
                tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial",
                                            dir=dest.parent))
                try:
                    staging = tmp / dest.name
                    staging.mkdir()
                    written = _copy_members(opened.members, staging, source)
                    _verify(name, staging, source, info)
                    _write_record(staging, name, source)
                    _merge_into(staging, dest, previous)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            opened.close()
        skipped = opened.skipped
        result = PARSERS[name](dest, **info.verify_options)  # paths as they are now

    imported = ImportResult(name=name, source=source, dest=dest, sha256=digest,
                            n_written=written, n_skipped=skipped, parse=result,
                            expected_wavs=info.expected_wavs)
    if dvc_add:
        imported.dvc_file, imported.dvc_note = run_dvc_add(dest)
    else:
        imported.dvc_note = f"dvc: skipped (--no-dvc); track it later with 'dvc add {dest}'"
    return imported


def _verify(name: str, folder: Path, source: Path, info: CorpusInfo) -> ParseResult:
    """Parse the unpacked files; refuse if nothing is recognisably this corpus."""
    result = PARSERS[name](folder, **info.verify_options)
    if not result.rows and not result.rejected:
        raise SerError(f"{source}: holds no .wav files; is it the {name} audio "
                       f"({info.how_to_get})?")
    if not result.rows:
        reasons: dict[str, int] = {}
        for _, reason in result.rejected:
            reasons[reason] = reasons.get(reason, 0) + 1
        top = max(reasons, key=reasons.__getitem__)
        raise SerError(f"{source}: none of its {len(result.rejected)} .wav files parse as "
                       f"{name} (most common reason: {top}); is it the right corpus?")
    return result


# ---------------------------------------------------------------- download


def default_download_dir() -> Path:
    """Download cache: ``$SER_DOWNLOAD_DIR`` or the user cache (``~/.cache/ser``)."""
    env = os.environ.get(DOWNLOAD_CACHE_ENV)
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("ser"))


def download_corpus(
    name: str,
    *,
    url: str | None = None,
    known_hash: str | None = None,
    dest_dir: str | Path | None = None,
    dest: str | Path | None = None,
    dvc_add: bool = True,
    force: bool = False,
    max_unpacked_gb: float = MAX_UNPACKED_GB,
    max_ratio: float = MAX_RATIO,
) -> ImportResult:
    """Download a corpus archive with pooch (progress bar, hash check), then import it.

    Parameters
    ----------
    name
        Corpus name (see :data:`CORPORA`).
    url
        Archive URL; default the registry's public URL (RAVDESS, EMO-DB).
    known_hash
        Expected hash in pooch's format (``"sha256:<hex>"``, ``"md5:<hex>"``
        or a bare SHA-256); default the registry's, if known. None downloads
        without a check and the import report prints the SHA-256 to pin.
    dest_dir
        Download cache folder; default :func:`default_download_dir`. An
        archive already there (with a matching hash) is not fetched again.
    dest, dvc_add, force, max_unpacked_gb, max_ratio
        Passed to :func:`import_corpus`.

    Raises
    ------
    SerError
        No URL known, download failure, hash mismatch, or an import error.
    """
    info = corpus_info(name)
    url = url or info.url
    if not url:
        raise ConfigError(f"no public download URL for {name} ({info.source}); "
                          f"{info.how_to_get}")
    known_hash = known_hash or (info.sha256 if url == info.url else None)
    fname = (info.archive if url == info.url and info.archive
             else posixpath.basename(url.split("?")[0]) or f"{name}.zip")
    folder = Path(dest_dir) if dest_dir is not None else default_download_dir()
    import pooch

    cached = folder / fname
    if _cached_download_ok(cached, known_hash):
        return import_corpus(name, cached, dest=dest, dvc_add=dvc_add, force=force,
                             max_unpacked_gb=max_unpacked_gb, max_ratio=max_ratio)
    try:
        archive = pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder,
                                 progressbar=True)
        _write_download_record(Path(archive))
    except ValueError as exc:  # hash mismatch
        raise SerError(f"{url}: {str(exc).splitlines()[0]} - the download is corrupt or "
                       "another version; nothing was imported") from None
    except OSError as exc:  # requests' errors are OSErrors
        raise SerError(f"{url}: download failed ({type(exc).__name__}: {exc}); check the URL "
                       f"and connection, or download it yourself and run "
                       f"'ser data import {name} <file>'") from None
    return import_corpus(name, Path(archive), dest=dest, dvc_add=dvc_add, force=force,
                         max_unpacked_gb=max_unpacked_gb, max_ratio=max_ratio)


#: Beside each archive the tool downloaded: its SHA-256 (``<archive>.ser-download``).
DOWNLOAD_RECORD_SUFFIX = ".ser-download"


def _is_download_record(path: Path) -> bool:
    """Whether ``path`` holds just a SHA-256 line, as :func:`_write_download_record` writes."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _write_download_record(archive: Path) -> None:
    """Record the archive's SHA-256 beside it: the next run knows the file is its own."""
    with atomic_path(f"{archive}{DOWNLOAD_RECORD_SUFFIX}", owned=_is_download_record,
                     option="--cache-dir") as tmp:
        tmp.write_text(sha256_file(archive) + "\n")


def _hash_matches(path: Path, known_hash: str) -> bool:
    import pooch

    alg, _, digest = known_hash.rpartition(":")
    try:
        return pooch.file_hash(str(path), alg=(alg or "sha256").lower()) == digest.lower()
    except ValueError:
        raise ConfigError(f"--known-hash {known_hash}: unknown hash algorithm "
                          f"{alg!r}; use sha256:<hex> or md5:<hex>") from None


def _cached_download_ok(cached: Path, known_hash: str | None) -> bool:
    """Whether ``cached`` (the archive's name in the download cache) can be used as is.

    ``False``: nothing there (or the tool's own earlier download, which pooch may
    fetch again). A file the tool did not download is never overwritten, and never
    used unless ``known_hash`` verifies it; links and folders are refused.
    """
    folder = cached.parent
    if folder.is_symlink():
        raise SerError(f"--cache-dir {folder}: is a link (to {os.readlink(folder)}); downloads "
                       "never write through links - give the real folder")
    if folder.exists() and not folder.is_dir():
        raise SerError(f"--cache-dir {folder}: is a file, not a folder; choose another "
                       "--cache-dir")
    if cached.is_symlink():
        raise SerError(f"--cache-dir {folder}: {cached.name} there is a link; the download "
                       "never follows or replaces links - move it away or choose another "
                       "--cache-dir")
    if not cached.exists():
        return False
    if not cached.is_file():
        raise SerError(f"--cache-dir {folder}: {cached.name} there is not a regular file "
                       "(a folder?); nothing was changed - move it away or choose another "
                       "--cache-dir")
    record = Path(f"{cached}{DOWNLOAD_RECORD_SUFFIX}")
    ours = record.is_file() and record.read_text().strip() == sha256_file(cached)
    if known_hash:
        if _hash_matches(cached, known_hash):
            return True  # verified: no need to download it again
        if ours:
            return False  # the tool's own earlier download: pooch fetches the right one
        raise SerError(f"{cached}: already exists, was not downloaded by ser and does not "
                       f"match --known-hash {known_hash}; it was left alone - move it away "
                       "or choose another --cache-dir")
    if ours:
        return True
    raise SerError(f"{cached}: already exists and was not downloaded by ser; without "
                   "--known-hash it cannot be verified, so it is neither used nor "
                   "overwritten - pass --known-hash, move it away or choose another "
                   "--cache-dir")


# ---------------------------------------------------------------- command line


def register(subparsers: Any) -> None:
    """Add ``ser data import|download|list`` to the ``ser`` command."""
    data = subparsers.add_parser(
        "data", help="import or download the real corpora (tracked with DVC)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = data.add_subparsers(dest="data_command", required=True, metavar="{import,download,list}")
    names = sorted(CORPORA)

    imp = sub.add_parser(
        "import", help="verify and unpack a corpus archive or folder into data/raw/NAME",
        description="Verify a corpus archive (.zip/.tar.gz/.tgz/.tar) or folder, unpack its "
                    ".wav audio and metadata into data/raw/NAME (refusing members that would "
                    "land outside it), then 'dvc add data/raw/NAME'.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("name", choices=names, metavar="NAME", help=f"corpus: {', '.join(names)}")
    imp.add_argument("source", type=Path, metavar="SOURCE", help="archive or folder to import")
    imp.add_argument("--dest", type=Path, default=None,
                     help="destination folder (default: data/raw/NAME)")
    imp.add_argument("--sha256", default=None, metavar="HEX",
                     help="refuse the archive unless its SHA-256 is this")
    imp.add_argument("--no-dvc", action="store_true", help="do not run 'dvc add'")
    _add_safety_arguments(imp)
    imp.set_defaults(func=_cmd_import)

    dl = sub.add_parser(
        "download", help="download a corpus with a public URL, then import it",
        description="Download a corpus archive (RAVDESS and EMO-DB have public URLs; give "
                    "--url for others) into the download cache, then import it as "
                    "'ser data import' does.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    dl.add_argument("name", choices=names, metavar="NAME", help=f"corpus: {', '.join(names)}")
    dl.add_argument("--url", default=None, help="archive URL (default: the corpus' public URL)")
    dl.add_argument("--known-hash", default=None, metavar="HASH",
                    help="expected hash: sha256:<hex>, md5:<hex> or a bare SHA-256")
    dl.add_argument("--cache-dir", type=Path, default=None,
                    help=f"download cache (default: ${DOWNLOAD_CACHE_ENV} or ~/.cache/ser)")
    dl.add_argument("--dest", type=Path, default=None,
                    help="destination folder (default: data/raw/NAME)")
    dl.add_argument("--no-dvc", action="store_true", help="do not run 'dvc add'")
    _add_safety_arguments(dl)
    dl.set_defaults(func=_cmd_download)

    ls = sub.add_parser("list", help="list the known corpora and how to get each",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ls.set_defaults(func=_cmd_list)


def _add_safety_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="import into a non-empty --dest: replace only the files a previous "
                             "import wrote there, keep everything else")
    parser.add_argument("--max-unpacked-gb", type=float, default=MAX_UNPACKED_GB, metavar="GB",
                        help=f"refuse an archive unpacking to more (default {MAX_UNPACKED_GB:g})")
    parser.add_argument("--max-ratio", type=float, default=MAX_RATIO, metavar="R",
                        help="refuse an archive expanding more than R times its size "
                             f"(zip bomb; default {MAX_RATIO:g})")


def _cmd_import(args: Any) -> int:
    result = import_corpus(args.name, args.source, dest=args.dest, dvc_add=not args.no_dvc,
                           expected_sha256=args.sha256, force=args.force,
                           max_unpacked_gb=args.max_unpacked_gb, max_ratio=args.max_ratio)
    print(result.report())
    return 0


def _cmd_download(args: Any) -> int:
    result = download_corpus(args.name, url=args.url, known_hash=args.known_hash,
                             dest_dir=args.cache_dir, dest=args.dest, dvc_add=not args.no_dvc,
                             force=args.force, max_unpacked_gb=args.max_unpacked_gb,
                             max_ratio=args.max_ratio)
    print(result.report())
    return 0


def _cmd_list(args: Any) -> int:
    for info in CORPORA.values():
        print(f"{info.name}: {info.title}\n  {info.expected_wavs} clips; licence: {info.licence}"
              f"\n  source: {info.source}\n  get it: {info.how_to_get}")
    return 0
