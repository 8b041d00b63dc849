r"""Stage: features of one corpus with one feature set.

    python scripts/extract_features.py --feature-set mfcc --corpus tess \
        --manifest data/manifests/tess.parquet --out data/features/mfcc/tess --params params.yaml

Writes, atomically, OUT/summary.parquet (manifest columns + feat_* features),
OUT/sequences.parquet (per-clip frame sequences, for sets that have them: mfcc, logmel)
and OUT/skipped.csv (files that could not be decoded). The settings are the params
section named like the feature set (its `workers` sets the number of extraction
processes) over the mfcc: section (decoding); see ser/features/sets.py. Variants such
as egemaps_spk are not extracted: they read their base set's files.

One shard of a large corpus (`shards:` in params.yaml; scripts/merge_features.py joins
the shards into the files above, byte for byte):

    python scripts/extract_features.py --feature-set mfcc --corpus tess \
        --manifest data/manifests/tess.parquet --shard 2 --shards 3 \
        --out data/shards/mfcc/tess/2-of-3 --params params.yaml
"""

from __future__ import annotations

from pathlib import Path

from ser.cli.stage import parse_stage_args, read_params, run_stage, stage_parser
from ser.outputs import check_output


def main(argv=None) -> int:
    from ser.features.sets import EXTRACTED_SETS, feature_set_params, feature_set_spec

    parser = stage_parser(__doc__)
    parser.add_argument("--feature-set", required=True, choices=EXTRACTED_SETS)
    parser.add_argument("--corpus", required=True, help="corpus name (progress label)")
    parser.add_argument("--manifest", type=Path, required=True, help="manifest Parquet")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--shard", type=int, metavar="K",
                        help="extract only shard K (1..N) of the manifest rows, with --shards")
    parser.add_argument("--shards", type=int, metavar="N",
                        help="number of contiguous shards the manifest is cut into")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parse_stage_args(parser, argv)
    check_output(args.out, kind="dir")  # refuse at once, not after the work
    if (args.shard is None) != (args.shards is None):
        parser.error("--shard and --shards go together")
    if args.shards is not None and not 1 <= args.shard <= args.shards:
        parser.error(f"--shard {args.shard}: must be between 1 and --shards {args.shards}")

    from ser.features.extract import keep_freed_memory

    section = feature_set_params(args.feature_set, read_params(args.params))
    keep_freed_memory()  # fewer page faults when extracting in this process
    if args.shards is not None:
        from ser.features.shards import extract_shard

        result = extract_shard(args.feature_set, args.manifest, args.out, params=section,
                               shard=args.shard, shards=args.shards,
                               progress=not args.no_progress,
                               desc=f"{args.feature_set} {args.corpus} "
                                    f"{args.shard}/{args.shards}")
    else:
        extract = feature_set_spec(args.feature_set).extract_function()
        result = extract(args.manifest, args.out, params=section,
                         progress=not args.no_progress,
                         desc=f"{args.feature_set} {args.corpus}")
    print(f"{args.corpus}: wrote features of {result.n_rows}/{result.n_files} files to "
          f"{args.out} ({len(result.skipped)} skipped, {result.workers} workers, "
          f"{result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    run_stage(main)
