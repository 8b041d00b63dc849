"""How many clips of a new speaker does a speaker-normalised model need? (enrolment curve)

    nice python benchmarks/enrolment_bench.py --root ../shared/data/ravdess \\
        [--feature-set egemaps_mfcc] [--models svm logreg] [--n-clips 3 5 10 20] [--draws 5]

Leave one speaker out on a real corpus (default: the 12 RAVDESS actors in
``../shared/data/ravdess``). In every fold two models of each kind are tuned and fitted
on the other speakers exactly as ``benchmarks/real_data_bench.py`` does
(GridSearchCV over the model's grid in ``--params``, default the shipped ``params.yaml``;
speaker-grouped inner folds, scored by UAR):

* **plain**: features as extracted (the floor);
* **speaker-normalised**: every training speaker z-scored with the mean/std of all of
  that speaker's clips (:func:`ser.features.speaker_norm.normalize_by_speaker`).

The held-out speaker's clips are then classified by the speaker-normalised model with
statistics from:

* ``N`` **enrolment clips** (N in ``--n-clips``): N of the speaker's clips drawn at
  random (``--draws`` draws with seeds 0, 1, ...); the statistics use those N clips
  only, with the floors of :mod:`ser.predict.speaker_profile` (a std below 1e-8 becomes 1), and
  the N
  clips are **excluded from that speaker's test clips**: only the remaining clips are
  scored;
  Two estimators are compared on the same draws: the clips' **own** mean/std
  (``z-score``), and the same **shrunk toward the training speakers** (``shrunk``:
  :func:`ser.features.speaker_norm.shrunk_statistics` with the fold's training speakers'
  :func:`ser.features.speaker_norm.speaker_prior`, what predict.py does with a card's
  ``speaker_prior``);
* ``calm+neutral`` (on by default; ``--no-calm-neutral`` skips it): the statistics from
  the speaker's calm and neutral clips only (what a user who enrols with relaxed speech
  gives), all of them; scored on the speaker's other clips;
* ``all`` (full transductive, the ceiling): the statistics from all of the speaker's
  clips, scored on all of them - what the pipeline's ``_spk`` runs do.

For every draw the plain model and the full-transductive model are scored on the **same
remaining clips**, so ``gain_kept`` = (UAR_N - plain) / (transductive - plain) compares
like with like; UARs are pooled over all 12 held-out speakers' scored clips, then
averaged over draws (mean and sd across draws). Features come from
``real_data_bench.py``'s cache (``--cache-dir``), so a rerun extracts nothing.

Results: ``--out-dir``/enrolment_<corpus>_<feature_set>.json (every number, settings,
per-fold chosen parameters), ``.csv`` (one row per model x condition) and ``.png`` (the
curve). A Markdown table is printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_data_bench import bench_grid, cached_features  # noqa: E402

from ser.corpora import parse_corpus  # noqa: E402
from ser.errors import SerError  # noqa: E402
from ser.evaluation.metrics import summary_metrics  # noqa: E402
from ser.features.speaker_norm import normalize_by_speaker, shrunk_statistics, speaker_prior  # noqa: E402
from ser.models.classical import tune, unprefix  # noqa: E402
from ser.outputs import atomic_path  # noqa: E402
from ser.params.load import load_params  # noqa: E402
from ser.predict.speaker_profile import summary_statistics  # noqa: E402
from ser.splits.protocols import speaker_groups  # noqa: E402

CALM_NEUTRAL = ("calm", "neutral")


def fit(model: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
        grid: dict[str, list[Any]], inner_folds: int, seed: int):
    """The tuned model (GridSearchCV refit), its training output silenced."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        return tune(model, X, y, groups=groups, protocol="speaker", grid=grid,
                    scoring="balanced_accuracy", cv_folds=inner_folds, seed=seed, n_jobs=1)


def uar(actual, predicted) -> float:
    return float(summary_metrics(np.asarray(actual), np.asarray(predicted))["uar"])


#: How a test speaker's statistics are estimated from its enrolment clips.
ESTIMATORS = ("z-score", "shrunk")


