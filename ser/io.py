"""Atomic writes, so that an interrupted stage never leaves a finished-looking output."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ser.errors import SerError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Works for files and folders. On an exception the temporary is removed and
    ``path`` is left as it was, so a half-written output is never mistaken
    for a finished one. An existing ``path`` is replaced whole, so callers
    pass only outputs the tool owns: user-chosen folders (``ser data import
    --dest``, ``ser evaluate --out``) are checked by their commands first and
    never replaced when they hold anything else. The current folder or one
    above it is always refused.
    """
    path = Path(path)
    if path.name in ("", ".", "..") or Path.cwd().resolve().is_relative_to(path.resolve()):
        # Replacing it would delete the working tree (and files the tool never wrote).
        raise SerError(f"{path}: is the current folder or one above it; refusing to replace "
                       "it - write the output to a folder of its own")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise FileNotFoundError(f"nothing was written to {target}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
