"""Stage: tune/train one model on one protocol's split and one feature set.

    python scripts/train.py --model svm --protocol speaker --features data/features/mfcc \
        --split data/splits/speaker.parquet --out models/speaker/mfcc/svm --params params.yaml

With train.grid_jobs, a classical model's grid candidates are scored by separate jobs
(scripts/tune_candidate.py); `--candidates FILE...` reads their score files, picks the
best as GridSearchCV would and refits it here instead of running the grid search.

Reads params sections corpora, train and the model's own section.
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
    from ser.models import MODEL_SPECS, model_spec

    parser = stage_parser(__doc__)
    # The registry as it is now (a model registered after import counts; tests do that).
    parser.add_argument("--model", required=True, choices=tuple(MODEL_SPECS))
    add_run_options(parser, out_help="model folder to write")
    parser.add_argument("--jobs", type=int, default=1, help="GridSearchCV processes")
    parser.add_argument("--candidates", type=Path, nargs="+", default=None, metavar="FILE",
                        help="score file of every grid candidate (tune_candidate.py): pick "
                             "the best from them instead of running GridSearchCV")
    args = parse_stage_args(parser, argv)
    check_output(args.out, kind="dir")  # refuse at once, not after the work

    from ser.models.training import train
    from ser.params.settings import TrainSettings

    params = read_params(args.params)
    spec = model_spec(args.model)
    grid_scores = None
    if args.candidates is not None:
        from ser.errors import ConfigError
        from ser.models.grid import read_scores

        if spec.kind != "classical":
            raise ConfigError(f"--candidates: model {args.model!r} has no grid; score files "
                              "are only for classical models")
        grid_scores = read_scores(args.candidates, model=args.model, protocol=args.protocol,
                                  scoring=params["train"]["scoring"],
                                  grid=params[spec.section]["grid"])
    data = load_run_data(args, params)
    card = train(spec, args.protocol, data, out_dir=args.out,
                 settings=TrainSettings.from_section(params["train"]),
                 section=params[spec.section], n_jobs=args.jobs, grid_scores=grid_scores)
    what, score = next(((w, card[k]) for k, w in (("cv_best_score", "CV score"),
                                                  ("best_val_loss", "best val loss"),
                                                  ("best_val_uar", "best val UAR"))
                        if card.get(k) is not None), ("no validation score", None))
    print(f"{args.model}/{args.protocol}: trained on {card['n_train']} clips "
          f"({len(card['labels'])} classes); best params {card['best_params']}; "
          f"{what}{'' if score is None else f' {score:.3f}'} -> {args.out}")
    return 0


if __name__ == "__main__":
    run_stage(main)
