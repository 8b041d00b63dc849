"""Write a synthetic demo corpus in the real layout of TESS, RAVDESS, CREMA-D, SAVEE or EMO-DB.

The audio is speech-like (glottal source, formants, emotion-dependent prosody,
per-speaker voices) and needs no download. The same seed gives byte-identical
files. Defaults for --preset and --seed come from the ``demo:`` section of
the --params file. The folder is written atomically, so an interrupted run
leaves the previous one (or nothing) in place; only a folder this script wrote
(marked by its .ser-output file) is replaced, anything else is refused.

Examples
--------
    python scripts/generate_demo.py --corpus ravdess --params params.yaml  # -> data/demo/ravdess
    python scripts/generate_demo.py --corpus tess --preset tiny --out /tmp/tess --seed 1 \
        --params params.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ser.cli import run_cli
from ser.cli.stage import add_force_option, parse_stage_args
from ser.corpora.demo import CORPORA, PRESETS, generate_corpus, plan_corpus
from ser.layout import demo_root
from ser.outputs import check_output


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (also used to render ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="generate_demo.py",
        description=__doc__.split("\n\n")[0],
        epilog="presets:\n"
               "  tiny  tests: 2-4 speakers and every emotion, 28-48 clips per corpus\n"
               "  demo  a few hundred clips over the four main corpora\n"
               "  full  the real corpus sizes: TESS 2800, RAVDESS 1440, CREMA-D 7442,\n"
               "        SAVEE 480, EMO-DB 535\n\n"
               "example:\n"
               "  python scripts/generate_demo.py --corpus ravdess --preset tiny --seed 1 "
               "--params params.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--corpus", required=True, choices=CORPORA,
                        help="which corpus layout to write")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"corpus root to create or an earlier demo output to replace "
                             f"(default: {demo_root('<corpus>')}, where the workflow's "
                             "generate_demo stage writes it)")
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="size preset (default: demo.preset in --params)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: demo.seed in --params)")
    parser.add_argument("--params", type=Path, required=True,
                        help="parameters file holding the demo: section (e.g. params.yaml)")
    parser.add_argument("--workers", type=int, default=1,
                        help="synthesis processes, 0 = all cores (default: 1); the output does not "
                             "depend on it")
    add_force_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate one corpus; print ``wrote N clips to OUT``."""
    args = parse_stage_args(build_parser(), argv)
    out = args.out if args.out is not None else demo_root(args.corpus)
    check_output(out, kind="dir")  # a real corpus copy is never replaced
    preset, seed = args.preset, args.seed
    if preset is None or seed is None:
        from ser.params.load import load_params

        demo = load_params(args.params)["demo"]
        preset = demo["preset"] if preset is None else preset
        seed = demo["seed"] if seed is None else seed

    from tqdm import tqdm

    total = len(plan_corpus(args.corpus, preset=preset))
    with tqdm(total=total, unit="clip", desc=f"{args.corpus} ({preset})") as bar:
        n = generate_corpus(args.corpus, out, preset=preset, seed=seed,
                            workers=args.workers, progress=bar.update)
    print(f"wrote {n} clips to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
