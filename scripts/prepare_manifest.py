"""Manifest stage: parse one corpus folder into data/manifests/<corpus>.parquet.

Every .wav file under the corpus root becomes a row (path, corpus, speaker,
gender, emotion, label_code and corpus-specific columns) or a line in
data/manifests/<corpus>_rejected.csv saying why it was left out.
The root defaults to params.yaml 'corpora.<corpus>'; parser options come from
params.yaml 'manifest:'. Run from the project root:

    python scripts/prepare_manifest.py --corpus ravdess
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

try:
    import ser  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.cli import run_cli
from ser.config import load_params
from ser.corpora import PARSERS, parse_corpus
from ser.errors import ConfigError
from ser.io import atomic_path


def parser_options(corpus: str, manifest_params: dict) -> dict:
    """Map params.yaml ``manifest:`` settings onto the options of ``corpus``' parser."""
    if corpus == "ravdess":
        return {"include_song": bool(manifest_params.get("ravdess_song", False))}
    return {}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of this stage."""
    parser = argparse.ArgumentParser(
        prog="prepare_manifest.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--corpus", required=True, choices=sorted(PARSERS),
                        help="corpus to parse")
    parser.add_argument("--root", type=Path, default=None,
                        help="corpus root folder (default: params.yaml corpora.<corpus>)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="parameters file (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output Parquet (default: data/manifests/<corpus>.parquet); the "
                             "rejected files go to <out stem>_rejected.csv beside it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the corpus, write the manifest and the rejections, print the summary."""
    args = build_parser().parse_args(argv)
    params = load_params(args.params)
    root = args.root
    if root is None:
        corpora = params.get("corpora", {})
        if args.corpus not in corpora:
            raise ConfigError(f"{args.params}: corpus {args.corpus!r} is not enabled in "
                              f"'corpora:'; add '{args.corpus}: <root folder>' or pass --root")
        root = Path(corpora[args.corpus])
    out = args.out or Path("data/manifests") / f"{args.corpus}.parquet"
    rejected_out = out.with_name(f"{out.stem}_rejected.csv")

    options = parser_options(args.corpus, params.get("manifest", {}))
    result = parse_corpus(args.corpus, root, **options)

    with atomic_path(out) as tmp:
        result.to_frame().to_parquet(tmp, engine="pyarrow", index=False)
    with atomic_path(rejected_out) as tmp:
        result.rejected_frame().to_csv(tmp, index=False)

    print(result.summary())
    print(f"wrote {out} ({len(result.rows)} rows) and {rejected_out} "
          f"({len(result.rejected)} rejected)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
