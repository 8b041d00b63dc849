"""Progress of long stages on the console while their output goes to a log file.

Snakemake runs every stage as ``script ... > {log} 2>&1``, so a 80-s LSTM fit
or a grid search shows nothing on the terminal until it ends. When a stage's
stdout is a *regular file* (a log) and the process has a controlling
terminal, :func:`mirror_to_console` copies every complete output line - Keras'
one line per epoch, GridSearchCV's per-fit lines, the stage's summary - to
``/dev/tty`` as well, prefixed with the log's name. The log file receives
exactly the bytes it would without the mirror (nothing is added or
reordered), so Snakemake/DVC outputs and tests are unchanged.

It is off when stdout is a terminal or a pipe (``dvc repro`` and interactive
runs already show the output), when there is no terminal (CI, batch
schedulers), and when ``SER_CONSOLE_PROGRESS=0``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

#: Set to ``0`` to keep stage output in the log only.
ENV = "SER_CONSOLE_PROGRESS"


def _log_name(fd: int) -> str | None:
    """The path of the regular file ``fd`` writes to, or None (terminal, pipe, unknown)."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def console_tag(log: str) -> str:
    """The console prefix of a job whose log is ``log``: its path under ``logs/`` without
    the extension (``logs/train/speaker/mfcc/lstm_seed.log`` -> ``train/speaker/mfcc/
    lstm_seed``), so parallel jobs of one model under different protocols or feature
    sets are told apart; the file's stem for a log elsewhere."""
    parts = Path(log).with_suffix("").parts
    if "logs" in parts[:-1]:
        last = len(parts) - 1 - parts[::-1].index("logs")
        return "/".join(parts[last + 1:])
    return parts[-1]


def _open_tty() -> int | None:
    try:
        return os.open("/dev/tty", os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        return None


def console_lines(chunk: bytes, pending: bytes) -> tuple[list[bytes], bytes]:
    """Split ``pending + chunk`` into complete lines and the unfinished rest.

    A line redrawn with carriage returns (a progress bar) is reduced to its
    last state.
    """
    data = pending + chunk
    *lines, rest = data.split(b"\n")
    return [line.rsplit(b"\r", 1)[-1] for line in lines if line.strip(b"\r")], rest


@contextlib.contextmanager
def mirror_to_console(*, tag: str | None = None) -> Iterator[bool]:
    """Copy the process' stdout/stderr lines to the terminal while they go to a log file.

    Works at the file-descriptor level, so output of worker processes
    (joblib) and of C code is mirrored too. Yields whether mirroring is on.
    """
    log = _log_name(1)
    tty = None if os.environ.get(ENV, "1") == "0" or log is None else _open_tty()
    if tty is None:
        yield False
        return
    prefix = f"[{tag or console_tag(log)}] ".encode()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    # stderr keeps going where it went (the same log); both now pass through one pipe.
    read_end, write_end = os.pipe()
    out_fd = saved[1]

    def pump() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            os.write(out_fd, chunk)  # the log gets every byte, unchanged
            lines, pending = console_lines(chunk, pending)
            for line in lines:
                with contextlib.suppress(OSError):  # a closed terminal must not stop the job
                    os.write(tty, prefix + line + b"\n")
        if pending.strip():
            os.write(tty, prefix + pending + b"\n")

    same = os.path.samestat(os.fstat(1), os.fstat(2))
    os.dup2(write_end, 1)
    if same:
        os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=pump, name="ser-console-mirror", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if "joblib" in sys.modules:  # idle loky workers hold the pipe open: stop them
            with contextlib.suppress(Exception):
                from joblib.externals.loky import get_reusable_executor

                get_reusable_executor().shutdown(wait=True)
        for fd, old in saved.items():
            os.dup2(old, fd)  # closes our pipe's write ends: the pump sees EOF
        thread.join(timeout=10)
        for old in saved.values():
            os.close(old)
        os.close(read_end)
        os.close(tty)
