"""Classify emotional speech in audio files with a trained model.

Examples
--------
python predict.py --file clip.wav
python predict.py --file a.wav --file recordings/ --top-k 3 --json
python predict.py --file clip.wav --model models/speaker/mfcc/svm --transcribe --speak-to answer.wav
python predict.py --file interview.flac --segments        # emotions over time (CSV, JSON, PNG)
python predict.py --file clip.wav --speaker-clips my_voice/  # speaker-normalised (*_spk) model
python predict.py --file clip.wav --speaker-profile me.json  # statistics from `ser speaker enrol`

Speaker-normalised models (feature sets ``*_spk``) z-score a recording's features with
its speaker's own statistics: pass other recordings of the same speaker
(``--speaker-clips``, at least 3, 10+ advised) or a saved profile (``--speaker-profile``).
Without ``--model`` the best speaker-independent model that can use what was given is
chosen: a ``*_spk`` one with speaker clips or a profile, a plain one without.

The first output line names the model; a `warning:` line (stderr) says when it was
trained on synthetic demo data only or with other library versions. A classical
model answers without importing Keras/JAX (see benchmarks/bench_predict_start.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.audio import collect_files
from ser.cli import run_cli
from ser.errors import SerError
from ser.outputs import display_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", "-f", action="append", required=True, metavar="PATH",
                        help="audio file or folder (repeatable); any format libsndfile reads")
    parser.add_argument("--model", metavar="DIR",
                        help="trained model folder, e.g. models/speaker/mfcc/svm "
                             "(default: best speaker-independent UAR under models/ among "
                             "plain models, or *_spk models with --speaker-clips/-profile)")
    parser.add_argument("--top-k", type=int, default=3, metavar="K",
                        help="how many emotions to list with their probability (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    parser.add_argument("--confidence-ratio", type=float, default=None, metavar="R",
                        help="note 'low confidence' when the top probability is below R x "
                             "chance (default 1.5)")
    parser.add_argument("--transcribe", action="store_true",
                        help="also print what was said (offline pocketsphinx)")
    parser.add_argument("--speak", action="store_true", help="say the emotion aloud (espeak-ng)")
    parser.add_argument("--speak-to", metavar="WAV",
                        help="write the spoken answer to a new WAV file (an existing file is "
                             "replaced only with --force, never a recording being classified)")
    parser.add_argument("--speaker-clips", metavar="DIR",
                        help="*_spk models: folder of other recordings of the same speaker, "
                             "whose feature mean/std normalise the files (at least 3 clips)")
    parser.add_argument("--speaker-profile", metavar="FILE",
                        help="*_spk models: the speaker's statistics saved by `ser speaker "
                             "enrol` or --save-speaker-profile (JSON)")
    parser.add_argument("--save-speaker-profile", metavar="FILE",
                        help="with --speaker-clips: also save their statistics as a new "
                             "profile (JSON) for later --speaker-profile use")
    parser.add_argument("--segments", action="store_true",
                        help="long recordings: classify speech segments over time and write "
                             "timeline.csv/.json/.png per file (see `ser timeline`)")
    parser.add_argument("--out", metavar="DIR",
                        help="with --segments and one file: output folder (default "
                             "timelines/<file stem>-<model folder name>, numbered -2, -3 ... "
                             "for another file of the same name)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --speak-to file, or write a timeline into "
                             "an --out holding other files (they are kept)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``predict.py`` / ``ser-predict``.

    Parameters
    ----------
    argv : sequence of str or None
        Command-line arguments (``None``: ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        Exit status (2 with a one-line message on bad input).
    """
    return run_cli(_main, argv)


