"""``ser evaluate``: test a trained model on a corpus folder it never saw
(:func:`ser.evaluation.external.evaluate_folder`)."""

from __future__ import annotations

from pathlib import Path

from ser.evaluation.external import default_external_out, evaluate_folder


def register(subparsers) -> None:
    """``ser evaluate``: test a trained model on another corpus folder."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate a trained model on a corpus folder it never saw",
        description=evaluate_folder.__doc__)
    p.add_argument("--model", required=True, metavar="DIR", help="trained model folder")
    p.add_argument("--corpus", required=True, help="corpus parser: tess, ravdess, cremad, "
                   "savee, emodb or custom (your own folder-per-label or CSV/TSV manifest)")
    p.add_argument("--root", required=True, metavar="PATH",
                   help="folder with the recordings (custom: also a .csv/.tsv manifest)")
    p.add_argument("--out", metavar="DIR", help="output folder (default metrics/external/"
                   "<corpus>--<model dir>, e.g. ravdess--models-speaker-svm); must be new, "
                   "empty or an earlier output of ser evaluate unless --force")
    p.add_argument("--force", action="store_true",
                   help="write into an --out holding other files: they are kept, and a name "
                        "clash with a file ser evaluate did not write is refused")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% CIs")
    p.set_defaults(func=_evaluate_command)


def _evaluate_command(args) -> int:
    model_dir = Path(args.model)
    out = Path(args.out) if args.out else default_external_out(model_dir, args.corpus)
    m = evaluate_folder(model_dir, args.corpus, Path(args.root), out_dir=out,
                        bootstrap=args.bootstrap, force=args.force)
    ci = m["ci95"].get("uar", [float("nan")] * 2)
    dropped = ", ".join(f"{e} {n}" for e, n in m["dropped_test_emotions"].items())
    print(f"{model_dir} on {args.corpus} ({args.root}): UAR {m['uar']:.3f} "
          f"[{ci[0]:.3f}, {ci[1]:.3f}], accuracy {m['accuracy']:.3f}, F1 {m['f1_macro']:.3f} "
          f"on {m['n_test']} clips (chance {m['chance_uar']:.3f}) -> {out}")
    print(f"  scored on the {len(m['restricted_to'])} emotions both sides share: "
          f"{', '.join(m['restricted_to'])}")
    print(f"  test clips left out (emotion unknown to the model): "
          f"{m['n_unknown_emotion']}{f' ({dropped})' if dropped else ''}")
    print(f"  model classes the corpus lacks, never answered: "
          f"{', '.join(m['excluded_model_classes']) or 'none'}")
    return 0
