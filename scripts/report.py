"""Report stage: build reports/report.html (self-contained) and reports/report.md.

Reads every earlier output - the manifests (one <corpus>.parquet per corpus),
the evaluation of each model x protocol x feature set (a run folder under
--metrics, as ser/layout.py lays it out), the model cards and training
histories (models/...), a few audio files for the example waveforms and,
with --real-results, the real-data benchmark's measured numbers - and writes
one HTML page with every table and figure embedded (no network access needed
to view it) plus a Markdown summary of the tables. Corpora, models, feature
sets and protocols come from the --params file ('corpora:', 'train:';
'report:' for the options). Both files are
written atomically: a failed build leaves no half-written report.

    python scripts/report.py --manifests data/manifests --metrics metrics \
        --models models --features data/features --out reports --params params.yaml \
        --real-results benchmarks/results/real_ravdess_speaker_cv.json
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")  # never open a window, whatever the machine

from ser.cli.stage import parse_stage_args, run_stage, stage_parser


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of this stage."""
    parser = stage_parser(__doc__, prog="report.py")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder for report.html and report.md")
    parser.add_argument("--manifests", type=Path, required=True,
                        help="manifest folder, from the manifest stage")
    parser.add_argument("--metrics", type=Path, required=True,
                        help="metrics folder, from the evaluate stage")
    parser.add_argument("--models", type=Path, required=True,
                        help="model folder, from the train stage")
    parser.add_argument("--features", type=Path, default=None,
                        help="feature folder, from the feature stage: the clips each set "
                             "skipped (<set>/<corpus>/skipped.csv) are reported")
    parser.add_argument("--real-results", type=Path, default=None,
                        help="results JSON of benchmarks/real_data_bench.py (e.g. "
                             "benchmarks/results/real_ravdess_speaker_cv.json) whose measured "
                             "numbers the report quotes; without it the report says no "
                             "real-data measurement is available")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the report and print where it is."""
    args = parse_stage_args(build_parser(), argv)
    from ser.report.build import check_report_out

    check_report_out(args.out)  # refuse at once, not after building the report

    import time

    import matplotlib

    matplotlib.use("Agg")

    from ser.layout import REPORT_MARKDOWN
    from ser.params.load import load_params
    from ser.report import build_report

    start = time.perf_counter()
    params = load_params(args.params)
    html = build_report(params=params, manifests_dir=args.manifests, metrics_dir=args.metrics,
                        models_dir=args.models, out_dir=args.out,
                        real_results=args.real_results, features_dir=args.features)
    print(f"wrote {html} and {html.with_name(REPORT_MARKDOWN)} "
          f"in {time.perf_counter() - start:.1f} s")
    print(html.resolve())
    return 0


if __name__ == "__main__":
    run_stage(main)
