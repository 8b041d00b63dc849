"""The report's corpus overview: clips and durations per corpus, the label mapping,
unused clips, each protocol's classes and the example clips."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import AudioError, SerError
from ser.labels import sort_labels
from ser.report import facts, figures
from ser.report.facts import corpus_name, protocol_name
from ser.report.inputs import ReportInputs
from ser.report.tables import Table

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


def reason_kind(reason: str) -> str:
    """A skip or reject reason without its clip's particulars, so clips skipped for the
    same reason count together: ``silent or near-silent clip (level -62.4 dBFS, below
    mfcc.min_rms_db -60); skipped`` -> ``silent or near-silent clip``."""
    kind = re.sub(r"\s*\([^()]*\)", "", reason).strip()
    return re.sub(r";\s*skipped$", "", kind).strip() or reason


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
        kinds = table["reason"].astype(str).map(reason_kind).value_counts()
        reason, n = kinds.index[0], int(kinds.iloc[0])
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
