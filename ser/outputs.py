"""Safe, atomic writes: an interrupted stage never leaves a finished-looking output, and
nothing the tool did not write is ever removed or replaced.

The one rule every command and stage follows (:func:`atomic_path`):

* A new output is built next to its target and moved into place only when complete.
* An existing target is replaced only when it is recognisably the tool's own:

  - a **folder** holding the marker file :data:`OUTPUT_MARKER` (``.ser-output``, JSON
    listing every file the tool wrote there; model folders are recognised by their
    ``SHA256SUMS`` instead) and nothing else. It is swapped whole with two renames;
    afterwards only the files the marker lists are deleted from the old copy, never a
    whole tree, so a file that appeared meanwhile survives (and is named);
  - a **file** listed in its folder's marker, a Parquet table carrying the metadata key
    :data:`PARQUET_KEY`, or a file the caller's ``owned`` test recognises.

* Anything else is refused with one line naming ``--force`` (or, for a folder where a
  file belongs, naming the folder). ``--force`` (:func:`replacing_allowed`) writes
  *into* a foreign folder file by file, keeping every file there and refusing a name
  that is not the tool's; for a file target it replaces that file (never a folder, and a
  folder output never replaces a file).
* Links are never followed out of a destination: a link at the target, or a linked
  sub-folder of a folder written into, is refused.
* An empty or missing target is never emptied first: a folder is renamed onto it (the
  kernel refuses if something appeared there meanwhile, and the files are then moved in
  one by one beside it); a file is hard-linked into place, which fails if one appeared.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ser.errors import SerError

#: Marker file in every folder the tool writes: JSON ``{"written_by": "ser", "files": [...]}``.
OUTPUT_MARKER = ".ser-output"
#: Parquet schema metadata key the tool writes into its loose tables.
PARQUET_KEY = b"ser.output"
#: Model folders list their files here (``sha256sum`` format); see :mod:`ser.models.store`.
CHECKSUMS_NAME = "SHA256SUMS"

#: Bookkeeping files a workflow engine adds to a folder output (Snakemake's timestamp of
#: ``directory()`` outputs): the tool's own as far as replacing the folder goes.
ENGINE_FILES = frozenset({".snakemake_timestamp"})

_FORCE: ContextVar[bool] = ContextVar("ser_replace_foreign", default=False)


def allow_replacing(force: bool) -> None:
    """Set whether this command passed ``--force`` (read by :func:`atomic_path`).

    Commands call it right after parsing their arguments; :func:`ser.cli.run_cli`
    resets it when the command ends.
    """
    _FORCE.set(bool(force))


@contextmanager
def replacing_allowed(force: bool) -> Iterator[None]:
    """``--force`` for the writes inside the block (see the module docstring)."""
    token = _FORCE.set(bool(force))
    try:
        yield
    finally:
        _FORCE.reset(token)


def forced() -> bool:
    """Whether the running command passed ``--force``."""
    return _FORCE.get()


# --------------------------------------------------------------------------- ownership


def read_marker(folder: str | Path) -> set[str] | None:
    """The files (relative posix paths) the tool recorded writing in ``folder``, or None.

    A model folder (``SHA256SUMS`` + ``card.json``, no marker) is recognised by the
    files its checksum manifest lists.
    """
    folder = Path(folder)
    marker = folder / OUTPUT_MARKER
    if marker.is_file() and not marker.is_symlink():
        try:
            doc = json.loads(marker.read_text(encoding="utf-8"))
            files = {str(f) for f in doc["files"]} if doc.get("written_by") == "ser" else None
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            files = None
        return None if files is None else files | {OUTPUT_MARKER} | ENGINE_FILES
    sums = folder / CHECKSUMS_NAME
    if sums.is_file() and not sums.is_symlink() and (folder / "card.json").is_file():
        files = {CHECKSUMS_NAME} | ENGINE_FILES
        for line in sums.read_text(errors="replace").splitlines():
            digest, sep, rel = line.partition("  ")
            if sep and len(digest) == 64:
                files.add(rel)
        return files
    return None


def write_marker(folder: str | Path, files: set[str] | list[str]) -> None:
    """Write ``folder``'s :data:`OUTPUT_MARKER` listing ``files`` (atomically)."""
    folder = Path(folder)
    names = sorted(set(files) - {OUTPUT_MARKER} - ENGINE_FILES)
    tmp = folder / f".{OUTPUT_MARKER}.{os.getpid()}.partial"
    tmp.write_text(json.dumps({"written_by": "ser", "files": names}, indent=1) + "\n",
                   encoding="utf-8")
    os.replace(tmp, folder / OUTPUT_MARKER)


