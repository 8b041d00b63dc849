"""Stage: write the train/test assignment of one protocol over the pooled manifests.

    python scripts/make_splits.py --protocol speaker --out data/splits/speaker.parquet \
        --params params.yaml data/manifests/tess.parquet data/manifests/ravdess.parquet

Reads params sections splits and labels (the class set: keep / merge / drop).
"""

from __future__ import annotations

from pathlib import Path

from ser.cli.stage import parse_stage_args, read_params, run_stage, stage_parser
from ser.outputs import check_output


def main(argv=None) -> int:
    from ser.splits.protocols import PROTOCOLS

    parser = stage_parser(__doc__)
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--out", type=Path, required=True, help="split Parquet to write")
    parser.add_argument("manifests", type=Path, nargs="+", help="manifest Parquet files")
    args = parse_stage_args(parser, argv)
    check_output(args.out, kind="file")  # refuse at once, not after the work

    from ser.labels import LabelMap
    from ser.params.settings import SplitSettings
    from ser.splits.protocols import write_split

    params = read_params(args.params)
    settings = SplitSettings.from_section(params["splits"])
    label_map = LabelMap.from_mapping(params.get("labels"))
    print(write_split(args.protocol, manifests=args.manifests, settings=settings, out=args.out,
                      label_map=label_map))
    return 0


if __name__ == "__main__":
    run_stage(main)
