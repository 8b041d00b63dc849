"""Report stage: build reports/report.html (self-contained) and reports/report.md.

Reads every earlier output - the manifests (data/manifests/<corpus>.parquet),
the evaluation of each model x protocol (metrics/<protocol>/<model>/), the
model cards and LSTM histories (models/<protocol>/<model>/) and a few audio
files for the example waveforms - and writes one HTML page with every table
and figure embedded (no network access needed to view it) plus a Markdown
summary of the tables. Corpora, models and protocols come from params.yaml
('corpora:', 'train.models', 'train.protocols'; 'report:' for the options).
Both files are written atomically: a failed build leaves no half-written report.
Run from the project root:

    python scripts/report.py
    python scripts/report.py --out /tmp/report --metrics other/metrics
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")  # never open a window, whatever the machine

try:
    import ser  # noqa: F401
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of this stage."""
    parser = argparse.ArgumentParser(
        prog="report.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="parameters file (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="output folder for report.html and report.md "
                             "(default: %(default)s)")
    parser.add_argument("--manifests", type=Path, default=Path("data/manifests"),
                        help="manifest folder, from the manifest stage (default: %(default)s)")
    parser.add_argument("--metrics", type=Path, default=Path("metrics"),
                        help="metrics folder, from the evaluate stage (default: %(default)s)")
    parser.add_argument("--models", type=Path, default=Path("models"),
                        help="model folder, from the train stage (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report and print where it is."""
    args = build_parser().parse_args(argv)

    import time

    import matplotlib

    matplotlib.use("Agg")

    from ser.config import load_params
    from ser.report import build_report

    start = time.perf_counter()
    params = load_params(args.params)
    html = build_report(params=params, manifests_dir=args.manifests, metrics_dir=args.metrics,
                        models_dir=args.models, out_dir=args.out)
    print(f"wrote {html} and {html.with_name('report.md')} "
          f"in {time.perf_counter() - start:.1f} s")
    print(html.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
