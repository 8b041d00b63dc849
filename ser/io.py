"""Atomic writes, so that an interrupted stage never leaves a finished-looking output."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Works for files and folders. On an exception the temporary is removed and
    ``path`` is left as it was, so a half-written output is never mistaken
    for a finished one.
    """
    path = Path(path)
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
