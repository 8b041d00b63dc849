"""Shared command-line plumbing: one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ser.errors import SerError


def run_cli(main: Callable[[Sequence[str] | None], int | None],
            argv: Sequence[str] | None = None) -> int:
    """Run ``main`` and turn a :class:`SerError` into a one-line message and exit 2."""
    try:
        return int(main(argv) or 0)
    except SerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error. Point stdout
        # at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted; unfinished outputs were not written", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ser`` command (sub-commands are added by each module)."""
    import argparse

    from ser import commands

    parser = argparse.ArgumentParser(
        prog="ser",
        description="Speech-emotion-recognition workflow tools: import or download corpora, "
                    "evaluate a trained model on a folder, emotion timelines, speaker "
                    "profiles for speaker-normalised models. The pipeline itself runs with "
                    "`snakemake` or `dvc repro`; `predict.py` classifies recordings.")
    commands.add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_cli(lambda _argv: args.func(args))
