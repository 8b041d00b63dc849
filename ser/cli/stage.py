"""What every stage script shares: ``--params``, reading its sections, one-line errors.

A stage script declares its paths as options, then::

    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, ...)
    ...
    if __name__ == "__main__":
        run_stage(main)

Its settings come only from the ``--params`` file it is given (Snakemake passes the
resolved config it runs with, DVC passes ``params.yaml``), validated against the schema.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def stage_parser(doc: str | None, *, prog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the stage's docstring and the ``--params`` option.

    Parameters
    ----------
    doc : str or None
        The stage script's module docstring, shown by ``--help``.
    prog : str, optional
        Program name in usage lines (default: the script's file name).

    Returns
    -------
    argparse.ArgumentParser
        With ``--params`` and ``--force``; the script adds its path options.
    """
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # Required: a stage that forgot it would silently read ./params.yaml, whatever the
    # workflow runs with (Snakemake passes its resolved config, DVC passes params.yaml).
    parser.add_argument("--params", type=Path, required=True,
                        help="validated parameters file the settings come from (e.g. "
                             "params.yaml)")
    add_force_option(parser)
    return parser


def add_force_option(parser: argparse.ArgumentParser) -> None:
    """``--force``: write into a folder holding files the tool did not write (keeping
    them), or replace a file it did not write (see :mod:`ser.outputs`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; :func:`parse_stage_args` applies the option.
    """
    parser.add_argument("--force", action="store_true",
                        help="write into an output folder that holds other files (they are "
                             "kept; a name clash is still refused), or replace an output file "
                             "this tool did not write; never deletes a folder")


def parse_stage_args(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parse ``argv`` and apply ``--force`` to this command's writes (:mod:`ser.outputs`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        From :func:`stage_parser` (or one with :func:`add_force_option`).
    argv : sequence of str or None
        The arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The parsed arguments.
    """
    from ser.outputs import allow_replacing

    args = parser.parse_args(argv)
    allow_replacing(getattr(args, "force", False))
    return args


def add_run_options(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    """The options of a stage that works on one protocol x feature set run (train,
    tune_candidate, evaluate): ``--protocol``, ``--features``, ``--feature-set``,
    ``--split`` and ``--out``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The stage's parser.
    out_help : str
        Help text of ``--out`` (what the stage writes there).
    """
    from ser.splits.protocols import PROTOCOLS

    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--features", type=Path, required=True,
                        help="folder of the extracted feature set (a variant's base set)")
    parser.add_argument("--feature-set", default=None,
                        help="feature set name, e.g. egemaps_spk (default: the folder's name)")
    parser.add_argument("--split", type=Path, required=True, help="split Parquet")
    parser.add_argument("--out", type=Path, required=True, help=out_help)


def load_run_data(args: argparse.Namespace, params: dict[str, Any]):
    """The :class:`ser.splits.protocol_data.ProtocolData` of the run the :func:`add_run_options`
    name.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of :func:`add_run_options` (``split``, ``features``, ``feature_set``).
    params : dict
        The validated params mapping; its ``corpora`` keys are the corpora to read.

    Returns
    -------
    ser.splits.protocol_data.ProtocolData
        The split joined with the feature tables (see
        :func:`ser.splits.protocol_data.load_protocol_data`).
    """
    from ser.splits.protocol_data import load_protocol_data

    return load_protocol_data(split_path=args.split, features_dir=args.features,
                              corpora=list(params["corpora"]), feature_set=args.feature_set)


def read_params(path: str | Path) -> dict[str, Any]:
    """The validated parameters mapping of ``path`` (see :func:`ser.params.load.load_params`).

    Parameters
    ----------
    path : str or Path
        The ``--params`` file.

    Returns
    -------
    dict
        The whole mapping; stages pass one section each to the library.
    """
    from ser.params.load import load_params

    return load_params(path)


def run_stage(main: Callable[[Sequence[str] | None], int | None]) -> None:
    """Run ``main`` as a command: one-line errors, exit status (see :func:`ser.cli.run_cli`).

    When its output goes to a log file (Snakemake's ``> {log} 2>&1``), the
    lines are mirrored to the terminal too (:func:`ser.progress.mirror_to_console`).

    Parameters
    ----------
    main : callable
        The stage's ``main(argv)``; its return value (or 0) is the exit status.
    """
    from ser.cli import run_cli
    from ser.progress import mirror_to_console

    with mirror_to_console():
        rc = run_cli(main)
    sys.exit(rc)
