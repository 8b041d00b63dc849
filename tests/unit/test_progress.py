"""Stage output redirected to a log is mirrored to the terminal, the log left unchanged."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

from ser.progress import console_lines

ROOT = Path(__file__).resolve().parents[2]

STAGE = """
import sys, subprocess
from ser.cli.stage import run_stage

def main(argv):
    print("epoch 1/2 - loss 1.0")
    print("[CV] END C=1.0; total time 0.1s", file=sys.stderr)
    sys.stdout.flush(); sys.stderr.flush()
    # a child process writes to the inherited descriptors (like joblib workers)
    subprocess.run([sys.executable, "-c", "print('worker line')"], check=True)
    print("progress 10%\\rprogress 100%")
    print("done")
    return 0

run_stage(main)
"""


def _run_on_pty(tmp_path: Path, **env: str) -> tuple[str, str]:
    """Run STAGE with a pseudo-terminal as controlling terminal, stdout+stderr to a log."""
    script, log = tmp_path / "stage.py", tmp_path / "train.log"
    script.write_text(STAGE)
    pid, fd = pty.fork()
    if pid == 0:  # child: `python stage.py > train.log 2>&1` on the terminal
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.environ.update({"PYTHONPATH": str(ROOT), **env})
        os.execv(sys.executable, [sys.executable, str(script)])
    seen, status = b"", None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        else:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
    if status is None:
        status = os.waitpid(pid, 0)[1]
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    return seen.decode().replace("\r\n", "\n"), log.read_bytes().decode()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal (POSIX)")
def test_log_lines_are_mirrored_to_the_terminal(tmp_path):
    console, log = _run_on_pty(tmp_path)
    assert log == ("epoch 1/2 - loss 1.0\n[CV] END C=1.0; total time 0.1s\nworker line\n"
                   "progress 10%\rprogress 100%\ndone\n")
    assert console.splitlines() == ["[train] epoch 1/2 - loss 1.0",
                                    "[train] [CV] END C=1.0; total time 0.1s",
                                    "[train] worker line", "[train] progress 100%",
                                    "[train] done"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal (POSIX)")
def test_mirror_can_be_turned_off(tmp_path):
    console, log = _run_on_pty(tmp_path, SER_CONSOLE_PROGRESS="0")
    assert console == "" and log.endswith("done\n")


def test_console_lines_keep_the_rest_and_last_redraw():
    lines, rest = console_lines(b"a\nb 10%\rb 90%\nc", b"")
    assert lines == [b"a", b"b 90%"] and rest == b"c"
    lines, rest = console_lines(b"d\n", rest)
    assert lines == [b"cd"] and rest == b""


def test_console_tag_names_protocol_feature_set_and_model():
    from ser.progress import console_tag

    assert console_tag("/p/logs/train/speaker/mfcc/lstm_seed.log") == \
        "train/speaker/mfcc/lstm_seed"
    assert console_tag("/p/logs/train/speaker_cv/mfcc/lstm_seed.log") != \
        console_tag("/p/logs/train/speaker/mfcc/lstm_seed.log")
    assert console_tag("logs/report.log") == "report"
    assert console_tag("/tmp/x/train.log") == "train"