def _main(argv: Sequence[str] | None) -> int:
    from ser.outputs import allow_replacing

    args = build_parser().parse_args(argv)
    allow_replacing(args.force)
    if args.top_k < 1:
        raise SerError("--top-k must be at least 1")
    if args.out and not args.segments:
        raise SerError("--out is the timeline folder of --segments; add --segments or leave "
                       "--out out")
    from ser.predict.inference import (
        LOW_CONFIDENCE_RATIO,
        FeaturePrefetch,
        Predictor,
        clip_notes,
        default_model_dir,
    )

    ratio = LOW_CONFIDENCE_RATIO if args.confidence_ratio is None else args.confidence_ratio
    if ratio <= 0:
        raise SerError("--confidence-ratio must be positive")

    if args.save_speaker_profile and not args.speaker_clips:
        raise SerError("--save-speaker-profile saves the statistics of --speaker-clips; add "
                       "--speaker-clips DIR")
    has_speaker = bool(args.speaker_clips or args.speaker_profile)
    model_dir = (Path(args.model) if args.model
                 else default_model_dir(speaker_normalised=has_speaker))
    files = collect_files(args.file)
    if args.speak_to:
        check_speak_to(Path(args.speak_to), files)
    if args.out:
        from ser.outputs import check_output

        check_output(args.out, kind="dir")
    # Features are extracted in a second process while this one loads the model.
    prefetch = None if args.segments else FeaturePrefetch(model_dir, files)
    try:
        predictor = Predictor.load(model_dir)
    except BaseException:
        if prefetch is not None:
            prefetch.close(kill=True)
        raise
    speaker = _speaker(args, predictor)
    if not args.json:
        print(f"model: {display_path(model_dir)} ({predictor.display_name})", flush=True)
        if speaker is not None:
            print(f"speaker: {display_path(speaker.describe())}", flush=True)
    warnings = [display_path(w) for w in predictor.warnings()]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if args.segments:
        return _segments(args, predictor, model_dir, files)
    ok, proba, failures = predictor.predict_files(files, prefetched=prefetch)
    labels = predictor.labels
    answers = []
    for path, p in zip(ok, proba, strict=True):
        order = np.argsort(-p)[: args.top_k]
        result = {"file": display_path(path), "emotion": labels[order[0]],
                  "probabilities": {labels[i]: round(float(p[i]), 4) for i in order},
                  "model": display_path(model_dir), "model_name": predictor.display_name}
        if speaker is not None:
            result["speaker_normalisation"] = speaker.to_json()
        notes = clip_notes(path, p, feature_params=predictor.card["feature_params"],
                           confidence_ratio=ratio)
        if notes:
            result["notes"] = notes
        if warnings:  # --json readers see them too, not only the terminal
            result["warnings"] = warnings
        if args.transcribe:
            from ser.predict.speech import transcribe

            result["transcript"] = transcribe(path)
        answers.append(result)
        print(json.dumps(result) if args.json else _format(result))
    for path, message in failures:
        path, message = display_path(path), display_path(message)
        print(f"error: {message}" if not args.json else json.dumps({"file": path,
                                                                     "error": message}),
              file=sys.stderr if not args.json else sys.stdout)
    sys.stdout.flush()
    if answers and (args.speak or args.speak_to):
        from ser.predict.speech import speak

        speak(spoken_answer(answers), to_file=args.speak_to)
        if args.speak_to:
            sys.stdout.flush()
            print(f"spoken answer written to {args.speak_to}", file=sys.stderr)
    if failures and not answers:
        return 2
    return 1 if failures else 0


def check_speak_to(target: Path, files: Sequence[Path]) -> None:
    """Refuse a ``--speak-to`` path that is one of the recordings, or (without ``--force``)
    any existing file, before anything is classified."""
    from ser.outputs import check_output

    if target.suffix.lower() != ".wav":
        raise SerError(f"--speak-to {target}: the spoken answer is written as WAV; "
                       "name it *.wav")
    for path in files:
        if target.exists() and path.exists() and os.path.samefile(target, path):
            raise SerError(f"--speak-to {target}: is a recording being classified; it is "
                           "never overwritten - choose another file name")
    # A WAV cannot say who wrote it: an existing one is never the tool's own.
    check_output(target, kind="file", owned=lambda _path: False, option="--speak-to")


def _speaker(args: argparse.Namespace, predictor):
    """The speaker statistics the options give (set on ``predictor``), or ``None`` for a
    plain model; a ``*_spk`` model without them is refused in one line."""
    from ser.predict.speaker_profile import few_clips_note, save_profile, speaker_stats_for

    stats = speaker_stats_for(predictor, clips=args.speaker_clips,
                              profile=args.speaker_profile)
    if stats is None and predictor.speaker_normalised:
        raise predictor.missing_speaker()
    predictor.use_speaker(stats)  # shrunk toward the training speakers where the card says
    if stats is not None:
        note = few_clips_note(stats)
        if note:
            print(f"note: {note}", file=sys.stderr, flush=True)
        if args.save_speaker_profile:
            out = save_profile(args.save_speaker_profile, stats,
                               feature_params=predictor.card["feature_params"])
            print(f"speaker profile written to {display_path(out)}", file=sys.stderr,
                  flush=True)
    return predictor.speaker


def spoken_answer(answers: Sequence[dict]) -> str:
    """What ``--speak``/``--speak-to`` say: the answer, not the file name.

    ``"angry, 72 percent"`` for one file; ``"file 1: angry, 72 percent. file 2: ..."``
    for several (in the order printed).
    """
    def one(a: dict) -> str:
        return f"{a['emotion']}, {round(100 * a['probabilities'][a['emotion']])} percent"

    if len(answers) == 1:
        return one(answers[0])
    return " ".join(f"file {i}: {one(a)}." for i, a in enumerate(answers, 1))


def _segments(args: argparse.Namespace, predictor, model_dir: Path, files: list[Path]) -> int:
    """``--segments``: one timeline per file (:func:`ser.predict.timeline.timeline_for_file`)."""
    from ser.predict.timeline import default_out, timeline_for_file

    if args.out and len(files) > 1:
        raise SerError("--out takes one file with --segments; leave it out to get "
                       "timelines/<file stem>-<model> per file")
    taken: set[Path] = set()
    for path in files:
        # a/x.wav and b/x.wav in one call get x-<model> and x-<model>-2
        out = Path(args.out) if args.out else default_out(path, model_dir, taken=taken)
        taken.add(out)
        print(display_path(timeline_for_file(path, predictor, model_dir=model_dir,
                                             out=out, progress=not args.json)))
    return 0


def _format(result: dict) -> str:
    probs = "  ".join(f"{k} {v:.2f}" for k, v in result["probabilities"].items())
    line = f"{result['file']}: {result['emotion'].upper()}   ({probs})"
    for note in result.get("notes", []):
        line += f"\n  note: {note}"
    if "transcript" in result:
        line += f'\n  said: "{result["transcript"]}"'
    return line


if __name__ == "__main__":
    sys.exit(main())
