"""Stage: evaluate one trained model on its protocol's test split (metrics/<protocol>/<model>/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ser.cli import add_job_arguments, run_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_job_arguments(parser)
    parser.add_argument("--params", default="params.yaml",
                        help="parameters file (section evaluate)")
    parser.add_argument("--model-dir", help="trained model (default models/<protocol>/<model>)")
    parser.add_argument("--out", help="output folder (default metrics/<protocol>/<model>)")
    args = parser.parse_args(argv)

    from ser.config import load_params
    from ser.evaluation import evaluate_stage

    params = load_params(args.params)
    model_dir = Path(args.model_dir or f"models/{args.protocol}/{args.model}")
    out = Path(args.out or f"metrics/{args.protocol}/{args.model}")
    m = evaluate_stage(params, args.model, args.protocol, model_dir=model_dir, out_dir=out)
    ci = m["ci95"].get("uar", [float("nan")] * 2)
    print(f"{args.model}/{args.protocol}: UAR {m['uar']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], "
          f"accuracy {m['accuracy']:.3f}, F1 {m['f1_macro']:.3f} on {m['n_test']} clips "
          f"(chance {m['chance_uar']:.3f}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
