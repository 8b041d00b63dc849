"""Stage: parse one corpus folder into a manifest.

    python scripts/prepare_manifest.py --corpus ravdess --root data/demo/ravdess \
        --out data/manifests/ravdess.parquet --params params.yaml

Every .wav file under the root becomes a row (path, corpus, speaker, gender, emotion,
label_code and corpus-specific columns) or a line in <out stem>_rejected.csv saying
why it was left out. Parser options come from the params section manifest.

Without --out nothing is written: the folder is checked and what the manifest would
hold (clips per emotion, speaker and gender, rejected files and why) is printed, e.g.

    python scripts/prepare_manifest.py --corpus custom --root my_data --params params.yaml
"""

from __future__ import annotations

from pathlib import Path

from ser.cli.stage import parse_stage_args, read_params, run_stage, stage_parser
from ser.layout import rejected_file
from ser.outputs import check_output


def main(argv=None) -> int:
    from ser.corpora import CORPUS_SPECS, parse_corpus

    parser = stage_parser(__doc__)
    parser.add_argument("--corpus", required=True, choices=sorted(CORPUS_SPECS))
    parser.add_argument("--root", type=Path, required=True, help="corpus root folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="manifest Parquet; rejected files go to <out stem>_rejected.csv "
                             "(default: write nothing, only check the folder and print what "
                             "the manifest would hold)")
    args = parse_stage_args(parser, argv)
    if args.out is not None:
        check_output(args.out, kind="file")  # refuse at once, not after the work

    from ser.outputs import atomic_path, text_starts_with
    from ser.params.settings import ManifestSettings
    from ser.parquet_tables import write_table

    settings = ManifestSettings.from_section(read_params(args.params).get("manifest", {}))
    if args.out is None:
        result = parse_corpus(args.corpus, args.root, **settings.parser_options(args.corpus))
        print(result.summary(top=10))
        print(f"checked {args.root}: {len(result.rows)} usable clips, {len(result.rejected)} "
              "rejected; nothing written (give --out FILE.parquet to write the manifest)")
        return 0
    rejected_out = rejected_file(args.out)
    rejected_is_ours = text_starts_with("path,reason\n")
    check_output(rejected_out, kind="file", owned=rejected_is_ours)
    result = parse_corpus(args.corpus, args.root, **settings.parser_options(args.corpus))
    write_table(result.to_frame(), args.out)
    with atomic_path(rejected_out, owned=rejected_is_ours) as tmp:
        result.rejected_frame().to_csv(tmp, index=False)
    print(result.summary())
    print(f"wrote {args.out} ({len(result.rows)} rows) and {rejected_out} "
          f"({len(result.rejected)} rejected)")
    return 0


if __name__ == "__main__":
    run_stage(main)
