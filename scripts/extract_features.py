"""Stage: features of one corpus with one feature set.

    python scripts/extract_features.py --feature-set mfcc --corpus tess \
        --manifest data/manifests/tess.parquet --out data/features/mfcc/tess --params params.yaml

Writes, atomically, OUT/summary.parquet (manifest columns + feat_* features),
OUT/sequences.parquet (per-clip frame sequences, for sets that have them: mfcc, logmel)
and OUT/skipped.csv (files that could not be decoded). The settings are the params
section named like the feature set (its `workers` sets the number of extraction
processes) over the mfcc: section (decoding); see ser/features/sets.py. Variants such
as egemaps_spk are not extracted: they read their base set's files.
"""

from __future__ import annotations

from pathlib import Path

from ser.stage import read_params, run_stage, stage_parser


def main(argv=None) -> int:
    from ser.features.sets import EXTRACTED_SETS, feature_set_params, feature_set_spec

    parser = stage_parser(__doc__)
    parser.add_argument("--feature-set", required=True, choices=EXTRACTED_SETS)
    parser.add_argument("--corpus", required=True, help="corpus name (progress label)")
    parser.add_argument("--manifest", type=Path, required=True, help="manifest Parquet")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    from ser.features.extract import keep_freed_memory

    section = feature_set_params(args.feature_set, read_params(args.params))
    keep_freed_memory()  # fewer page faults when extracting in this process
    extract = feature_set_spec(args.feature_set).extract_function()
    result = extract(args.manifest, args.out, params=section, progress=not args.no_progress,
                     desc=f"{args.feature_set} {args.corpus}")
    print(f"{args.corpus}: wrote features of {result.n_rows}/{result.n_files} files to "
          f"{args.out} ({len(result.skipped)} skipped, {result.workers} workers, "
          f"{result.seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    run_stage(main)
