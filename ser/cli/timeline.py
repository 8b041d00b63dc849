"""``ser timeline``: emotions over time in a long recording (:mod:`ser.predict.timeline`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ser.errors import SerError
from ser.predict.timeline import TimelineParams, timeline_for_file


def register(subparsers) -> None:
    """``ser timeline``: emotions over time in a long recording."""
    d = TimelineParams()
    p = subparsers.add_parser(
        "timeline", help="emotions over time in a long recording (CSV, JSON, PNG)",
        description="Split a long recording into speech segments (energy-based voice "
                    "activity; fixed overlapping windows when none is found), classify each "
                    "with a trained model and write timeline.csv, timeline.json and "
                    "timeline.png. Memory is bounded by --window, not by the file.")
    p.add_argument("--model", required=True, metavar="DIR", help="trained model folder")
    p.add_argument("--file", required=True, metavar="AUDIO",
                   help="recording: any rate/channels/format libsndfile reads")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default timelines/<file stem>-<model folder name>, "
                        "numbered -2, -3 ... for another file of the same name); must be new, "
                        "empty or an earlier timeline unless --force")
    p.add_argument("--force", action="store_true",
                   help="write into an --out holding other files: they are kept, and a name "
                        "clash with a file the tool did not write is refused")
    p.add_argument("--window", type=float, default=d.window,
                   help="longest stretch classified at once, seconds (default %(default)s)")
    p.add_argument("--hop", type=float, default=d.hop,
                   help="step between windows in long segments, seconds (default %(default)s)")
    p.add_argument("--no-vad", dest="vad", action="store_false",
                   help="no speech detection: cover the whole file with overlapping windows")
    p.add_argument("--margin-db", type=float, default=d.margin_db,
                   help="speech is this many dB above the noise floor (default %(default)s)")
    p.add_argument("--min-silence", type=float, default=d.min_silence,
                   help="shorter pauses do not end a segment, seconds (default %(default)s)")
    p.add_argument("--speaker-clips", metavar="DIR",
                   help="*_spk models: folder of other recordings of the same speaker")
    p.add_argument("--speaker-profile", metavar="FILE",
                   help="*_spk models: speaker statistics saved by `ser speaker enrol`")
    p.add_argument("--speaker-from-recording", action="store_true",
                   help="*_spk models: the speaker's statistics from this recording's own "
                        "segments (one speaker assumed; at least "
                        f"{_min_segments()} classifiable segments)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip timeline.png")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.set_defaults(func=_timeline_command)


def _min_segments() -> int:
    from ser.predict.speaker_profile import MIN_RECORDING_SEGMENTS

    return MIN_RECORDING_SEGMENTS


def _timeline_command(args) -> int:
    from ser.outputs import allow_replacing, check_output
    from ser.predict.inference import Predictor
    from ser.predict.speaker_profile import few_clips_note, speaker_stats_for

    allow_replacing(args.force)
    params = TimelineParams(window=args.window, hop=args.hop, vad=args.vad,
                            margin_db=args.margin_db, min_silence=args.min_silence)
    if args.out:
        check_output(args.out, kind="dir")  # before loading the model
    model_dir = Path(args.model)
    predictor = Predictor.load(model_dir)
    for warning in predictor.warnings():  # as predict.py says them
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if args.speaker_from_recording and (args.speaker_clips or args.speaker_profile):
        raise SerError("--speaker-from-recording: the statistics come from the recording, or "
                       "from --speaker-clips / --speaker-profile - pass one of them")
    if args.speaker_from_recording and not predictor.speaker_normalised:
        raise SerError(f"--speaker-from-recording: {model_dir} is not speaker-normalised; "
                       "leave the option out or use a *_spk model")
    stats = speaker_stats_for(predictor, clips=args.speaker_clips,
                              profile=args.speaker_profile)
    predictor.use_speaker(stats)
    if stats is not None and few_clips_note(stats):
        print(f"note: {few_clips_note(stats)}")
    print(timeline_for_file(Path(args.file), predictor, model_dir=model_dir,
                            out=args.out, params=params, plot=args.plot,
                            progress=args.progress,
                            speaker_from_recording=args.speaker_from_recording))
    return 0