def enrol_predict(search, X_test: np.ndarray, enrol: np.ndarray, *,
                  prior: dict[str, Any] | None = None) -> np.ndarray:
    """Predictions of the speaker-normalised model for ``X_test`` with the statistics of
    the rows ``enrol`` (boolean mask into ``X_test``): their own mean/std (``prior``
    None), or shrunk toward the training speakers'
    (:func:`ser.features.speaker_norm.shrunk_statistics`,
    as predict.py does with a card's ``speaker_prior``)."""
    mean, std = summary_statistics(X_test[enrol])
    if prior is not None:
        mean, std = shrunk_statistics(mean, std, int(np.sum(enrol)), prior)
    return search.predict((X_test - mean) / std)


def run_model(model: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
              grid: dict[str, list[Any]], n_clips: list[int], draws: int,
              calm_neutral: bool, inner_folds: int, seed: int) -> dict[str, Any]:
    """All folds of one model: per condition the pooled predictions of every draw."""
    Xn = normalize_by_speaker(X, groups)
    # condition -> draw -> list of (actual, enrolled, plain, transductive) arrays per fold
    pooled: dict[str, dict[int, list[tuple[np.ndarray, ...]]]] = {}
    chosen = []
    speakers = sorted(set(groups))
    for k, spk in enumerate(speakers):
        t0 = time.perf_counter()
        test = groups == spk
        train = ~test
        plain = fit(model, X[train], y[train], groups[train], grid=grid,
                    inner_folds=inner_folds, seed=seed)
        normed = fit(model, Xn[train], y[train], groups[train], grid=grid,
                     inner_folds=inner_folds, seed=seed)
        chosen.append({"speaker": spk,
                       "plain": {unprefix(model, a): v for a, v in plain.best_params_.items()},
                       "speaker_norm": {unprefix(model, a): v
                                        for a, v in normed.best_params_.items()}})
        prior = speaker_prior(X[train], groups[train])  # training speakers only
        Xt, yt = X[test], y[test]
        p_plain = plain.predict(Xt)
        p_all = enrol_predict(normed, Xt, np.ones(len(yt), bool))
        pooled.setdefault(("z-score", "all"), {}).setdefault(0, []).append(
            (yt, p_all, p_plain, p_all))
        for n in n_clips:
            if n >= len(yt):
                raise SerError(f"speaker {spk} has {len(yt)} clips; --n-clips {n} leaves "
                               "none to score")
            for d in range(draws):
                rng = np.random.default_rng([d, k, n])
                enrol = np.zeros(len(yt), bool)
                enrol[rng.choice(len(yt), size=n, replace=False)] = True
                rest = ~enrol
                for est in ESTIMATORS:
                    p_n = enrol_predict(normed, Xt, enrol,
                                        prior=prior if est == "shrunk" else None)
                    pooled.setdefault((est, str(n)), {}).setdefault(d, []).append(
                        (yt[rest], p_n[rest], p_plain[rest], p_all[rest]))
        if calm_neutral:
            enrol = np.isin(yt, CALM_NEUTRAL)
            rest = ~enrol
            for est in ESTIMATORS:
                p_cn = enrol_predict(normed, Xt, enrol, prior=prior if est == "shrunk" else None)
                pooled.setdefault((est, "calm+neutral"), {}).setdefault(0, []).append(
                    (yt[rest], p_cn[rest], p_plain[rest], p_all[rest]))
        print(f"  {model} fold {k + 1}/{len(speakers)} (speaker {spk}): plain "
              f"{uar(yt, p_plain):.3f}, transductive {uar(yt, p_all):.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for (estimator, condition), by_draw in pooled.items():
        per_draw = []
        for parts in by_draw.values():
            actual, enrolled, plain_p, trans_p = (np.concatenate(c) for c in zip(*parts,
                                                                                  strict=True))
            u_n, u_p, u_t = uar(actual, enrolled), uar(actual, plain_p), uar(actual, trans_p)
            per_draw.append({"uar": u_n, "plain_uar": u_p, "transductive_uar": u_t,
                             "gain_kept": (u_n - u_p) / (u_t - u_p) if u_t != u_p else np.nan,
                             "n_scored": int(len(actual))})
        frame = pd.DataFrame(per_draw)
        rows.append({"model": model, "estimator": estimator, "condition": condition,
                     "n_enrol": {"all": "all", "calm+neutral": "calm+neutral"}.get(
                         condition, condition),
                     "draws": len(per_draw),
                     "uar": round(frame["uar"].mean(), 4),
                     "uar_sd": round(frame["uar"].std(ddof=1), 4) if len(frame) > 1 else 0.0,
                     "plain_uar": round(frame["plain_uar"].mean(), 4),
                     "transductive_uar": round(frame["transductive_uar"].mean(), 4),
                     "gain_kept": round(frame["gain_kept"].mean(), 4),
                     "gain_kept_sd": (round(frame["gain_kept"].std(ddof=1), 4)
                                      if len(frame) > 1 else 0.0),
                     "n_scored": int(frame["n_scored"].mean()),
                     "per_draw": per_draw})
    return {"rows": rows, "chosen": chosen}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | enrolment clips of the test speaker | statistics | UAR (mean ± sd over "
             "draws) | plain on the same clips | transductive on the same clips | gain kept |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        n = {"all": "all (transductive ceiling, scored on all clips)",
             "calm+neutral": "its calm + neutral clips"}.get(r["condition"], r["condition"])
        est = ("own mean/std" if r["estimator"] == "z-score"
               else "shrunk toward training speakers")
        lines.append(f"| {r['model']} | {n} | {est} | {r['uar']:.3f} ± {r['uar_sd']:.3f} | "
                     f"{r['plain_uar']:.3f} | {r['transductive_uar']:.3f} | "
                     f"{100 * r['gain_kept']:.0f} % |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], out: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        colour = plt.get_cmap("tab10")(i)
        for est, style in zip(ESTIMATORS, ("-", "-."), strict=True):
            mine = [r for r in rows if r["model"] == model and r["condition"].isdigit()
                    and r["estimator"] == est]
            mine.sort(key=lambda r: int(r["condition"]))
            ax.errorbar([int(r["condition"]) for r in mine], [r["uar"] for r in mine],
                        yerr=[r["uar_sd"] for r in mine], marker="o" if est == "shrunk" else "x",
                        ls=style, color=colour, capsize=3,
                        label=f"{model}: N clips, {'shrunk' if est == 'shrunk' else 'own'} "
                              "statistics")
        full = next(r for r in rows if r["model"] == model and r["condition"] == "all")
        ax.axhline(full["transductive_uar"], color=colour, ls="--", lw=1,
                   label=f"{model}: all clips (transductive)")
        ax.axhline(full["plain_uar"], color=colour, ls=":", lw=1,
                   label=f"{model}: plain (no normalisation)")
    ax.set_xscale("log")
    ax.set_xticks(sorted({int(r["condition"]) for r in rows if r["condition"].isdigit()}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("clips of the test speaker used for its statistics (N)")
    ax.set_ylabel("UAR (pooled, leave-one-speaker-out)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def plot_title(settings: dict[str, Any]) -> str:
    return (f"{settings['corpus']}, {settings['n_speakers']} speakers left out in turn, "
            f"{settings['feature_set']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="ravdess", help="corpus parser (default ravdess)")
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess",
                        help="folder with the corpus' recordings")
    parser.add_argument("--feature-set", default="egemaps_mfcc",
                        help="summary feature set of real_data_bench.py's cache "
                             "(default egemaps_mfcc)")
    parser.add_argument("--models", nargs="+", default=["svm", "logreg"],
                        help="classical models (default: svm logreg)")
    parser.add_argument("--n-clips", nargs="+", type=int, default=[3, 5, 10, 20],
                        help="enrolment sizes (default 3 5 10 20; 'all' is always run)")
    parser.add_argument("--draws", type=int, default=5,
                        help="random enrolment draws per size (seeds 0..draws-1)")
    parser.add_argument("--no-calm-neutral", dest="calm_neutral", action="store_false",
                        help="skip the condition 'enrol with calm + neutral clips only'")
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13, help="tuning seed")
    parser.add_argument("--workers", type=int, default=1, help="feature extraction processes")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / ".cache")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--replot", action="store_true",
                        help="run nothing: redraw the .png and print the table from the .json")
    args = parser.parse_args(argv)
    if args.replot:
        stem = args.out_dir / f"enrolment_{args.corpus}_{args.feature_set}"
        doc = json.loads(stem.with_suffix(".json").read_text())
        plot(doc["rows"], stem.with_suffix(".png"), title=plot_title(doc["settings"]))
        print(markdown(doc["rows"]))
        return 0
    t0 = time.perf_counter()
    try:
        if min(args.n_clips) < 3:
            raise SerError("--n-clips: at least 3 (ser.predict.speaker_profile.MIN_SPEAKER_CLIPS)")
        all_params = load_params(args.params)
        mfcc_params = all_params["mfcc"]
        grids = {m: bench_grid(m, all_params) for m in args.models}
        manifest = parse_corpus(args.corpus, args.root).to_frame()
        manifest = manifest.sort_values(["corpus", "path"]).reset_index(drop=True)
        feats = cached_features(manifest["path"].astype(str).tolist(), args.feature_set,
                                mfcc_params=mfcc_params, cache_dir=args.cache_dir,
                                corpus=args.corpus, workers=args.workers)
    except (SerError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data = manifest.merge(feats, on="path", how="inner", validate="1:1")
    cols = [c for c in feats.columns if c != "path"]
    X = data[cols].to_numpy(dtype=np.float64)
    y = data["emotion"].to_numpy()
    groups = speaker_groups(data).to_numpy()
    print(f"{args.corpus}: {len(data)} clips, {len(set(groups))} speakers, {len(cols)} "
          f"{args.feature_set} features", flush=True)
    rows, chosen = [], {}
    for model in args.models:
        try:
            result = run_model(model, X, y, groups, grid=grids[model],
                               n_clips=sorted(args.n_clips),
                               draws=args.draws, calm_neutral=args.calm_neutral,
                               inner_folds=args.inner_folds, seed=args.seed)
        except SerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        rows += result["rows"]
        chosen[model] = result["chosen"]
    order = {c: i for i, c in enumerate([*map(str, sorted(args.n_clips)), "calm+neutral",
                                         "all"])}
    rows.sort(key=lambda r: (args.models.index(r["model"]), order[r["condition"]],
                             ESTIMATORS.index(r["estimator"])))
    stem = args.out_dir / f"enrolment_{args.corpus}_{args.feature_set}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"date": dt.date.today().isoformat(), "command": " ".join(sys.argv),
                "corpus": args.corpus, "root": str(args.root), "n_clips": len(data),
                "n_speakers": len(set(groups)), "feature_set": args.feature_set,
                "n_features": len(cols), "models": args.models, "n_enrol": args.n_clips,
                "draws": args.draws, "inner_folds": args.inner_folds, "seed": args.seed,
                "std_floor": 1e-8, "seconds": round(time.perf_counter() - t0, 1),
                "protocol": "leave one speaker out; training speakers z-scored with all their "
                            "own clips; test speaker's statistics from N random clips of "
                            "theirs, which are excluded from the scored clips; plain and "
                            "transductive models scored on the same remaining clips"}
    with atomic_path(stem.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"settings": settings, "rows": rows, "chosen": chosen},
                                  indent=1, default=str) + "\n")
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "per_draw"} for r in rows])
    table.insert(0, "feature_set", args.feature_set)
    table["date"] = settings["date"]
    with atomic_path(stem.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    plot(rows, stem.with_suffix(".png"), title=plot_title(settings))
    print()
    print(markdown(rows))
    print(f"\n-> {stem}.json, .csv, .png ({settings['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
