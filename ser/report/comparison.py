"""Feature set x model comparison, per-speaker results, prediction collapse, real-data facts.

Pure functions from :class:`~ser.report.inputs.ReportInputs` (or the real-data
benchmark's results file) to :class:`~ser.report.tables.Table` objects and
plot rows; :mod:`ser.report.build` puts them into the templates.

A feature set named ``<base>_spk`` is the speaker-normalised twin of
``<base>``; a run whose metrics.json says ``transductive: true`` (each test
speaker standardised with statistics of its own unlabeled test clips) is
marked as such wherever it is shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SerError
from ser.report.facts import model_name, protocol_name
from ser.report.inputs import ReportInputs, Run
from ser.report.tables import Table, ci_text, f3
from ser.splits.protocols import SPEAKER_DISJOINT

#: Suffix of a speaker-normalised feature set (``egemaps_spk`` is ``egemaps`` normalised).
SPK_SUFFIX = "_spk"

#: Protocols whose test speakers are never heard in training (the protocol registry's).
SPEAKER_INDEPENDENT: tuple[str, ...] = SPEAKER_DISJOINT

#: A model is flagged when one class takes this share of its predictions, or two do.
COLLAPSE_SHARE = 0.8

#: Marker appended to a transductive result.
TRANSDUCTIVE_MARK = "†"

#: Models of the real-data benchmark that read frame sequences.
SEQUENCE_BENCH_MODELS = frozenset({"crnn", "lstm_seed", "lstm"})


def base_set(feature_set: str) -> str:
    """The plain feature set a speaker-normalised ``<base>_spk`` set is the twin of."""
    return feature_set[: -len(SPK_SUFFIX)] if feature_set.endswith(SPK_SUFFIX) else feature_set


def is_transductive(run: Run) -> bool:
    """True when the run's metrics say so, or its feature set is a ``_spk`` twin."""
    flag = run.metrics.get("transductive")
    return bool(flag) if flag is not None else run.feature_set.endswith(SPK_SUFFIX)


def mark(run: Run) -> str:
    """`` †`` for a transductive run, else empty (appended wherever the run is named)."""
    return f" {TRANSDUCTIVE_MARK}" if is_transductive(run) else ""


def best_runs(inputs: ReportInputs, protocol: str) -> tuple[Run | None, Run | None]:
    """The run with the highest UAR under ``protocol`` over every feature set and model,
    and the best plain (non-transductive) one (the same run when the best is plain).

    Parameters
    ----------
    inputs : ReportInputs
        Everything the report read.
    protocol : str
        The protocol whose runs compete.
    """
    runs = [r for (p, _, _), r in inputs.grid.items() if p == protocol]
    best = max(runs, key=lambda r: float(r.metrics["uar"]), default=None)
    plain = max((r for r in runs if not is_transductive(r)),
                key=lambda r: float(r.metrics["uar"]), default=None)
    return best, plain


def _uar_cell(run: Run | None) -> str:
    if run is None:
        return "not run"
    ci = ci_text((run.metrics.get("ci95") or {}).get("uar"))
    mark = f" {TRANSDUCTIVE_MARK}" if is_transductive(run) else ""
    return f"{f3(run.metrics['uar'])} {ci}{mark}"


