"""Stage: parse one corpus folder into a manifest.

    python scripts/prepare_manifest.py --corpus ravdess --root data/demo/ravdess \
        --out data/manifests/ravdess.parquet --params params.yaml

Every .wav file under the root becomes a row (path, corpus, speaker, gender, emotion,
label_code and corpus-specific columns) or a line in <out stem>_rejected.csv saying
why it was left out. Parser options come from the params section manifest.

Without --out nothing is written: the folder is checked and what the manifest would
hold (clips per emotion, speaker and gender, rejected files and why) is printed, e.g.

    python scripts/prepare_manifest.py --corpus custom --root my_data
"""

from __future__ import annotations

from pathlib import Path

from ser.stage import read_params, run_stage, stage_parser


def main(argv=None) -> int:
    from ser.corpora import PARSERS, parse_corpus

    parser = stage_parser(__doc__)
    parser.add_argument("--corpus", required=True, choices=sorted(PARSERS))
    parser.add_argument("--root", type=Path, required=True, help="corpus root folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="manifest Parquet; rejected files go to <out stem>_rejected.csv "
                             "(default: write nothing, only check the folder and print what "
                             "the manifest would hold)")
    args = parser.parse_args(argv)

    from ser.io import atomic_path
    from ser.settings import ManifestSettings

    settings = ManifestSettings.from_section(read_params(args.params).get("manifest", {}))
    result = parse_corpus(args.corpus, args.root, **settings.parser_options(args.corpus))
    if args.out is None:
        print(result.summary(top=10))
        print(f"checked {args.root}: {len(result.rows)} usable clips, {len(result.rejected)} "
              "rejected; nothing written (give --out FILE.parquet to write the manifest)")
        return 0
    rejected_out = args.out.with_name(f"{args.out.stem}_rejected.csv")
    with atomic_path(args.out) as tmp:
        result.to_frame().to_parquet(tmp, engine="pyarrow", index=False)
    with atomic_path(rejected_out) as tmp:
        result.rejected_frame().to_csv(tmp, index=False)
    print(result.summary())
    print(f"wrote {args.out} ({len(result.rows)} rows) and {rejected_out} "
          f"({len(result.rejected)} rejected)")
    return 0


if __name__ == "__main__":
    run_stage(main)
