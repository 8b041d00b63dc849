"""Errors that carry a message meant for a person, not a traceback."""

from __future__ import annotations

from pathlib import Path


class SerError(Exception):
    """An error whose message says what went wrong and what to do.

    Stage CLIs catch it and print the message on one line (see
    :func:`ser.cli.run_cli`); anything else is a bug and keeps its traceback.
    """


class AudioError(SerError):
    """A file that cannot be read as audio (missing, empty, corrupt, not audio)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ConfigError(SerError):
    """A bad parameter in params.yaml or on the command line."""