def comparison(inputs: ReportInputs) -> tuple[Table | None, list[dict[str, Any]], bool]:
    """Feature set x model UAR (95 % CI) under the speaker-independent protocols.

    Rows are protocol x base feature set x model; the plain set and its
    ``_spk`` twin are side by side.

    Parameters
    ----------
    inputs : ReportInputs
        Everything the report read.

    Returns
    -------
    table
        ``None`` when no speaker-independent protocol was run.
    plot_rows
        Dicts for :func:`ser.report.figures.comparison_chart`.
    any_transductive
        Whether a transductive run is shown (the report then explains it).
    """
    protocols = [p for p in inputs.protocols if p in SPEAKER_INDEPENDENT]
    if not protocols:
        return None, [], False
    bases = list(dict.fromkeys(base_set(fs) for fs in inputs.feature_sets))
    has_plain = any(not fs.endswith(SPK_SUFFIX) for fs in inputs.feature_sets)
    has_spk = any(fs.endswith(SPK_SUFFIX) for fs in inputs.feature_sets)
    columns = ["Protocol", "Features", "Model"]
    if has_plain:
        columns.append("UAR [95 % CI], plain")
    if has_spk:
        columns.append(f"UAR [95 % CI], speaker-normalised {TRANSDUCTIVE_MARK}")
    tab = Table(columns)
    rows: list[dict[str, Any]] = []
    uars: list[float] = []
    any_transductive = False
    for protocol in protocols:
        for base in bases:
            for model in inputs.models:
                plain = inputs.grid.get((protocol, base, model))
                spk = inputs.grid.get((protocol, base + SPK_SUFFIX, model))
                row = [protocol_name(protocol), base, model_name(model)]
                if has_plain:
                    row.append(_uar_cell(plain) if base in inputs.feature_sets else "–")
                if has_spk:
                    row.append(_uar_cell(spk) if base + SPK_SUFFIX in inputs.feature_sets
                               else "–")
                tab.rows.append(row)
                best = max([float(r.metrics["uar"]) for r in (plain, spk) if r] or [np.nan])
                uars.append(best)
                for variant, run in (("plain", plain), ("speaker-normalised", spk)):
                    if run is None:
                        continue
                    any_transductive |= is_transductive(run)
                    ci = (run.metrics.get("ci95") or {}).get("uar") or [None, None]
                    rows.append({"protocol": protocol, "label": f"{base} · {model_name(model)}",
                                 "variant": variant, "uar": float(run.metrics["uar"]),
                                 "lo": ci[0], "hi": ci[1],
                                 "chance": float(run.metrics.get("chance_uar", np.nan)),
                                 "transductive": is_transductive(run)})
    per_protocol = len(uars) // len(protocols)
    for k in range(len(protocols)):  # the best row of each protocol
        block = uars[k * per_protocol:(k + 1) * per_protocol]
        finite = [u for u in block if not np.isnan(u)]
        if finite:
            tab.best |= {k * per_protocol + i for i, u in enumerate(block)
                         if not np.isnan(u) and np.isclose(u, max(finite))}
    return tab, rows, any_transductive


def speaker_cv_table(inputs: ReportInputs) -> Table | None:
    """Per-speaker UAR of every ``speaker_cv`` run, with the mean ± sd over speakers.

    Parameters
    ----------
    inputs : ReportInputs
        Everything the report read (``None`` is returned without ``speaker_cv`` runs).
    """
    runs = [r for (p, _, _), r in inputs.grid.items() if p == "speaker_cv"]
    if not runs:
        return None
    speakers = sorted({str(s) for r in runs for s in (r.details.get("per_speaker") or {})})
    tab = Table(["Features", "Model", "Speaker UAR mean ± sd", "Pooled UAR",
                 *[f"spk {s}" for s in speakers]],
                caption="speaker_cv: one fold per group of held-out speakers; every speaker's "
                        "UAR is measured on its own clips while it was held out.")
    means = []
    for run in runs:
        per = {str(k): v for k, v in (run.details.get("per_speaker") or {}).items()}
        scores = np.array([float(v["uar"]) for v in per.values()], dtype=float)
        mean = run.metrics.get("uar_speaker_mean", scores.mean() if len(scores) else np.nan)
        sd = run.metrics.get("uar_speaker_sd",
                             scores.std(ddof=1) if len(scores) > 1 else np.nan)
        means.append(float(mean) if mean is not None else np.nan)
        mark = f" {TRANSDUCTIVE_MARK}" if is_transductive(run) else ""
        tab.rows.append([run.feature_set + mark, model_name(run.model),
                         f"{f3(mean)} ± {f3(sd)}", f3(run.metrics["uar"]),
                         *[f3(per[s]["uar"]) if s in per else "–" for s in speakers]])
    finite = [m for m in means if not np.isnan(m)]
    if finite:
        tab.best = {i for i, m in enumerate(means) if not np.isnan(m)
                    and np.isclose(m, max(finite))}
    return tab


def collapse(counts: dict[str, int], *, share: float = COLLAPSE_SHARE) -> str | None:
    """Why a prediction distribution collapsed onto one or two classes, or ``None``.

    One class with ``share`` of the predictions is a collapse whenever the model
    knows more than one class; two classes only when it knows at least four.

    Parameters
    ----------
    counts : dict
        Class -> number of test predictions (every class the model knows).
    share : float
        Share of the predictions that counts as a collapse.
    """
    total = sum(counts.values())
    if not total or len(counts) < 2:
        return None
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    if top[0][1] / total >= share:
        return f"{top[0][0]} takes {top[0][1] / total:.0%} of the predictions"
    if len(top) >= 2 and (top[0][1] + top[1][1]) / total >= share:
        known = len(counts)
        if known >= 4:
            return (f"{top[0][0]} and {top[1][0]} take "
                    f"{(top[0][1] + top[1][1]) / total:.0%} of the predictions")
    return None


