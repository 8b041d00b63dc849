"""The report's results: per-protocol tables and headlines, seeds, per-corpus UAR,
confusion matrices, the LSTM's training curves and the hyperparameter search."""

from __future__ import annotations

from typing import Any

import numpy as np

from ser.labels import sort_labels
from ser.report import comparison, facts, figures
from ser.report.facts import corpus_name, model_name, protocol_name
from ser.report.inputs import ReportInputs, Run
from ser.report.tables import Table, ci_text, f3


def _best(values: list[float]) -> set[int]:
    finite = [v for v in values if v is not None and not np.isnan(v)]
    if not finite:
        return set()
    top = max(finite)
    return {i for i, v in enumerate(values) if v is not None and np.isclose(v, top)}


def run_features(run: Run) -> str:
    """The feature set of a run as shown in a table, `` †`` when transductive."""
    return run.feature_set + comparison.mark(run)


def shown_sets(inputs: ReportInputs) -> str:
    """Which feature set the per-model sections (3, 5, 6, 7) show: each model's first
    listed set it can read (section 4b compares them all)."""
    by_set: dict[str, list[str]] = {}
    for (_, model), run in inputs.runs.items():
        names = by_set.setdefault(run_features(run), [])
        if model_name(model) not in names:
            names.append(model_name(model))
    if len(by_set) == 1:
        return f"feature set {next(iter(by_set))} (the first listed in train.feature_sets)"
    return "feature sets " + "; ".join(f"{fs} ({', '.join(ms)})" for fs, ms in by_set.items()) \
        + " (each model's first listed set it can read)"


def headline(inputs: ReportInputs, protocol: str) -> dict[str, Any] | None:
    """The summary card of a protocol: its best run over every feature set and model, and
    the best plain run beside it when the best is transductive."""
    best, plain = comparison.best_runs(inputs, protocol)
    if best is None:
        return None

    def describe(run: Run) -> dict[str, Any]:
        return {"uar": f3(run.metrics["uar"]), "model": model_name(run.model),
                "features": run_features(run), "chance": f3(run.metrics["chance_uar"]),
                "transductive": comparison.is_transductive(run)}

    out = describe(best)
    out["plain"] = describe(plain) if plain is not None and plain is not best else None
    return out


def results_table(inputs: ReportInputs, protocol: str) -> Table:
    """All models under one protocol; the best UAR highlighted."""
    tab = Table(["Model", "Features", "Accuracy", "Precision (macro)", "Recall (macro)",
                 "F1 (macro)", "UAR", "UAR 95 % CI", "Chance UAR", "Stratified baseline UAR",
                 "Test clips"])
    uars = []
    for model in inputs.models:
        run = inputs.run(protocol, model)
        m = run.metrics
        uars.append(float(m["uar"]))
        tab.rows.append([
            model_name(model), run_features(run), f3(m["accuracy"]), f3(m["precision_macro"]),
            f3(m["recall_macro"]), f3(m["f1_macro"]), f3(m["uar"]),
            ci_text((m.get("ci95") or {}).get("uar")), f3(m["chance_uar"]),
            f3(m.get("baseline_stratified_uar")), str(m["n_test"]),
        ])
    tab.best = _best(uars)
    return tab


def best_model(inputs: ReportInputs, protocol: str) -> str:
    """Display name(s) of the model(s) with the highest UAR under ``protocol``."""
    uars = [float(inputs.run(protocol, m).metrics["uar"]) for m in inputs.models]
    return " and ".join(model_name(inputs.models[i]) for i in sorted(_best(uars)))


def seed_comparison(inputs: ReportInputs) -> Table:
    """The seed project's published accuracies beside this run's numbers."""
    columns = ["Model", "Seed project: accuracy, pooled random split (published)"]
    shown = []
    for protocol, metric, label in (("random", "accuracy", "accuracy"),
                                    ("random", "uar", "UAR"),
                                    ("speaker", "uar", "UAR"),
                                    ("cross_corpus", "uar", "UAR")):
        if protocol in inputs.protocols:
            columns.append(f"This run: {label}, {protocol_name(protocol).lower()}")
            shown.append((protocol, metric))
    columns.insert(1, "Features (this run)")
    tab = Table(columns)
    models = list(inputs.models) + [m for m in facts.SEED_ACCURACY if m not in inputs.models]
    for model in models:
        seed = facts.SEED_ACCURACY.get(model)
        ours = next((r for (_, m), r in inputs.runs.items() if m == model), None)
        row = [model_name(model), run_features(ours) if ours else "–",
               f"{seed:.2f}" if seed is not None else "–"]
        for protocol, metric in shown:
            run = inputs.runs.get((protocol, model))
            row.append(f3(run.metrics[metric]) if run else "not run")
        tab.rows.append(row)
    return tab


def per_corpus_table(inputs: ReportInputs, protocol: str) -> Table | None:
    """UAR / accuracy per test corpus of a pooled test set, with human rates for context."""
    runs = [inputs.run(protocol, m) for m in inputs.models]
    per = [r.details.get("per_corpus") or {} for r in runs]
    corpora = [c for c in inputs.corpora if any(c in p for p in per)]
    corpora += sorted({c for p in per for c in p} - set(corpora))
    if not corpora:
        return None
    tab = Table(["Model", "Features", *[f"{corpus_name(c)}: UAR / acc." for c in corpora]])
    for run, p in zip(runs, per, strict=True):
        tab.rows.append([model_name(run.model), run_features(run), *[
            f"{f3(p[c]['uar'])} / {f3(p[c]['accuracy'])}" if c in p else "–" for c in corpora]])
    n_test = []
    for c in corpora:
        ns = {p[c].get("n_test") for p in per if c in p}
        n_test.append(str(ns.pop()) if len(ns) == 1 else "varies")
    tab.rows.append(["Test clips", "", *n_test])
    human = [facts.HUMAN_RECOGNITION.get(c) for c in corpora]
    tab.rows.append(["Human listeners (accuracy)", "",
                     *[f"{h[0]:.3f}" if h else "–" for h in human]])
    for i, c in enumerate(corpora):
        uars = [float(p[c]["uar"]) if c in p else np.nan for p in per]
        best = _best(uars)
        if best:  # mark per-column bests in the cell text (rows are models)
            for row in best:
                tab.rows[row][i + 2] = tab.rows[row][i + 2] + " ★"
    return tab


