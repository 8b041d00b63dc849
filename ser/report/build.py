"""The report stage: every pipeline output -> ``reports/report.html`` and ``report.md``.

:func:`build_report` reads the manifests, metrics, model cards and a few audio
files (:mod:`ser.report.inputs`), draws the figures (:mod:`ser.report.figures`),
renders two Jinja2 templates (``templates/report.html.j2``, a self-contained
page with inline CSS and base64 PNGs, and ``templates/report.md.j2``, the
tables for a terminal or GitHub) and writes both atomically.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import AudioError, SerError
from ser.labels import sort_labels
from ser.outputs import atomic_path, head_contains, text_starts_with
from ser.report import comparison, facts, figures, provenance
from ser.report.facts import corpus_name, model_name, protocol_name
from ser.report.inputs import ReportInputs, Run, load_inputs
from ser.report.tables import Table, ci_text, f3

#: Output file names inside ``out_dir``.
HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
REPORT_TITLE = "Speech emotion recognition: results report"

#: Defaults for settings a params mapping may lack (the schema makes them required).
MFCC_DEFAULTS: dict[str, Any] = {"sample_rate": 16000, "n_fft": 512, "hop_length": 160,
                                 "n_mels": 64, "fmin": 0.0, "fmax": None, "max_seconds": 4.0}


def duration_text(seconds: float) -> str:
    """A human duration: ``1 h 02 min``, ``12.3 min`` or ``45.2 s``."""
    if seconds >= 3600:
        hours, rest = divmod(int(round(seconds)), 3600)
        return f"{hours}\u00a0h {rest // 60:02d}\u00a0min"
    if seconds >= 60:
        return f"{seconds / 60:.1f}\u00a0min"
    return f"{seconds:.1f}\u00a0s"


def is_synthetic(root: str) -> bool:
    """True for a corpus root inside a ``demo`` folder (the synthetic demo corpora)."""
    return "demo" in Path(root).parts


def resolve(path: str, project_dir: Path) -> Path:
    """An audio path from a manifest, relative paths taken from the project root."""
    p = Path(path)
    return p if p.is_absolute() else project_dir / p


# --------------------------------------------------------------------------- corpus overview


def audio_headers(manifests: pd.DataFrame, corpora: dict[str, str],
                  project_dir: Path) -> pd.DataFrame:
    """Duration and sample rate of every clip, from its WAV header (no decoding).

    Returns
    -------
    DataFrame
        ``path``, ``duration`` (s, NaN if unreadable), ``samplerate`` and
        ``error`` (reason, empty if readable), in manifest order.

    Raises
    ------
    SerError
        If no clip of a corpus can be read (the corpus folder is gone).
    """
    from ser.audio import audio_info

    rows = []
    for path in manifests["path"]:
        try:
            info = audio_info(resolve(path, project_dir))
            rows.append((path, info.frames / info.samplerate, int(info.samplerate), ""))
        except AudioError as exc:
            rows.append((path, np.nan, 0, exc.reason))
    out = pd.DataFrame(rows, columns=["path", "duration", "samplerate", "error"])
    out["corpus"] = manifests["corpus"].to_numpy()
    for corpus, group in out.groupby("corpus", sort=False):
        if group["duration"].isna().all():
            first = group.iloc[0]
            hint = ("regenerate it (python scripts/generate_demo.py --corpus "
                    f"{corpus} --out {corpora.get(corpus, '?')})"
                    if is_synthetic(corpora.get(corpus, "")) else
                    f"restore it at {corpora.get(corpus, '?')}")
            raise SerError(f"{resolve(first['path'], project_dir)}: no audio of corpus "
                           f"{corpus} can be read ({first['error']}); the manifest points at "
                           f"audio that is gone: {hint}, then rerun the manifest stage")
    return out


def counts_table(manifests: pd.DataFrame, corpora: list[str]) -> pd.DataFrame:
    """Clips per corpus (rows, params order) x emotion (columns, canonical order)."""
    counts = manifests.groupby(["corpus", "emotion"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=[c for c in corpora if c in counts.index],
                            columns=sort_labels(counts.columns), fill_value=0)
    counts.index = [corpus_name(c) for c in counts.index]
    return counts.astype(int)


def label_map_of(params: dict[str, Any]):
    """The :class:`ser.labels.LabelMap` of params ``labels:`` (identity when absent)."""
    from ser.labels import LabelMap

    return LabelMap.from_mapping(params.get("labels"))


def mapped_manifests(manifests: pd.DataFrame, label_map) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The clips the label map keeps (``emotion`` renamed as merged) and those it leaves out."""
    labels, mask = label_map.apply(manifests["emotion"].astype(str))
    kept = manifests[mask].copy()
    kept["emotion"] = list(labels)
    return kept, manifests[~mask]


