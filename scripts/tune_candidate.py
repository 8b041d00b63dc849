"""Stage: cross-validate one grid candidate of a classical model (train.grid_jobs).

    python scripts/tune_candidate.py --model svm --candidate 3 --protocol speaker \
        --features data/features/mfcc --split data/splits/speaker.parquet \
        --out data/grid/speaker/mfcc/svm/3.json --params params.yaml

Candidate K is the K-th item of scikit-learn's ParameterGrid over the model's grid
(numbered from 0). It is scored with the CV splits, groups, scoring and seed GridSearchCV
uses in scripts/train.py, on every training side train.py tunes on (each speaker_cv fold
and the final fit), and written as a small JSON file; `train.py --candidates FILE...` then
picks the best candidate from all files and refits it. Reads params sections corpora,
train and the model's own section.
"""

from __future__ import annotations

from ser.cli.stage import (
    add_run_options,
    load_run_data,
    parse_stage_args,
    read_params,
    run_stage,
    stage_parser,
)


def main(argv=None) -> int:
    from ser.models import classical_models, model_spec

    parser = stage_parser(__doc__)
    parser.add_argument("--model", required=True, choices=classical_models())
    parser.add_argument("--candidate", type=int, required=True, metavar="K",
                        help="grid candidate number (0 = first of ParameterGrid's order)")
    add_run_options(parser, out_help="score file (JSON) to write")
    args = parse_stage_args(parser, argv)
    from ser.models.grid import scores_file_is_ours
    from ser.outputs import check_output

    check_output(args.out, kind="file", owned=scores_file_is_ours)  # before any fit

    from ser.models.grid import check_candidate, write_scores
    from ser.models.training import tune_candidate
    from ser.params.settings import TrainSettings

    params = read_params(args.params)
    spec = model_spec(args.model)
    section = params[spec.section]
    check_candidate(args.model, section["grid"], args.candidate)  # before loading any data
    data = load_run_data(args, params)
    doc = tune_candidate(spec, args.protocol, data, index=args.candidate,
                         settings=TrainSettings.from_section(params["train"]),
                         section=section)
    write_scores(args.out, doc)
    means = ", ".join(f"{name} {fit['mean_test_score']:.3f}" for name, fit in doc["fits"].items())
    print(f"{args.model}/{args.protocol} candidate {args.candidate}/{doc['n_candidates']} "
          f"{doc['params']}: mean CV {params['train']['scoring']} {means} -> {args.out}")
    return 0


if __name__ == "__main__":
    run_stage(main)