def uar_rows(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Points of the UAR chart."""
    rows = []
    for (protocol, model), run in inputs.runs.items():
        ci = (run.metrics.get("ci95") or {}).get("uar") or [None, None]
        rows.append({"protocol": protocol, "model": model, "uar": float(run.metrics["uar"]),
                     "lo": ci[0], "hi": ci[1], "chance": float(run.metrics["chance_uar"])})
    return rows


def canonical_confusion(labels: list[str], confusion: list[list[int]]
                        ) -> tuple[list[str], np.ndarray]:
    """The confusion matrix with rows and columns in the canonical emotion order.

    Classical models list their classes alphabetically (scikit-learn) while
    the LSTM uses :data:`ser.labels.EMOTIONS` order; reordering makes the
    matrices of one protocol comparable at a glance.
    """
    order = sort_labels(labels)
    perm = [list(labels).index(lab) for lab in order]
    matrix = np.asarray(confusion, dtype=int)
    return order, matrix[np.ix_(perm, perm)]


def confusion_images(inputs: ReportInputs) -> list[dict[str, str]]:
    """One confusion grid per protocol."""
    out = []
    for protocol in inputs.protocols:
        runs = []
        for model in inputs.models:
            run = inputs.run(protocol, model)
            labels, matrix = canonical_confusion(run.details["labels"],
                                                 run.details["confusion"])
            runs.append({"model": model, "labels": labels, "confusion": matrix,
                         "title": f"{model_name(model)} · {run_features(run)}",
                         "uar": float(run.metrics["uar"]),
                         "test_classes": run.details.get("test_classes", labels)})
        out.append({"protocol": protocol_name(protocol), "slug": protocol,
                    "img": figures.confusion_grid(runs)})
    return out


def lstm_section(inputs: ReportInputs) -> dict[str, Any]:
    """Training curves and a summary table of the first sequence model, or why there are none."""
    from ser.models import SEQUENCE_MODELS

    seq = [m for m in inputs.models if m in SEQUENCE_MODELS]
    if not seq:
        return {"run": False, "reason": "No sequence model (e.g. the LSTM) is in params.yaml "
                "train.models, so none was trained in this run; add one to include it."}
    model = seq[0]
    hist = {p: inputs.run(p, model).history for p in inputs.protocols}
    hist = {p: h for p, h in hist.items() if h is not None and len(h)}
    if not hist:
        return {"run": False, "reason": "The LSTM history files are empty."}
    tab = Table(["Protocol", "Features", "Epochs run", "Best epoch", "Best val. loss",
                 "Val. accuracy at best", "Test UAR"])
    for protocol, h in hist.items():
        i = h["val_loss"].idxmin()
        tab.rows.append([protocol_name(protocol), run_features(inputs.run(protocol, model)),
                         str(len(h)), str(int(h.loc[i, "epoch"])),
                         f3(h.loc[i, "val_loss"]),
                         f3(h.loc[i, "val_accuracy"]) if "val_accuracy" in h else "–",
                         f3(inputs.run(protocol, model).metrics["uar"])])
    return {"run": True, "img": figures.training_curves(hist), "table": tab}


def _params_text(best: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(best.items())) or "(defaults)"


def search_table(inputs: ReportInputs, params: dict[str, Any]) -> tuple[Table, list[str]]:
    """Best GridSearch parameters (and CV score) per model x protocol; grids searched."""
    tab = Table(["Model", "Features", "Protocol", "Best parameters", "CV score", "Scoring", "CV",
                 "Train clips", "Fit time"], text=True)
    grids = []
    for model in inputs.models:
        grid = (params.get(model) or {}).get("grid")
        if grid:
            grids.append(f"{model_name(model)}: " + "; ".join(
                f"{k} ∈ {list(v)}" for k, v in grid.items()))
        for protocol in inputs.protocols:
            card: Run = inputs.run(protocol, model)
            c = card.card
            if "cv_best_score" in c:
                score, scoring = f3(c["cv_best_score"]), str(c.get("scoring", "–"))
                cv = f"{c.get('cv', '–')}, {c.get('cv_folds', '–')} folds"
            else:  # the LSTM: fixed settings, early stopping on a validation set
                score = (f"val. loss {f3(c.get('best_val_loss'))}"
                         if "best_val_loss" in c else "–")
                scoring = "early stopping"
                cv = (f"{c.get('epochs_run', '–')} epochs, "
                      f"{c.get('n_validation', '–')} validation clips")
            fit = c.get("fit_seconds")
            tab.rows.append([model_name(model), run_features(card), protocol_name(protocol),
                             _params_text(c.get("best_params") or {}), score, scoring, cv,
                             str(c.get("n_train", "–")),
                             f"{float(fit):.1f}\u00a0s" if fit is not None else "–"])
    return tab, grids