def label_mapping(inputs: ReportInputs, params: dict[str, Any]) -> dict[str, Any]:
    """What params ``labels:`` did to each label of the corpora, with clip counts."""
    label_map = label_map_of(params)
    merged = dict(label_map.merge)
    tab = Table(["Label in the corpora", "Clips", "Becomes", "Why"], text=True)
    counts = inputs.manifests["emotion"].astype(str).value_counts()
    for label in sort_labels(counts.index):
        target = merged.get(label, label)
        if target in label_map.drop:
            becomes, why = "left out", f"labels.drop lists {target}"
        elif label_map.keep is not None and target not in label_map.keep:
            becomes, why = "left out", f"not in labels.keep ({', '.join(label_map.keep)})"
        elif target != label:
            becomes, why = target, f"labels.merge: {label} → {target}"
        else:
            becomes, why = label, "kept as is"
        tab.rows.append([label, str(int(counts[label])), becomes, why])
    section = params.get("labels") or {}
    return {"identity": label_map.is_identity, "describe": label_map.describe(),
            "preset": section.get("preset"), "table": tab}


def unused_clips(inputs: ReportInputs, params: dict[str, Any]) -> dict[str, Any]:
    """Clips of each corpus the run does not use, by stage and reason, and how many clips
    the feature sets disagree on (a comparison of sets is on different clips then)."""
    from ser.features.sets import FEATURE_SETS

    _, left_out = mapped_manifests(inputs.manifests, label_map_of(params))
    extracted = list(dict.fromkeys(FEATURE_SETS[f].extracted for f in inputs.feature_sets
                                   if f in FEATURE_SETS))
    shown = [fs for fs in extracted if any((fs, c) in inputs.skipped for c in inputs.corpora)]
    tab = Table(["Corpus", "Files not parsed (manifest)", "Left out by labels:",
                 *[f"Skipped by {fs} (features)" for fs in shown]], text=True)

    def cell(table: pd.DataFrame | None) -> str:
        if table is None:
            return "–"
        if table.empty:
            return "0"
        reason, n = table["reason"].value_counts().index[0], table["reason"].value_counts().iloc[0]
        more = f"; {len(table) - n} other" if len(table) > n else ""
        return f"{len(table)} ({n}: {reason}{more})"

    differ: list[str] = []
    total = 0
    for corpus in inputs.corpora:
        dropped = left_out[left_out["corpus"] == corpus]["emotion"].astype(str).value_counts()
        labels_text = (f"{int(dropped.sum())} ("
                       + ", ".join(f"{e} {int(n)}" for e, n in dropped.items()) + ")"
                       if len(dropped) else "0")
        row = [corpus_name(corpus), cell(inputs.rejected.get(corpus)), labels_text]
        row += [cell(inputs.skipped.get((fs, corpus))) for fs in shown]
        tab.rows.append(row)
        skipped = {fs: set(inputs.skipped[(fs, corpus)]["path"]) for fs in shown
                   if (fs, corpus) in inputs.skipped}
        if len(skipped) > 1:
            union = set().union(*skipped.values())
            common = set.intersection(*skipped.values())
            if union != common:
                total += len(union - common)
                differ.append(f"{corpus_name(corpus)}: {len(union - common)} clip(s) ("
                              + ", ".join(f"{fs} skipped {len(skipped[fs] - common)}"
                                          for fs in skipped) + ")")
    return {"table": tab, "differ": differ, "n_differ": total,
            "features_known": bool(shown)}


