"""Stage: evaluate one trained model on its protocol's test split.

    python scripts/evaluate.py --protocol speaker --model-dir models/speaker/mfcc/svm \
        --features data/features/mfcc --split data/splits/speaker.parquet \
        --out metrics/speaker/mfcc/svm --params params.yaml

Reads params sections corpora, evaluate and labels (recorded in metrics.json).
"""

from __future__ import annotations

from pathlib import Path

from ser.cli.stage import (
    add_run_options,
    load_run_data,
    parse_stage_args,
    read_params,
    run_stage,
    stage_parser,
)
from ser.outputs import check_output


def main(argv=None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--model-dir", type=Path, required=True, help="trained model folder")
    add_run_options(parser, out_help="metrics folder to write")
    args = parse_stage_args(parser, argv)
    check_output(args.out, kind="dir")  # refuse at once, not after the work

    from ser.evaluation.metrics import evaluate_stage
    from ser.labels import LabelMap
    from ser.params.settings import EvaluateSettings
    from ser.parquet_tables import read_table
    from ser.splits.protocols import left_out_test_emotions

    params = read_params(args.params)
    data = load_run_data(args, params)
    split = read_table(args.split, what="split", hint="run the splits stage first")
    m = evaluate_stage(model_dir=args.model_dir, data=data, protocol=args.protocol,
                       settings=EvaluateSettings.from_section(params["evaluate"]),
                       out_dir=args.out,
                       label_map=LabelMap.from_mapping(params.get("labels")).describe(),
                       left_out=left_out_test_emotions(split, args.protocol))
    ci = m["ci95"].get("uar", [float("nan")] * 2)
    print(f"{m['model']}/{args.protocol}: UAR {m['uar']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], "
          f"accuracy {m['accuracy']:.3f}, F1 {m['f1_macro']:.3f} on {m['n_test']} clips "
          f"(chance {m['chance_uar']:.3f}) -> {args.out}")
    return 0


if __name__ == "__main__":
    run_stage(main)
