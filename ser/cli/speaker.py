"""``ser speaker enrol``: save a speaker's statistics for a speaker-normalised model
(:mod:`ser.predict.speaker_profile`)."""

from __future__ import annotations

from ser.predict.speaker_profile import (
    FEW_CLIPS,
    MIN_SPEAKER_CLIPS,
    few_clips_note,
    save_profile,
    speaker_stats_for,
)


def register(subparsers) -> None:
    """``ser speaker enrol``: save a speaker's statistics for a speaker-normalised model."""
    p = subparsers.add_parser(
        "speaker", help="speaker profiles for speaker-normalised (*_spk) models",
        description="Speaker profiles: a speaker's feature mean and standard deviation, "
                    "for models trained on speaker-normalised features (*_spk).")
    sub = p.add_subparsers(dest="speaker_command", required=True)
    e = sub.add_parser(
        "enrol", help="compute a speaker's statistics from their recordings and save them",
        description="Extract the features of a folder of one speaker's recordings with a "
                    "*_spk model's feature definition and save their mean and standard "
                    f"deviation as a JSON profile (at least {MIN_SPEAKER_CLIPS} clips; "
                    f"{FEW_CLIPS}+ advised). Use it with predict.py / ser timeline "
                    "--speaker-profile FILE. Any model with the same feature definition "
                    "accepts the profile; another definition refuses it.")
    e.add_argument("--model", required=True, metavar="DIR",
                   help="a speaker-normalised model folder, e.g. models/speaker/egemaps_spk/svm")
    e.add_argument("--clips", required=True, metavar="DIR",
                   help="folder of recordings of one speaker (searched recursively)")
    e.add_argument("--out", required=True, metavar="FILE", help="new profile file (*.json)")
    e.set_defaults(func=_enrol_command)


def _enrol_command(args) -> int:
    from ser.predict.inference import Predictor

    predictor = Predictor.load(args.model)
    stats = speaker_stats_for(predictor, clips=args.clips)
    out = save_profile(args.out, stats, feature_params=predictor.card["feature_params"])
    print(f"{out}: profile of {stats.n_clips} clips of {args.clips} "
          f"({stats.feature_set} features, {len(stats.mean)} {stats.representation} "
          f"statistics) for {args.model}")
    note = few_clips_note(stats)
    if note:
        print(f"note: {note}")
    return 0
