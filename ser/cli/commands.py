"""Sub-commands of the ``ser`` command: one module under ``ser/cli/`` each, parsing its
arguments and calling the library code it drives."""

from __future__ import annotations

import importlib

#: Modules that define ``register(subparsers)``; each adds its own sub-commands.
COMMAND_MODULES: tuple[str, ...] = (
    "ser.cli.data",
    "ser.cli.evaluate",
    "ser.cli.speaker",
    "ser.cli.timeline",
)


def add_subcommands(subparsers) -> None:
    """Let every module in :data:`COMMAND_MODULES` add its sub-commands."""
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
