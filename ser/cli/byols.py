"""``python -m ser.features.byols {convert,stats}``: BYOL-S weights and input statistics
(:mod:`ser.features.byols_weights`, :func:`ser.features.byols_frontend.norm_stats`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser.errors import SerError
from ser.features.byols_frontend import logmel_from_file, norm_stats
from ser.features.byols_weights import (
    ORIGINAL_COMMIT,
    ORIGINAL_SHA256,
    SHIPPED_WEIGHTS,
    convert_checkpoint,
    weights_dir,
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ser.features.byols {convert,stats}``."""
    import argparse

    from ser.cli import run_cli

    parser = argparse.ArgumentParser(
        prog="python -m ser.features.byols",
        description="BYOL-S weights and statistics for the byols feature set.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a torch.save .pth state dict into the "
                          "pickle-free .npz the feature set loads (no torch needed)")
    conv.add_argument("src", type=Path, help="the .pth checkpoint")
    conv.add_argument("--out", type=Path, default=None,
                      help="output .npz (default: the package's shipped weights file)")
    conv.add_argument("--sha256", default=ORIGINAL_SHA256,
                      help="expected sha256 of the .pth (default: the original BYOL-S "
                           "checkpoint's); 'none' skips the check for another checkpoint")
    conv.add_argument("--source-commit", default=ORIGINAL_COMMIT)
    st = sub.add_parser("stats", help="mean and std of the log-mel input over training "
                        "recordings (the byols.norm_mean / norm_std of params.yaml)")
    st.add_argument("inputs", nargs="+", type=Path, help="audio files or folders (recursive)")
    st.add_argument("--params", type=Path, required=True,
                    help="params file (e.g. params.yaml) whose mfcc: section defines decoding")
    args = parser.parse_args(argv)

    def run(_argv: Any) -> int:
        if args.command == "convert":
            out = args.out or weights_dir() / SHIPPED_WEIGHTS
            expected = None if args.sha256.lower() == "none" else args.sha256
            meta = convert_checkpoint(args.src, out, expected_sha256=expected,
                                      source_commit=args.source_commit)
            from ser.outputs import sha256_file

            print(f"wrote {out} (arrays sha256 {meta['arrays_sha256']}, file sha256 "
                  f"{sha256_file(out)})")
            return 0
        from ser.params.load import load_params

        mfcc = load_params(args.params)["mfcc"]
        files = sorted(f for p in args.inputs for f in (p.rglob("*") if p.is_dir() else [p])
                       if f.is_file() and f.suffix.lower() in (".wav", ".flac", ".ogg"))
        mels = []
        for f in files:
            try:
                mels.append(logmel_from_file(f, params=mfcc))
            except SerError as exc:
                print(f"warning: skipped {exc}", file=sys.stderr)
        mean, std = norm_stats(mels)
        print(f"{len(mels)} files: norm_mean: {mean:.6f}  norm_std: {std:.6f}")
        return 0

    return run_cli(run)
