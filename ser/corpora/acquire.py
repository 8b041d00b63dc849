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

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ser.corpora import PARSERS, ParseResult
from ser.corpora.archives import (
    MAX_RATIO,
    MAX_UNPACKED_GB,
    _copy_members,
    _open_source,
    check_archive_size,
)
from ser.corpora.sources import CORPORA, CorpusInfo
from ser.errors import ConfigError, SerError
from ser.layout import raw_root
from ser.outputs import atomic_path, inside_without_links, place_new, sha256_file

#: Record of the files an import wrote into its destination (what ``--force`` may replace).
IMPORT_RECORD = ".ser-import.json"


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