def _files_under(folder: Path) -> set[str]:
    """Every non-folder entry under ``folder`` (links not followed), relative posix paths."""
    found: set[str] = set()
    for top, dirs, files in os.walk(folder):
        base = Path(top)
        # os.walk lists links to folders in ``dirs`` without entering them: they count as entries.
        entries = files + [d for d in dirs if (base / d).is_symlink()]
        found.update((base / name).relative_to(folder).as_posix() for name in entries)
    return found


def parquet_is_ours(path: Path) -> bool:
    """Whether ``path`` is a Parquet file carrying :data:`PARQUET_KEY` in its metadata."""
    try:
        import pyarrow.parquet as pq

        return PARQUET_KEY in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
        return False


def text_starts_with(prefix: str) -> Callable[[Path], bool]:
    """An ``owned`` test: the file's first bytes are ``prefix``.

    Parameters
    ----------
    prefix : str
        The text every file the tool writes there starts with (e.g. a CSV header).

    Returns
    -------
    callable
        ``owned(path) -> bool``, for :func:`check_output` and :func:`atomic_path`.
    """
    raw = prefix.encode("utf-8")

    def owned(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                return fh.read(len(raw)) == raw
        except OSError:
            return False
    return owned


def head_contains(text: str, size: int = 4096) -> Callable[[Path], bool]:
    """An ``owned`` test: ``text`` occurs in the file's first ``size`` bytes."""
    raw = text.encode("utf-8")

    def owned(path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                return raw in fh.read(size)
        except OSError:
            return False
    return owned


def _file_is_ours(path: Path, owned: Callable[[Path], bool] | None) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    listed = read_marker(path.parent)
    if listed is not None and path.name in listed:
        return True
    if path.suffix == ".parquet" and parquet_is_ours(path):
        return True
    return bool(owned and owned(path))


def _example(names: set[str]) -> str:
    return f"{len(names)} file(s) this tool did not write (e.g. {sorted(names)[0]})"


# --------------------------------------------------------------------------- checks


def check_output(path: str | Path, *, kind: str | None = None,
                 owned: Callable[[Path], bool] | None = None, option: str = "--out") -> None:
    """Refuse, with one line, a target :func:`atomic_path` would not replace.

    Call it before long work so the user is told at once.

    Parameters
    ----------
    path : str or Path
        The output the command will write.
    kind : {"file", "dir"} or None
        The output's kind when known (``None``: either).
    owned : callable, optional
        Recognises an existing *file* at ``path`` as the tool's (see :func:`atomic_path`).
    option : str
        The command-line option named in the message.

    Raises
    ------
    SerError
        ``path`` is a link, a foreign file or folder (without ``--force``), or of the
        wrong kind.
    """
    path = Path(path)
    force = forced()
    if path.is_symlink():  # checked first: a link is never resolved, wherever it points
        if not force:
            raise SerError(f"{option} {path}: is a link (to {os.readlink(path)}); links are "
                           "never followed or replaced - choose another path, or pass --force "
                           "to replace the link itself (its target is left alone)")
        return
    if path.name in ("", ".", "..") or Path.cwd().resolve().is_relative_to(path.resolve()):
        # Replacing it would delete the working tree (and files the tool never wrote).
        raise SerError(f"{option} {path}: is the current folder or one above it; refusing to "
                       "replace it - write the output to a folder of its own")
    if not path.exists():
        return
    if path.is_dir():
        if kind == "file":
            raise SerError(f"{option} {path}: is a folder, not a file; nothing was written "
                           "into or removed from it - give a file path")
        own = read_marker(path)
        extra = _files_under(path) - (own or set())
        if extra and not force:
            what = "" if own is None else "an earlier output, but "
            raise SerError(f"{option} {path}: {what}holds {_example(extra)}; refusing to "
                           "replace it - choose a new folder, or pass --force to write into "
                           "it, keeping every file there")
        return
    if not path.is_file():
        raise SerError(f"{option} {path}: exists and is not a regular file (a FIFO or device); "
                       "choose another path")
    if kind == "dir":  # a folder output never replaces a file, not even with --force
        raise SerError(f"{option} {path}: is a file, not a folder; nothing was changed - "
                       "choose another path for the output folder")
    if not _file_is_ours(path, owned):
        if not force:
            raise SerError(f"{option} {path}: exists and was not written by this tool; "
                           "refusing to replace it - choose another path, or pass --force "
                           "to replace this file")


# --------------------------------------------------------------------------- writing


@contextmanager
def atomic_path(path: str | Path, *, owned: Callable[[Path], bool] | None = None,
                marker: bool = True, option: str = "--out",
                checked: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    Works for files and folders (the body creates whichever it writes). On an
    exception the temporary is removed and ``path`` is left as it was, so a
    half-written output is never mistaken for a finished one. ``path`` itself is
    replaced only under the rule of this module's docstring: checked on entry
    (:func:`check_output`) and again when the output is moved in.

    Parameters
    ----------
    path
        The output file or folder.
    owned
        Recognises an existing *file* at ``path`` as the tool's (besides the
        folder marker and Parquet metadata).
    marker
        Write :data:`OUTPUT_MARKER` into a folder output (model folders, which list
        their files in ``SHA256SUMS``, and corpus imports, which keep an import
        record, pass ``False``).
    option
        The command-line option named in messages.
    checked
        The caller ran :func:`check_output` before its work: files that appeared in
        the target folder since are written beside (never over), not refused.
    """
    path = Path(path)
    if not checked:
        check_output(path, owned=owned, option=option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SerError(f"{option} {path}: {path.parent} (or a folder above it) is a file, "
                       "not a folder; choose another path") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"nothing was written to {target}")
        if target.is_dir():
            if marker:
                write_marker(target, _files_under(target))
            _install_dir(target, path, marker=marker, option=option)
        else:
            _install_file(target, path, owned=owned, option=option)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install_file(new: Path, path: Path, *, owned, option: str) -> None:
    check_output(path, kind="file", owned=owned, option=option)
    if path.is_symlink() or path.exists():  # ours, or --force: replace that one file
        os.replace(new, path)
    else:
        place_new(new, path, option=option)
    listed = read_marker(path.parent)
    if listed is not None and path.name not in listed and (path.parent / OUTPUT_MARKER).is_file():
        write_marker(path.parent, listed | {path.name})


def place_new(new: Path, path: Path, *, option: str) -> None:
    """Move ``new`` to ``path``, failing (not replacing) if ``path`` appeared meanwhile."""
    try:
        os.link(new, path)
    except FileExistsError:
        raise SerError(f"{option} {path}: a file of that name appeared while writing; it was "
                       "left alone - choose another path or run again") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
            raise
        if path.exists() or path.is_symlink():  # no hard links here: check, then rename
            raise SerError(f"{option} {path}: a file of that name appeared while writing; it "
                           "was left alone - choose another path or run again") from None
        os.replace(new, path)
        return
    new.unlink()


def _install_dir(new: Path, path: Path, *, marker: bool, option: str) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        check_output(path, kind="dir", option=option)  # refuses a file; a link needs --force
        path.unlink()  # --force: replace the link itself, never what it points to
    # The folder was checked on entry; files that appeared in it since are merged beside.
    if not path.exists():
        try:
            os.rename(new, path)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
        # Something appeared at ``path`` while writing: merge beside it instead.
    own = read_marker(path)
    if own is not None and _files_under(path) <= own:
        _swap_whole(new, path, own)
    elif not _files_under(path):
        try:
            os.rename(new, path)  # onto an empty folder: refused if it filled meanwhile
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            merge_into(new, path, own=set(), marker=marker, option=option)
    else:
        merge_into(new, path, own=own or set(), marker=marker, option=option)


def _swap_whole(new: Path, path: Path, own: set[str]) -> None:
    """Replace the tool's own folder ``path`` by ``new`` with two renames.

    The old copy is then emptied of the files its marker lists only; anything else
    found there (it appeared after the check) is kept and named.
    """
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    old.rmdir()
    os.rename(path, old)
    try:
        os.rename(new, path)
    except OSError:
        os.rename(old, path)  # put it back: nothing lost
        raise
    for rel in own:
        victim = old / rel
        if inside_without_links(old, victim) and (victim.is_file() or victim.is_symlink()):
            victim.unlink()
    for top, _dirs, _files in os.walk(old, topdown=False):
        try:
            os.rmdir(top)
        except OSError:
            pass
    if old.exists():
        keep = path.with_name(f"{path.name}.kept-files")
        if not keep.exists():
            os.rename(old, keep)
            old = keep
        print(f"warning: {display_path(old)}: files that appeared in {display_path(path)} "
              "while it was rewritten were kept here", file=sys.stderr)


def inside_without_links(root: Path, target: Path) -> bool:
    """Whether ``target`` lies under ``root`` with no link among its parent folders."""
    try:
        rel = target.relative_to(root)
    except ValueError:
        return False
    if ".." in rel.parts:
        return False
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            return False
    return True


def merge_into(new: Path, dest: Path, *, own: set[str], marker: bool = True,
               option: str = "--out") -> None:
    """Move the files of folder ``new`` into the existing folder ``dest`` one by one.

    Files listed in ``own`` (the tool's, from ``dest``'s marker) are replaced or, when
    the new output lacks them, removed; every other file in ``dest`` is kept. Before any
    change, the merge is refused if a new file would land on something that is not the
    tool's (a foreign file, a folder, a link) or under a linked sub-folder.
    """
    root = dest
    incoming = _files_under(new) - {OUTPUT_MARKER}
    problems = []
    for rel in sorted(incoming):
        target = root / rel
        if not inside_without_links(root, target):
            problems.append(f"{rel} (would be written through a link or a file on its way)")
        elif target.is_symlink():
            problems.append(f"{rel} (is a link)")
        elif target.is_dir():
            problems.append(f"{rel} (is a folder)")
        elif target.exists() and rel not in own:
            problems.append(f"{rel} (a file it did not write)")
    if marker and read_marker(dest) is None and (
            (dest / OUTPUT_MARKER).exists() or (dest / OUTPUT_MARKER).is_symlink()):
        problems.append(f"{OUTPUT_MARKER} (not a marker this tool wrote)")
    if problems:
        raise SerError(f"{option} {dest}: {len(problems)} name(s) there are not this tool's "
                       f"and would be overwritten, e.g. {problems[0]}; nothing was changed - "
                       "move them away or choose another folder")
    stale = {rel for rel in own - incoming - {OUTPUT_MARKER}
             if inside_without_links(root, root / rel)
             and (root / rel).is_file() and not (root / rel).is_symlink()}
    if marker:  # interrupted half-way, every file of ours stays recorded as ours
        write_marker(dest, (own & _files_under(dest)) | incoming)
    for rel in sorted(incoming):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not inside_without_links(root, target):
            raise SerError(f"{option} {dest}: {rel} would be written through a link; stopped")
        if rel in own and (target.is_file() and not target.is_symlink()):
            os.replace(new / rel, target)
        else:
            place_new(new / rel, target, option=option)
    for rel in stale:
        (root / rel).unlink(missing_ok=True)
    if marker:
        write_marker(dest, incoming)


def display_path(path: str | Path) -> str:
    """``path`` as printable UTF-8 text: bytes that are not UTF-8 shown as ``\\xff`` escapes.

    A folder name in another encoding (Latin-1 ``\\xff``) reaches Python as a
    lone surrogate that cannot be printed or written to Parquet/CSV; this
    keeps the name recognisable instead of crashing.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks (memory flat in file size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