def prediction_distribution(inputs: ReportInputs) -> tuple[Table, list[str]]:
    """Share of the test predictions per class for every run; collapsed runs flagged.

    Parameters
    ----------
    inputs : ReportInputs
        Everything the report read.

    Returns
    -------
    table
        Rows protocol x feature set x model, a column per class (% of predictions).
    flagged
        One sentence per collapsed run.
    """
    from ser.labels import sort_labels

    labels = sort_labels({lab for r in inputs.grid.values()
                          for lab in [*r.details.get("labels", []), *r.predicted]})
    tab = Table(["Protocol", "Features", "Model", *labels, "Check"])
    flagged = []
    for (protocol, fs, model), run in inputs.grid.items():
        known = {lab: run.predicted.get(lab, 0) for lab in run.details.get("labels", [])}
        known |= run.predicted
        total = sum(known.values())
        why = collapse(known)
        cells = [f"{100 * known[lab] / total:.0f} %" if lab in known and total else "–"
                 for lab in labels]
        check = f"⚠ collapsed: {why}" if why else "ok"
        if why:
            flagged.append(f"{model_name(model)} ({fs}{mark(run)}, "
                           f"{protocol_name(protocol).lower()}): "
                           f"{why}")
        tab.rows.append([protocol_name(protocol), fs + mark(run), model_name(model), *cells,
                         check])
    return tab, flagged


# --------------------------------------------------------------------------- real-data facts


def _best_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(runs, key=lambda r: float(r["mean_speaker_uar"]), default=None)


def real_data_facts(path: str | Path | None) -> dict[str, Any]:
    """The measured real-data numbers the "why these numbers differ" box quotes.

    Parameters
    ----------
    path
        Results JSON of ``benchmarks/real_data_bench.py``
        (``benchmarks/results/real_<corpus>_<protocol>.json``), or ``None``.

    Returns
    -------
    dict
        ``available`` (False when there is no file), and when available
        ``file``, ``corpus``, ``protocol``, ``dates``, ``n_clips``,
        ``n_speakers`` and the rows ``seed``, ``plain``, ``normalised``,
        ``sequence`` (the best plain sequence model), ``sequence_normalised`` (the
        best transductive one) (each ``None`` or ``{feature_set, model, uar, sd}``).

    Raises
    ------
    SerError
        If the file exists but is not a results file of the benchmark.
    """
    if path is None or not Path(path).is_file():
        return {"available": False, "file": str(path) if path else ""}
    path = Path(path)
    try:
        runs = list(json.loads(path.read_text())["runs"].values())
        for r in runs:
            float(r["mean_speaker_uar"]), r["feature_set"], r["model"], r["speaker_norm"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SerError(f"{path}: not a results file of benchmarks/real_data_bench.py ({exc!r}); "
                       "rerun python benchmarks/real_data_bench.py --table-only") from None
    if not runs:
        return {"available": False, "file": str(path)}

    def pick(run: dict[str, Any] | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return {"feature_set": run["feature_set"], "model": model_name(run["model"]),
                "uar": f"{float(run['mean_speaker_uar']):.2f}",
                "sd": f"{float(run.get('sd_speaker_uar', np.nan)):.2f}"}

    def sequence(r: dict[str, Any]) -> bool:
        return r["model"] in SEQUENCE_BENCH_MODELS or str(r["feature_set"]).endswith("_seq")

    plain = [r for r in runs if r["speaker_norm"] == "none"]
    dates = sorted({str(r.get("date", "")) for r in runs if r.get("date")})
    return {
        "available": True,
        "file": str(path),
        "corpus": str(runs[0].get("corpus", "?")),
        "protocol": str(runs[0].get("protocol", "?")),
        "dates": " to ".join(dict.fromkeys([dates[0], dates[-1]])) if dates else "?",
        "n_clips": int(max(int(r.get("n_clips", 0)) for r in runs)),
        "n_speakers": int(max(int(r.get("n_speakers", 0) or 0) for r in runs)),
        "seed": pick(next((r for r in plain if r["feature_set"] == "seed"
                           and r["model"] == "svm"), None)),
        "plain": pick(_best_run([r for r in plain if not sequence(r)])),
        "normalised": pick(_best_run([r for r in runs if r["speaker_norm"] != "none"])),
        "sequence": pick(_best_run([r for r in plain if sequence(r)])),
        "sequence_normalised": pick(_best_run([r for r in runs if sequence(r)
                                               and r["speaker_norm"] != "none"])),
    }
