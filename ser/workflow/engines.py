"""One workflow engine at a time in a checkout: Snakemake and DVC exclude each other.

Both engines write the same outputs (``data/``, ``models/``, ``metrics/``, ...), so a
``dvc repro`` during a Snakemake build can check cached outputs out over fresh ones.
Each engine already locks the checkout against itself; this module makes each respect
the other's lock:

* **Snakemake holds DVC's own lock.** The Snakefile calls :func:`claim_for_snakemake`
  at parse time: it takes ``.dvc/tmp/lock`` - the file DVC locks (``flock``, via
  ``zc.lockfile``) for every command that reads or writes the workspace - and keeps it
  until :func:`release` at the end of the Snakefile's ``onsuccess`` (after ``python -m
  ser.workflow.wiring record`` ran ``dvc commit`` under it) or ``onerror``, or until the process
  ends (the kernel drops an ``flock`` when its holder exits: a killed build leaves
  nothing stale). A ``dvc repro`` started meanwhile stops at once with DVC's "Unable to
  acquire lock", before it removes or checks out anything. A Snakemake started while DVC
  holds the lock, or while a DVC stage command runs (DVC lets go of the lock then and
  lists the stage's paths with its pid in ``.dvc/tmp/rwlock``), prints one line and
  exits 2.
* **DVC stages refuse while Snakemake holds the checkout** (``.snakemake/locks/`` not
  empty): the first step of every ``dvc.yaml`` command, ``sh workflow/python``, checks
  it (:func:`snakemake_holds` is the same test in Python).

``workflow/python`` also picks the interpreter of a DVC stage - ``$SER_PYTHON``, else the
checkout's ``.venv/bin/python``, else ``python3``/``python`` on ``PATH``, the first one
that imports ``ser`` - so ``.venv/bin/dvc repro`` works without the venv on ``PATH``
and a missing environment is one line, not a stage half run by a bare ``python``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any

#: The file DVC locks for the duration of a command (``dvc.repo.Repo.lock``).
DVC_LOCK = Path(".dvc") / "tmp" / "lock"
#: DVC's list of the paths its running stage commands read and write (with their pid).
DVC_RWLOCK = Path(".dvc") / "tmp" / "rwlock"
#: Snakemake's lock folder: not empty while a (non ``--nolock``) run holds the checkout.
SNAKEMAKE_LOCKS = Path(".snakemake") / "locks"
#: Set by the Snakefile's ``onsuccess`` for ``python -m ser.workflow.wiring record``: the Snakemake
#: run (its parent) holds DVC's lock for it, so its ``dvc commit`` must not take it again.
LOCK_HELD_ENV = "SER_DVC_LOCK_HELD"
#: Set while :mod:`ser.workflow.wiring` builds the job graph through Snakemake's API (it must not
#: take the lock: it runs inside Snakemake's ``onsuccess`` and calls ``dvc commit``).
WIRING_ENV = "SER_WIRING"


def _try_flock(path: Path) -> IO[Any] | None:
    """An open handle of ``path`` holding an exclusive ``flock``, or ``None`` if another
    process holds it."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held until release()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def dvc_holds(root: str | Path = ".") -> bool:
    """Whether a DVC command holds ``root``'s repository lock right now."""
    lock = Path(root) / DVC_LOCK
    if not lock.is_file():
        return False
    handle = _try_flock(lock)
    if handle is None:
        return True
    release(handle)
    return False


def dvc_stage_running(root: str | Path = ".") -> bool:
    """Whether a DVC stage command runs in ``root`` right now: DVC releases its repository
    lock while a stage's command runs and lists the stage's paths, with its process id, in
    ``.dvc/tmp/rwlock`` instead (an entry of a process that is gone does not count)."""
    import json

    path = Path(root) / DVC_RWLOCK
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    infos = list((doc.get("write") or {}).values())
    infos += [i for group in (doc.get("read") or {}).values() for i in group]
    for info in infos:
        pid = info.get("pid") if isinstance(info, dict) else None
        if isinstance(pid, int) and pid > 0 and _alive(pid):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def snakemake_holds(root: str | Path = ".") -> bool:
    """Whether a Snakemake run holds ``root`` (its lock folder is not empty)."""
    locks = Path(root) / SNAKEMAKE_LOCKS
    return locks.is_dir() and any(locks.iterdir())


def claim_for_snakemake(workflow: Any, root: str | Path = ".") -> IO[Any] | None:
    """Take DVC's lock for this Snakemake run (see the module docstring); ``None`` when
    there is nothing to take (no ``.dvc`` folder, a job process of a cluster run, the
    wiring module's own graph building). Prints one line and exits 2 if DVC holds it."""
    root = Path(root)
    if os.environ.get(WIRING_ENV) or not (root / ".dvc").is_dir() or \
            not getattr(workflow, "is_main_process", True):
        return None
    handle = _try_flock(root / DVC_LOCK)
    if handle is not None and dvc_stage_running(root):
        release(handle)  # DVC lets go of its lock while a stage command runs
        handle = None
    if handle is None:
        print("error: a DVC command (dvc repro?) is running in this checkout (it holds "
              f"{DVC_LOCK}); wait for it to finish - Snakemake and DVC must not build the "
              "same outputs at once", file=sys.stderr)
        raise SystemExit(2)
    return handle


def release(handle: IO[Any] | None) -> None:
    """Give a lock taken by :func:`claim_for_snakemake` back (idempotent)."""
    if handle is None or handle.closed:
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()
