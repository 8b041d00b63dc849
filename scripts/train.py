"""Stage: tune/train one model under one protocol (models/<protocol>/<model>/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ser.cli import add_job_arguments, run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_job_arguments(parser)
    parser.add_argument("--params", default="params.yaml",
                        help="parameters file (sections train, <model>)")
    parser.add_argument("--out", help="model folder (default models/<protocol>/<model>)")
    parser.add_argument("--jobs", type=int, default=1, help="GridSearchCV processes")
    args = parser.parse_args(argv)

    from ser.config import load_params
    from ser.training import train

    params = load_params(args.params)
    out = Path(args.out or f"models/{args.protocol}/{args.model}")
    card = train(params, args.model, args.protocol, out_dir=out, n_jobs=args.jobs)
    score = card.get("cv_best_score", card.get("best_val_loss"))
    print(f"{args.model}/{args.protocol}: trained on {card['n_train']} clips "
          f"({len(card['labels'])} classes); best params {card['best_params']}; "
          f"{'CV score' if 'cv_best_score' in card else 'best val loss'} {score:.3f} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
