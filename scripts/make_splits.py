"""Stage: write the train/test assignment of one protocol (data/splits/<protocol>.parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ser.cli import add_job_arguments, run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_job_arguments(parser, model=False)
    parser.add_argument("--params", default="params.yaml", help="parameters file (section splits)")
    parser.add_argument("--manifests", default="data/manifests", help="folder of <corpus>.parquet")
    parser.add_argument("--out", help="output Parquet (default data/splits/<protocol>.parquet)")
    args = parser.parse_args(argv)

    from ser.config import load_params
    from ser.splits import write_split

    params = load_params(args.params)
    out = Path(args.out or f"data/splits/{args.protocol}.parquet")
    summary = write_split(params, args.protocol, manifests=Path(args.manifests), out=out)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
