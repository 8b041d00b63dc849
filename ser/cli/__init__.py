"""Shared command-line plumbing: one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ser.errors import SerError


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str] | None = None) -> int:
    """Run ``main`` and turn a :class:`SerError` into a one-line message and exit 2.

    Parameters
    ----------
    main : callable
        The command's ``main(argv)``.
    argv : sequence of str or None
        Its arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: ``main``'s, 2 after a :class:`SerError`, 130 when interrupted.
    """
    try:
        return int(main(argv) or 0)
    except SerError as exc:
        print(f"error: {exc}{dvc_recovery_hint()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error. Point stdout
        # at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted; unfinished outputs were not written", file=sys.stderr)
        return 130
    finally:
        from ser.outputs import allow_replacing

        allow_replacing(False)  # --force applies to one command only


#: What a failed ``dvc repro`` stage leaves and how to go on: every output in dvc.yaml
#: persists (:data:`ser.workflow.wiring.PERSIST`), so DVC did not delete it first.
DVC_RECOVERY = ("its outputs from the last run are kept; fix the cause and run it again "
                "(`dvc checkout` restores exactly what dvc.lock recorded, then "
                "`python -m ser.workflow.wiring adopt` lets Snakemake see it)")


def dvc_recovery_hint() -> str:
    """Under ``dvc repro`` (which sets ``DVC_STAGE``), the tail of the error line that says
    what the failed stage left and how to go on."""
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return ""
    return f" (dvc repro stage {stage} stopped: {DVC_RECOVERY})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ser`` command (sub-commands are added by each module)."""
    import argparse

    from ser.cli import commands

    parser = argparse.ArgumentParser(
        prog="ser",
        description="Speech-emotion-recognition workflow tools: import or download corpora, "
                    "evaluate a trained model on a folder, emotion timelines, speaker "
                    "profiles for speaker-normalised models. The pipeline itself runs with "
                    "`snakemake` or `dvc repro`; `predict.py` classifies recordings.")
    commands.add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_cli(lambda _argv: args.func(args))