def corpus_overview(inputs: ReportInputs, headers: pd.DataFrame,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tables and heatmap of the corpus overview section (clip counts after the label map
    of ``params``)."""
    man = inputs.manifests
    mapped, left_out = mapped_manifests(man, label_map_of(params or {}))
    counts = counts_table(mapped, list(inputs.corpora))
    lost = left_out.groupby("corpus").size()
    count_tab = Table(["Corpus", *counts.columns, "Total", "Left out by labels:"])
    present = [c for c in inputs.corpora if c in set(mapped["corpus"])]  # counts' rows
    for corpus, (name, row) in zip(present, counts.iterrows(), strict=True):
        count_tab.rows.append([str(name), *[str(v) if v else "–" for v in row],
                               str(int(row.sum())), str(int(lost.get(corpus, 0)))])
    totals = counts.sum(axis=0)
    count_tab.rows.append(["All", *[str(int(v)) for v in totals], str(int(totals.sum())),
                           str(len(left_out))])

    speakers = Table(["Corpus", "Clips", "Speakers", "Female / male speakers",
                      "Female / male clips", "Total duration", "Mean clip", "Sample rate",
                      "Unreadable", "Human recognition", "Audio"])
    unreadable: list[str] = []
    for corpus, root in inputs.corpora.items():
        rows = man[man["corpus"] == corpus]
        head = headers[headers["corpus"] == corpus]
        per_speaker = rows.groupby("speaker")["gender"].first()
        genders = per_speaker.value_counts()
        clip_genders = rows["gender"].value_counts()
        unknown = int(genders.get("unknown", 0))
        rates = sorted({int(r) for r in head["samplerate"] if r})
        rate_text = ", ".join(f"{r / 1000:g}\u00a0kHz" for r in rates) or "–"
        bad = head[head["error"] != ""]
        if len(bad):
            unreadable.append(f"{corpus_name(corpus)}: {len(bad)} clip(s) unreadable, e.g. "
                              f"{bad.iloc[0]['path']} ({bad.iloc[0]['error']})")
        human = facts.HUMAN_RECOGNITION.get(corpus)
        speakers.rows.append([
            corpus_name(corpus), str(len(rows)), str(len(per_speaker)),
            f"{int(genders.get('female', 0))} / {int(genders.get('male', 0))}"
            + (f" ({unknown} unknown)" if unknown else ""),
            f"{int(clip_genders.get('female', 0))} / {int(clip_genders.get('male', 0))}",
            duration_text(float(head["duration"].sum())),
            f"{head['duration'].mean():.2f}\u00a0s" if head["duration"].notna().any() else "–",
            rate_text, str(len(bad)),
            f"{human[0] * 100:g} %" if human else "–",
            "synthetic" if is_synthetic(root) else "recorded",
        ])
    return {
        "counts": count_tab,
        "counts_img": figures.counts_heatmap(counts),
        "speakers": speakers,
        "unreadable": unreadable,
        "human_notes": [f"{corpus_name(c)}: {facts.HUMAN_RECOGNITION[c][1]}"
                        for c in inputs.corpora if c in facts.HUMAN_RECOGNITION],
        "roots": [{"corpus": corpus_name(c), "root": r, "synthetic": is_synthetic(r)}
                  for c, r in inputs.corpora.items()],
    }


def protocol_classes(inputs: ReportInputs, params: dict[str, Any]) -> Table:
    """Which corpora and classes each protocol trained and tested on."""
    test_corpus = corpus_name(str(params.get("splits", {}).get("cross_corpus_test", "?")))
    tab = Table(["Protocol", "What it measures", "Train corpora", "Test corpora", "Train clips",
                 "Test clips", "Classes", "Note"], text=True)
    order = {c: i for i, c in enumerate(inputs.corpora)}
    for protocol in inputs.protocols:
        runs = [inputs.run(protocol, m) for m in inputs.models]
        train_classes = sort_labels({lab for r in runs for lab in r.card.get("labels", [])})
        test_classes = sort_labels({lab for r in runs
                                    for lab in r.details.get("test_classes", [])})
        notes = []
        if len({frozenset(r.card.get("labels", [])) for r in runs}) > 1:
            notes.append("models were trained on different class sets (stale model?)")
        unseen = [c for c in test_classes if c not in train_classes]
        if unseen:
            notes.append(f"test classes never seen in training: {', '.join(unseen)}")
        untested = [c for c in train_classes if c not in test_classes]
        if untested:
            notes.append(f"trained but not tested: {', '.join(untested)}")
        first = runs[0]
        classes = ", ".join(train_classes) if train_classes == test_classes else (
            f"train: {', '.join(train_classes)}; test: {', '.join(test_classes)}")
        tab.rows.append([
            protocol_name(protocol),
            facts.PROTOCOL_TEXT.get(protocol, "").format(test=test_corpus),
            ", ".join(corpus_name(c) for c in sorted(
                first.train_corpora, key=lambda c: (order.get(c, len(order)), c))) or "–",
            ", ".join(corpus_name(c) for c in first.test_corpora) or "–",
            str(first.card.get("n_train", "–")), str(first.metrics.get("n_test", "–")),
            f"{len(set(train_classes) | set(test_classes))}: {classes}",
            "; ".join(notes) or "–",
        ])
    return tab


def examples(inputs: ReportInputs, headers: pd.DataFrame, params: dict[str, Any],
             project_dir: Path) -> list[dict[str, Any]]:
    """Waveform and mel-spectrogram figures of the first clips of every emotion.

    For each emotion the first corpus (in ``params.yaml`` order) that has it
    is used, and within it the first readable clips by path.
    """
    from ser.audio import load_audio

    n = int(params.get("report", {}).get("examples_per_emotion", 1))
    if n <= 0:
        return []
    mfcc = MFCC_DEFAULTS | {k: v for k, v in (params.get("mfcc") or {}).items()
                            if k in MFCC_DEFAULTS}
    sr = int(mfcc["sample_rate"])
    max_seconds = mfcc["max_seconds"] or 4.0
    man = inputs.manifests.assign(_ok=(headers["error"] == "").to_numpy(),
                                  _dur=headers["duration"].to_numpy())
    out = []
    for emotion in sort_labels(man["emotion"].unique()):
        for corpus in inputs.corpora:
            pick = man[(man["corpus"] == corpus) & (man["emotion"] == emotion) & man["_ok"]]
            if len(pick):
                break
        for _, row in pick.sort_values("path", kind="stable").head(n).iterrows():
            y, rate = load_audio(resolve(row["path"], project_dir), sr=sr)
            y = y[: int(max_seconds * rate)]
            out.append({
                "emotion": emotion,
                "corpus": corpus_name(corpus),
                "speaker": row["speaker"],
                "gender": row["gender"],
                "file": Path(row["path"]).name,
                "duration": f"{row['_dur']:.2f}\u00a0s",
                "img": figures.example_figure(
                    y, rate, n_fft=int(mfcc["n_fft"]),
                    hop_length=int(mfcc["hop_length"]), n_mels=int(mfcc["n_mels"]),
                    fmin=float(mfcc["fmin"] or 0.0), fmax=mfcc["fmax"]),
            })
    return out


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- assembly


def build_context(inputs: ReportInputs, params: dict[str, Any],
                  project_dir: Path, *, real_results: Path | None = None) -> dict[str, Any]:
    """Everything the templates show, computed from the inputs.

    ``real_results`` is the real-data benchmark's results file quoted by the
    "why these numbers differ" box (absent: the box says so).
    """
    headers = audio_headers(inputs.manifests, inputs.corpora, project_dir)
    synthetic = [corpus_name(c) for c, r in inputs.corpora.items() if is_synthetic(r)]
    results = []
    for protocol in inputs.protocols:
        runs = [inputs.run(protocol, m) for m in inputs.models]
        results.append({
            "slug": protocol,
            "name": protocol_name(protocol),
            "table": results_table(inputs, protocol),
            "best": best_model(inputs, protocol),
            "headline": headline(inputs, protocol),
            "classes": sort_labels(runs[0].details.get("test_classes", [])),
            "per_corpus": per_corpus_table(inputs, protocol),
            "test_corpora": ", ".join(corpus_name(c) for c in runs[0].test_corpora),
        })
    search, grids = search_table(inputs, params)
    compare, compare_rows, transductive = comparison.comparison(inputs)
    distribution, collapsed = comparison.prediction_distribution(inputs)
    return {
        "title": REPORT_TITLE,
        "synthetic": synthetic,
        "all_synthetic": len(synthetic) == len(inputs.corpora),
        "corpora": [corpus_name(c) for c in inputs.corpora],
        "models": [model_name(m) for m in inputs.models],
        "protocols": [protocol_name(p) for p in inputs.protocols],
        "overview": corpus_overview(inputs, headers, params),
        "labels": label_mapping(inputs, params),
        "unused": unused_clips(inputs, params),
        "protocol_classes": protocol_classes(inputs, params),
        "examples": examples(inputs, headers, params, project_dir),
        "examples_per_emotion": int(params.get("report", {}).get("examples_per_emotion", 1)),
        "results": results,
        "shown_sets": shown_sets(inputs),
        "seed": seed_comparison(inputs),
        "real": comparison.real_data_facts(real_results),
        "seed_published": ", ".join(f"{model_name(m)} {v:.2f}"
                                    for m, v in facts.SEED_ACCURACY.items()),
        "comparison": {
            "table": compare, "transductive": transductive,
            "mark": comparison.TRANSDUCTIVE_MARK,
            "img": (figures.comparison_chart(compare_rows, inputs.protocols)
                    if compare_rows else None)},
        "speaker_cv": comparison.speaker_cv_table(inputs),
        "distribution": {"table": distribution, "collapsed": collapsed,
                         "share": f"{comparison.COLLAPSE_SHARE:.0%}"},
        "uar_img": figures.uar_chart(uar_rows(inputs), inputs.models, inputs.protocols),
        "confusions": confusion_images(inputs),
        "lstm": lstm_section(inputs),
        "search": search,
        "grids": grids,
        "provenance": provenance.collect(project_dir, inputs.manifest_files, params),
    }


def render(context: dict[str, Any]) -> tuple[str, str]:
    """Render the HTML and Markdown templates with ``context``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ser.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    return (env.get_template("report.html.j2").render(**context),
            env.get_template("report.md.j2").render(**context))


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


#: How an existing report file is recognised as an earlier report (replaced on a rerun);
#: anything else at those names is refused (:mod:`ser.outputs`).
HTML_IS_OURS = head_contains('<meta name="generator" content="ser report stage">')
MARKDOWN_IS_OURS = text_starts_with(f"# {REPORT_TITLE}\n")


def check_report_out(out_dir: str | Path) -> None:
    """Refuse (one line) an ``--out`` whose report files this stage could not replace.

    Parameters
    ----------
    out_dir : str or Path
        The report folder (``report.html`` and ``report.md`` go there).
    """
    from ser.outputs import check_output

    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise SerError(f"--out {out_dir}: is {'a link' if out_dir.is_symlink() else 'a file'}, "
                       "not a folder; the report is never written through links or over "
                       "files - choose another --out")
    check_output(out_dir / HTML_NAME, kind="file", owned=HTML_IS_OURS)
    check_output(out_dir / MARKDOWN_NAME, kind="file", owned=MARKDOWN_IS_OURS)


def write_outputs(out_dir: Path, html: str, markdown: str) -> Path:
    """Write both files so that neither is replaced unless both were written.

    Returns
    -------
    Path
        The HTML report.
    """
    out_dir = Path(out_dir)
    html_path, md_path = out_dir / HTML_NAME, out_dir / MARKDOWN_NAME
    with ExitStack() as stack:
        tmp_html = stack.enter_context(atomic_path(html_path, owned=HTML_IS_OURS))
        tmp_md = stack.enter_context(atomic_path(md_path, owned=MARKDOWN_IS_OURS))
        tmp_md.write_text(markdown, encoding="utf-8")
        tmp_html.write_text(html, encoding="utf-8")
    return html_path


def build_report(*, params: dict[str, Any], manifests_dir: str | os.PathLike[str],
                 metrics_dir: str | os.PathLike[str], models_dir: str | os.PathLike[str],
                 out_dir: str | os.PathLike[str],
                 project_dir: str | os.PathLike[str] | None = None,
                 real_results: str | os.PathLike[str] | None = None,
                 features_dir: str | os.PathLike[str] | None = None) -> Path:
    """Build ``<out_dir>/report.html`` and ``<out_dir>/report.md`` from the pipeline outputs.

    Parameters
    ----------
    params
        The validated ``params.yaml`` mapping (``corpora``, ``train.models``,
        ``train.protocols``, ``report``, ``mfcc``, ``splits`` and the model
        sections are read).
    manifests_dir
        Folder of ``<corpus>.parquet`` manifests (manifest stage).
    metrics_dir
        Folder of ``<protocol>/<model>/{metrics,details}.json`` and
        ``predictions.csv`` (evaluate stage).
    models_dir
        Folder of ``<protocol>/<model>/card.json`` (and ``history.csv`` for the
        LSTM) (train stage).
    out_dir
        Where the two report files go (created if needed).
    project_dir
        Project root: relative audio paths of the manifests, ``git`` and
        ``dvc.lock`` are taken from here. Defaults to the current directory.
    real_results
        Results JSON of ``benchmarks/real_data_bench.py`` whose measured numbers
        the "why these numbers differ" box quotes; ``None`` or a missing file:
        the box says no real-data measurement is available.
    features_dir
        Folder of the extracted feature sets: the clips each set skipped
        (``<set>/<corpus>/skipped.csv``) are counted, and clips the sets disagree on
        are reported (``None``: not shown).

    Returns
    -------
    Path
        The written HTML report.

    Raises
    ------
    SerError
        If an input is missing or broken; the message names the file and the
        stage that makes it. Nothing is written then.
    """
    project = Path(project_dir) if project_dir is not None else Path.cwd()
    inputs = load_inputs(params, manifests_dir=Path(manifests_dir),
                         metrics_dir=Path(metrics_dir), models_dir=Path(models_dir),
                         features_dir=Path(features_dir) if features_dir else None)
    if not inputs.models or not inputs.protocols:
        raise SerError("params.yaml train.models and train.protocols must not be empty")
    context = build_context(inputs, params, project,
                            real_results=Path(real_results) if real_results else None)
    html, markdown = render(context)
    return write_outputs(Path(out_dir), html, markdown)
