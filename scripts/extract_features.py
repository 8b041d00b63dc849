"""Stage: MFCC features of one corpus -> data/features/mfcc/<corpus>/.

Reads the corpus manifest (data/manifests/<corpus>.parquet) and writes, atomically,
summary.parquet (manifest columns + n_frames, duration_s + feat_* statistics),
sequences.parquet (per-clip MFCC sequences for the LSTM) and skipped.csv (files
that could not be decoded). The feature definition is the mfcc: section of
params.yaml; see ser/features/mfcc.py and ser/features/extract.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ser.cli import run_cli
from ser.config import load_params
from ser.features import extract_features
from ser.features.extract import keep_freed_memory


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of the stage."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="corpus name (e.g. ravdess)")
    parser.add_argument("--params", default="params.yaml", type=Path,
                        help="parameters file (default: %(default)s)")
    parser.add_argument("--manifest", type=Path,
                        help="manifest Parquet (default: data/manifests/CORPUS.parquet)")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: data/features/mfcc/CORPUS)")
    parser.add_argument("--workers", type=int,
                        help="extraction processes (default: mfcc.workers; 0 = all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; returns the exit status."""
    args = build_parser().parse_args(argv)
    params = load_params(args.params)
    manifest = args.manifest or Path("data/manifests") / f"{args.corpus}.parquet"
    out = args.out or Path("data/features/mfcc") / args.corpus
    keep_freed_memory()  # fewer page faults when extracting in this process
    result = extract_features(manifest, out, params=params["mfcc"], workers=args.workers,
                              progress=not args.no_progress, desc=f"mfcc {args.corpus}")
    print(f"{args.corpus}: wrote features of {result.n_rows}/{result.n_files} files to {out} "
          f"({len(result.skipped)} skipped, {result.workers} workers, "
          f"{result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
