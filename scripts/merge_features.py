r"""Stage: merge the shards of one feature set of one corpus into its feature folder.

    python scripts/merge_features.py --out data/features/mfcc/tess \
        data/shards/mfcc/tess/1-of-3 data/shards/mfcc/tess/2-of-3 data/shards/mfcc/tess/3-of-3

Writes, atomically, OUT/summary.parquet, OUT/sequences.parquet (sets with sequences)
and OUT/skipped.csv: the same files, byte for byte, as one unsharded run of
scripts/extract_features.py on the whole manifest. Sequences are copied one row group
at a time, so memory does not grow with the corpus. The shards (written by
scripts/extract_features.py --shard K --shards N) must be given in order and cover
every manifest row once; otherwise the merge says which shard to rerun. It reads no
settings: the shards carry their feature definition.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ser.cli.stage import add_force_option, parse_stage_args, run_stage
from ser.outputs import check_output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shards", type=Path, nargs="+", metavar="SHARD",
                        help="shard folders, 1-of-N first")
    parser.add_argument("--out", type=Path, required=True,
                        help="the corpus' feature folder (written atomically; replaces only an "
                             "earlier output of this tool)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_force_option(parser)
    args = parse_stage_args(parser, argv)
    check_output(args.out, kind="dir")  # refuse at once, not after the work

    from ser.features.shards import merge_shards

    result = merge_shards(args.shards, args.out, progress=not args.no_progress)
    print(f"merged {len(args.shards)} shards: features of {result.n_rows}/{result.n_files} "
          f"files in {args.out} ({len(result.skipped)} skipped, {result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    run_stage(main)
