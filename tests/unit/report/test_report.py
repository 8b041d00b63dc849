"""The report stage on a small fabricated, self-consistent set of pipeline outputs."""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
import re
import subprocess
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.errors import SerError
from ser.evaluation.metrics import evaluate_predictions, write_evaluation
from ser.labels import sort_labels
from ser.params.load import load_params

ROOT = Path(__file__).resolve().parents[3]

#: Fabricated corpora: speakers (id, gender) and emotions.
CORPORA: dict[str, dict[str, Any]] = {
    "tess": {"speakers": [("OAF", "female"), ("YAF", "female")],
             "emotions": ["neutral", "happy", "sad", "angry", "surprised"]},
    "ravdess": {"speakers": [("01", "male"), ("02", "female"), ("03", "male")],
                "emotions": ["neutral", "calm", "happy", "sad", "angry", "surprised"]},
    "cremad": {"speakers": [("1001", "male"), ("1002", "female"), ("1003", "female")],
               "emotions": ["neutral", "happy", "sad", "angry", "fearful", "disgust"]},
    "savee": {"speakers": [("DC", "male"), ("JE", "male")],
              "emotions": ["neutral", "happy", "sad", "angry", "fearful", "disgust",
                           "surprised"]},
}
#: Share of correct predictions per model (so the models differ).
SKILL = {"svm": 0.8, "knn": 0.6, "random_forest": 0.75, "decision_tree": 0.5, "lstm_seed": 0.7,
         "crnn": 0.65}
SECONDS = 0.25
SR = 8000


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def fabricate(root: Path, *, corpora: tuple[str, ...] = ("tess", "ravdess"),
              models: tuple[str, ...] = ("svm", "knn", "lstm_seed"),
              protocols: tuple[str, ...] = ("random", "speaker", "cross_corpus"),
              clips: int = 2, seconds: float = SECONDS, sr: int = SR,
              feature_sets: tuple[str, ...] = ("mfcc",),
              collapsed: dict[str, str] | None = None) -> dict[str, Any]:
    """Write WAVs, manifests, metrics, details, predictions, cards and histories under ``root``.

    Metrics are computed from fabricated predictions with the evaluate stage's
    own functions, so every file has exactly the format the pipeline writes.
    ``collapsed`` maps a model to the one emotion it always answers. A feature
    set ``<base>_spk`` is written as a transductive (speaker-normalised) run;
    ``speaker_cv`` runs carry per-speaker UARs. Returns the params mapping and
    the folders.
    """
    params = copy.deepcopy(load_params(ROOT / "params.yaml"))
    params["corpora"] = {c: str(root / "audio" / c) for c in corpora}
    params["train"]["models"] = list(models)
    params["train"]["protocols"] = list(protocols)
    params["train"]["feature_sets"] = list(feature_sets)
    params["splits"]["cross_corpus_test"] = "ravdess"
    params["report"] = {"examples_per_emotion": 1}
    dirs = {name: root / name for name in ("manifests", "metrics", "models", "reports")}
    dirs["manifests"].mkdir(parents=True)

    frames = []
    t = np.arange(int(seconds * sr)) / sr
    for corpus in corpora:
        spec = CORPORA[corpus]
        rows = []
        folder = root / "audio" / corpus
        folder.mkdir(parents=True)
        for k, emotion in enumerate(spec["emotions"]):
            for speaker, gender in spec["speakers"]:
                for i in range(clips):
                    path = folder / f"{speaker}_{emotion}_{i:02d}.wav"
                    rng = np.random.default_rng(_seed(str(path.name), corpus))
                    y = 0.3 * np.sin(2 * np.pi * (150 + 60 * k) * t) * np.hanning(len(t))
                    sf.write(path, (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32),
                             sr, subtype="PCM_16")
                    rows.append({"path": str(path), "corpus": corpus, "speaker": speaker,
                                 "gender": gender, "emotion": emotion, "label_code": emotion,
                                 "take": f"{i:02d}"})
        frame = pd.DataFrame(rows)
        frame.to_parquet(dirs["manifests"] / f"{corpus}.parquet", index=False)
        frames.append(frame)
    pooled = pd.concat(frames, ignore_index=True)

    for protocol in protocols:
        train, test = _split(pooled, protocol, params["splits"]["cross_corpus_test"])
        labels = sort_labels(train["emotion"].unique())
        for fs in feature_sets:
            for model in models:
                rng = np.random.default_rng(_seed(protocol, model, fs))
                skill = SKILL[model] + (0.1 if fs.endswith("_spk") else 0.0)
                correct = rng.random(len(test)) < skill
                guess = rng.choice(labels, len(test))
                if collapsed and model in collapsed:
                    correct[:] = False
                    guess[:] = collapsed[model]
                predicted = np.where(correct & test["emotion"].isin(labels), test["emotion"],
                                     guess)
                proba = np.zeros((len(test), len(labels)))
                proba[np.arange(len(test)), [labels.index(p) for p in predicted]] = 1.0
                preds = test[["path", "corpus", "speaker"]].reset_index(drop=True)
                preds["actual"] = test["emotion"].to_numpy()
                preds["predicted"] = predicted
                for j, lab in enumerate(labels):
                    preds[f"p_{lab}"] = proba[:, j]
                with warnings.catch_warnings():  # sklearn: a class predicted but never actual
                    warnings.simplefilter("ignore", UserWarning)
                    metrics, details = evaluate_predictions(
                        preds, labels=labels, train_labels=train["emotion"].to_numpy(),
                        bootstrap=50, seed=0)
                extra: dict[str, Any] = {"model": model, "protocol": protocol,
                                         "feature_set": fs,
                                         "transductive": fs.endswith("_spk")}
                if protocol == "speaker_cv":
                    per = {f"{c}:{s}": {"uar": _uar(g), "n": len(g)}
                           for (c, s), g in preds.groupby(["corpus", "speaker"])}
                    scores = np.array([v["uar"] for v in per.values()])
                    details["per_speaker"] = per
                    extra |= {"uar_speaker_mean": float(scores.mean()),
                              "uar_speaker_sd": float(scores.std(ddof=1))}
                write_evaluation(dirs["metrics"] / protocol / fs / model, extra | metrics,
                                 details, preds)
                _write_model(dirs["models"] / protocol / fs / model, model, protocol, train,
                             labels, list(corpora), rng, params)
    return {"params": params, "root": root, **dirs}


def _uar(group: pd.DataFrame) -> float:
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(group["actual"], group["predicted"]))


def _split(pooled: pd.DataFrame, protocol: str, test_corpus: str
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    if protocol == "speaker_cv":  # every speaker is tested once (while held out)
        return pooled, pooled
    if protocol == "random":
        is_test = (pooled.index % 3) == 0
    elif protocol == "speaker":
        last = pooled.groupby("corpus")["speaker"].transform("max")
        is_test = pooled["speaker"] == last
    else:
        is_test = pooled["corpus"] == test_corpus
        train_classes = set(pooled.loc[~is_test, "emotion"])
        test_classes = set(pooled.loc[is_test, "emotion"])
        keep = pooled["emotion"].isin(train_classes & test_classes)
        return pooled[~is_test & keep], pooled[is_test & keep]
    return pooled[~is_test], pooled[is_test]


def _write_model(folder: Path, model: str, protocol: str, train: pd.DataFrame,
                 labels: list[str], corpora: list[str], rng: np.random.Generator,
                 params: dict[str, Any]) -> None:
    folder.mkdir(parents=True)
    card: dict[str, Any] = {
        "model": model, "protocol": protocol, "labels": labels, "feature_set": "mfcc",
        "feature_params": {"n_mfcc": 40}, "corpora": corpora, "n_train": len(train),
        "train_speakers": sorted(set(train["corpus"] + ":" + train["speaker"])),
    }
    if model in ("lstm_seed", "crnn"):
        epochs = 12
        loss = 1.8 * np.exp(-np.arange(epochs) / 4) + 0.3
        val = loss + 0.1 + 0.05 * np.maximum(0, np.arange(epochs) - 7)
        pd.DataFrame({"epoch": np.arange(1, epochs + 1), "loss": loss,
                      "accuracy": 1 - loss / 2.2, "val_loss": val,
                      "val_accuracy": 1 - val / 2.4}).to_csv(folder / "history.csv",
                                                              index=False)
        card |= {"format": "keras", "best_params": {"units": 64, "dropout": 0.3},
                 "epochs_run": epochs, "best_val_loss": float(val.min()),
                 "n_validation": 6, "fit_seconds": 3.2}
    else:
        best = {k: v[-1] for k, v in params[model]["grid"].items()}
        card |= {"format": "skops", "best_params": best,
                 "cv_best_score": round(float(rng.uniform(0.4, 0.9)), 4),
                 "scoring": "f1_macro", "cv": "StratifiedGroupKFold", "cv_folds": 3,
                 "fit_seconds": 0.42}
        pd.DataFrame([best | {"mean_test_score": 0.7, "rank_test_score": 1}]).to_csv(
            folder / "cv_results.csv", index=False)
    (folder / "card.json").write_text(json.dumps(card, indent=2))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Any]:
    """A fabricated set of outputs and the report built from it (built once)."""
    from ser.report import build_report

    fab = fabricate(tmp_path_factory.mktemp("report"))
    html_path = build_report(params=fab["params"], manifests_dir=fab["manifests"],
                             metrics_dir=fab["metrics"], models_dir=fab["models"],
                             out_dir=fab["reports"], project_dir=fab["root"])
    fab["html_path"] = html_path
    fab["html"] = html_path.read_text()
    fab["md"] = (fab["reports"] / "report.md").read_text()
    return fab


def _metrics(fab: dict[str, Any], protocol: str, model: str) -> dict[str, Any]:
    return json.loads((fab["metrics"] / protocol / "mfcc" / model / "metrics.json").read_text())


def _section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start:html.index("</section>", start)]


def test_writes_both_files(built):
    assert built["html_path"] == built["reports"] / "report.html"
    assert built["html"].startswith("<!DOCTYPE html>")
    assert built["md"].startswith("# ")
    assert not [p for p in built["reports"].iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("anchor, heading", [
    ("corpora", "1. Corpus overview"), ("examples", "2. Example clips"),
    ("results", "3. Results"), ("uar-chart", "4. UAR chart"),
    ("confusion", "5. Confusion matrices"), ("lstm", "6. LSTM training curves"),
    ("search", "7. Hyper-parameter search"), ("provenance", "8. Provenance"),
])
def test_every_section_is_present_and_filled(built, anchor, heading):
    section = _section(built["html"], anchor)
    assert f"<h2>{heading}</h2>" in section
    assert f'href="#{anchor}"' in built["html"]  # in the table of contents
    text = re.sub(r"<[^>]+>", " ", section)
    assert len(text.split()) > 20, f"section {anchor} looks empty"


def test_results_tables_hold_the_fabricated_numbers(built):
    results = _section(built["html"], "results")
    for protocol in ("random", "speaker", "cross_corpus"):
        for model in ("svm", "knn", "lstm_seed"):
            m = _metrics(built, protocol, model)
            for key in ("uar", "accuracy", "f1_macro", "precision_macro", "recall_macro"):
                assert f"<td>{m[key]:.3f}</td>" in results
            lo, hi = m["ci95"]["uar"]
            assert f"[{lo:.3f}, {hi:.3f}]" in results
            assert f"{m['uar']:.3f}" in built["md"]
        chance = _metrics(built, protocol, "svm")["chance_uar"]
        assert f"<td>{chance:.3f}</td>" in results
    svm = _metrics(built, "speaker", "svm")
    assert f"**{svm['uar']:.3f}**" in built["md"]  # the svm is the best fabricated model
    assert f"{svm['baseline_stratified_uar']:.3f}" in results


def test_best_model_is_highlighted(built):
    block = _section(built["html"], "results").split('id="results-speaker"')[1]
    best_row = re.search(r'<tr class="best"><td>([^<]+)', block)
    assert best_row and best_row.group(1).strip() == "SVM"


def test_seed_table_explanation_and_synthetic_note(built):
    html = built["html"]
    assert "0.96" in html and "0.75" in html  # the seed's LSTM and decision tree
    assert "No real-data measurement is available" in html  # no results file given
    assert "repetitions of the same sentence by the same speaker" in html
    assert "same sentence by the same speaker" in built["md"]


def test_per_corpus_breakdown_with_human_rates(built):
    results = _section(built["html"], "results")
    assert "Human listeners" in results
    assert "0.820" in results and "0.620" in results  # TESS, RAVDESS
    details = json.loads((built["metrics"] / "random" / "mfcc" / "svm" / "details.json")
                         .read_text())
    tess = details["per_corpus"]["tess"]
    assert f"{tess['uar']:.3f} / {tess['accuracy']:.3f}" in results
    assert "single corpus" in results.split('id="results-cross_corpus"')[1]


def test_corpus_overview_counts_speakers_durations_classes(built):
    overview = _section(built["html"], "corpora")
    # RAVDESS: 6 emotions x 3 speakers x 2 clips
    assert "<td>36</td>" in overview
    total = 6 * 3 * 2 * SECONDS
    assert f"{total:.1f}\u00a0s" in overview  # no break between number and unit
    assert "8\u00a0kHz" in overview
    # Classes per protocol: cross-corpus drops calm (no training corpus has it)
    cross = overview.split("Cross-corpus")[1]
    assert "calm" not in cross.split("</tr>")[0]
    assert "calm" in overview.split("Speaker-independent")[1].split("</tr>")[0]


def test_figures_are_embedded_pngs(built):
    html = built["html"]
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    n_emotions = len({e for c in ("tess", "ravdess") for e in CORPORA[c]["emotions"]})
    # counts heatmap + one example per emotion + UAR chart + feature-set comparison
    # + 3 confusion grids + LSTM curves
    assert len(images) == 1 + n_emotions + 1 + 1 + 3 + 1
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    example = _section(html, "examples")
    assert example.count("<figure>") == n_emotions
    assert "calm" in example and "RAVDESS" in example


def test_no_external_resources(built):
    html = built["html"]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html


def test_lstm_curves_and_search_tables(built):
    lstm = _section(built["html"], "lstm")
    assert "<td>12</td>" in lstm  # epochs run
    search = _section(built["html"], "search")
    card = json.loads((built["models"] / "speaker" / "mfcc" / "svm" / "card.json").read_text())
    assert f"{card['cv_best_score']:.3f}" in search
    best = ", ".join(f"{k}={v}" for k, v in sorted(card["best_params"].items()))
    assert best in search and "f1_macro" in search
    assert "early stopping" in search  # the LSTM row


def test_provenance(built):
    prov = _section(built["html"], "provenance")
    digest = hashlib.sha256((built["manifests"] / "tess.parquet").read_bytes()).hexdigest()
    assert digest in prov and digest in built["md"]
    assert "examples_per_emotion" in prov  # params dumped
    for package in ("numpy", "librosa", "sklearn", "keras", "jax"):
        assert package in prov
    assert "not a git repository" in prov  # tmp folder: no git, tolerated


def test_confusion_is_put_in_canonical_order():
    from ser.report.results import canonical_confusion

    labels, matrix = canonical_confusion(["angry", "neutral", "sad"],
                                         [[5, 1, 0], [2, 7, 0], [0, 3, 4]])
    assert labels == ["neutral", "sad", "angry"]
    assert matrix.tolist() == [[7, 0, 2], [3, 4, 0], [1, 0, 5]]


def test_lstm_not_in_models_says_not_run(tmp_path):
    from ser.report import build_report

    fab = fabricate(tmp_path, models=("svm",), protocols=("speaker",))
    fab["params"]["report"]["examples_per_emotion"] = 0
    html = build_report(params=fab["params"], manifests_dir=fab["manifests"],
                        metrics_dir=fab["metrics"], models_dir=fab["models"],
                        out_dir=fab["reports"], project_dir=tmp_path).read_text()
    assert "Not run" in _section(html, "lstm")
    assert "is in params.yaml train.models" in html
    assert "examples_per_emotion</code> is 0" in html


@pytest.fixture()
def small(tmp_path) -> dict[str, Any]:
    return fabricate(tmp_path, corpora=("ravdess",), models=("svm", "lstm_seed"),
                     protocols=("speaker",), clips=1)


def _build(fab: dict[str, Any]) -> Path:
    from ser.report import build_report

    return build_report(params=fab["params"], manifests_dir=fab["manifests"],
                        metrics_dir=fab["metrics"], models_dir=fab["models"],
                        out_dir=fab["reports"], project_dir=fab["root"])


def test_missing_metrics_file_is_named(small):
    missing = small["metrics"] / "speaker" / "mfcc" / "svm" / "metrics.json"
    missing.unlink()
    with pytest.raises(SerError, match="evaluate stage") as err:
        _build(small)
    assert str(missing) in str(err.value)
    assert not (small["reports"] / "report.html").exists()


def test_missing_card_and_history_name_the_train_stage(small):
    (small["models"] / "speaker" / "mfcc" / "lstm_seed" / "history.csv").unlink()
    with pytest.raises(SerError, match=r"history\.csv: not found.*train stage"):
        _build(small)


def test_missing_manifest_names_the_manifest_stage(small):
    (small["manifests"] / "ravdess.parquet").unlink()
    with pytest.raises(SerError, match=r"ravdess\.parquet: not found.*manifest stage"):
        _build(small)


def test_missing_audio_is_a_clear_error(small):
    for wav in (small["root"] / "audio" / "ravdess").glob("*.wav"):
        wav.unlink()
    with pytest.raises(SerError, match="no audio of corpus ravdess"):
        _build(small)
    assert not (small["reports"] / "report.html").exists()


def test_failure_while_building_leaves_no_report(small, monkeypatch):
    from ser.report import build

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(build.figures, "confusion_grid", broken)
    with pytest.raises(RuntimeError):
        _build(small)
    assert not (small["reports"] / "report.html").exists()
    assert not (small["reports"] / "report.md").exists()


def test_failure_while_writing_leaves_no_report_and_keeps_the_old_one(tmp_path):
    from ser.report.build import write_outputs

    with pytest.raises(TypeError):
        write_outputs(tmp_path, "<html></html>", None)  # the Markdown cannot be written
    assert list(tmp_path.iterdir()) == []
    old = '<html><meta name="generator" content="ser report stage">old</html>'
    (tmp_path / "report.html").write_text(old)  # an earlier report
    with pytest.raises(TypeError):
        write_outputs(tmp_path, "<html>new</html>", None)
    assert (tmp_path / "report.html").read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def _script():
    spec = importlib.util.spec_from_file_location("report_script", ROOT / "scripts" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reports_a_missing_input_in_one_line(small, tmp_path, capsys):
    import yaml

    from ser.cli import run_cli

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(small["params"]))
    (small["metrics"] / "speaker" / "mfcc" / "lstm_seed" / "details.json").unlink()
    argv = ["--params", str(params_file), "--out", str(small["reports"]),
            "--manifests", str(small["manifests"]), "--metrics", str(small["metrics"]),
            "--models", str(small["models"])]
    assert run_cli(_script().main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "details.json" in err and err.count("\n") == 1


def test_cli_help_names_every_option(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--help"])
    out = capsys.readouterr().out
    for option in ("--params", "--out", "--manifests", "--metrics", "--models"):
        assert option in out


def test_provenance_reads_no_dvc_lock(tmp_path):
    """dvc.lock is no input of the report rule, so the report must not depend on it."""
    from ser.report.provenance import collect

    manifest = tmp_path / "tess.parquet"
    manifest.write_bytes(b"manifest bytes")
    without = collect(tmp_path, {"tess": manifest}, {"a": 1})
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    with_lock = collect(tmp_path, {"tess": manifest}, {"a": 1})
    for facts in (without, with_lock):
        facts.pop("built")
    assert without == with_lock and "dvc" not in without
    assert without["manifests"][0]["sha256"] == hashlib.sha256(b"manifest bytes").hexdigest()


def test_git_revision_and_dirty_flag(tmp_path):
    from ser.report.provenance import git_revision

    assert git_revision(tmp_path)["commit"] is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    try:
        subprocess.run([*git, "init", "-q"], check=True)
    except (FileNotFoundError, subprocess.CalledProcessError):
        pytest.skip("git not available")
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    rev = git_revision(tmp_path)
    assert len(rev["commit"]) == 40 and rev["dirty"] is False
    (tmp_path / "a.txt").write_text("b")
    assert git_revision(tmp_path)["dirty"] is True


# --------------------------------------------------------------------------- issue 10 / 12


#: A made-up results file of benchmarks/real_data_bench.py (numbers no code computes).
REAL_RESULTS = {"runs": {
    "seed/none/svm": {"corpus": "ravdess", "protocol": "speaker_cv", "feature_set": "seed",
                      "speaker_norm": "none", "model": "svm", "pooled_uar": 0.3111,
                      "mean_speaker_uar": 0.3141, "sd_speaker_uar": 0.0592, "n_clips": 716,
                      "n_speakers": 12, "date": "2031-02-03"},
    "egemaps/none/logreg": {"corpus": "ravdess", "protocol": "speaker_cv",
                            "feature_set": "egemaps", "speaker_norm": "none",
                            "model": "logreg", "pooled_uar": 0.4777,
                            "mean_speaker_uar": 0.4871, "sd_speaker_uar": 0.0612,
                            "n_clips": 716, "n_speakers": 12, "date": "2031-02-03"},
    "egemaps/speaker/svm": {"corpus": "ravdess", "protocol": "speaker_cv",
                            "feature_set": "egemaps", "speaker_norm": "speaker",
                            "model": "svm", "pooled_uar": 0.6011,
                            "mean_speaker_uar": 0.6123, "sd_speaker_uar": 0.0934,
                            "n_clips": 716, "n_speakers": 12, "date": "2031-02-04"},
    "logmel64_seq/none/crnn": {"corpus": "ravdess", "protocol": "speaker_cv",
                               "feature_set": "logmel64_seq", "speaker_norm": "none",
                               "model": "crnn", "pooled_uar": 0.3666,
                               "mean_speaker_uar": 0.3677, "sd_speaker_uar": 0.0715,
                               "n_clips": 716, "n_speakers": 12, "date": "2031-02-01"},
    "logmel64_seq/speaker/crnn": {"corpus": "ravdess", "protocol": "speaker_cv",
                                  "feature_set": "logmel64_seq", "speaker_norm": "speaker",
                                  "model": "crnn", "pooled_uar": 0.4011,
                                  "mean_speaker_uar": 0.4023, "sd_speaker_uar": 0.0811,
                                  "n_clips": 716, "n_speakers": 12, "date": "2031-02-01"},
}}


@pytest.fixture(scope="module")
def grid_built(tmp_path_factory) -> dict[str, Any]:
    """Several feature sets (one a _spk twin), speaker_cv, a collapsed model, a results file."""
    from ser.report import build_report

    fab = fabricate(tmp_path_factory.mktemp("grid"), models=("svm", "knn"),
                    protocols=("random", "speaker", "speaker_cv"),
                    feature_sets=("mfcc", "egemaps", "egemaps_spk"), collapsed={"knn": "angry"})
    results = fab["root"] / "real_ravdess_speaker_cv.json"
    results.write_text(json.dumps(REAL_RESULTS))
    html_path = build_report(params=fab["params"], manifests_dir=fab["manifests"],
                             metrics_dir=fab["metrics"], models_dir=fab["models"],
                             out_dir=fab["reports"], project_dir=fab["root"],
                             real_results=results)
    fab["html"] = html_path.read_text()
    fab["md"] = (fab["reports"] / "report.md").read_text()
    return fab


def _grid_metrics(fab: dict[str, Any], protocol: str, fs: str, model: str) -> dict[str, Any]:
    return json.loads((fab["metrics"] / protocol / fs / model / "metrics.json").read_text())


def _rows(section: str) -> list[list[str]]:
    section = section.replace(' <span class="badge">best</span>', "")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", r,
                                                                   flags=re.S)] for r in rows]


def test_comparison_puts_plain_and_normalised_side_by_side(grid_built):
    section = _section(grid_built["html"], "comparison")
    table = section[:section.index('id="speaker-cv"')]
    rows = {(r[0], r[1], r[2]): r[3:] for r in _rows(table) if len(r) >= 5}
    for protocol, name in (("speaker", "Speaker-independent"),
                           ("speaker_cv", "Speaker cross-validation")):
        for model, display in (("svm", "SVM"), ("knn", "KNN")):
            plain = _grid_metrics(grid_built, protocol, "egemaps", model)
            spk = _grid_metrics(grid_built, protocol, "egemaps_spk", model)
            cells = rows[(name, "egemaps", display)]
            assert cells[0].startswith(f"{plain['uar']:.3f} [{plain['ci95']['uar'][0]:.3f}")
            assert "†" not in cells[0]
            assert cells[1].startswith(f"{spk['uar']:.3f} [") and cells[1].endswith("†")
            mfcc = _grid_metrics(grid_built, protocol, "mfcc", model)
            assert rows[(name, "mfcc", display)][0].startswith(f"{mfcc['uar']:.3f}")
            assert rows[(name, "mfcc", display)][1] == "–"  # no mfcc_spk set in params
    assert not any(k[0] == "Random split" for k in rows)  # not speaker-independent
    assert "Transductive." in section and "unlabeled test clips" in section
    assert section.count('src="data:image/png;base64,') == 1  # the dot plot
    assert "transductive" in grid_built["md"] and "egemaps" in grid_built["md"]


def test_speaker_cv_per_speaker_table(grid_built):
    section = _section(grid_built["html"], "comparison")
    block = section[section.index('id="speaker-cv"'):section.index('id="distribution"')]
    m = _grid_metrics(grid_built, "speaker_cv", "egemaps_spk", "svm")
    assert f"{m['uar_speaker_mean']:.3f} ± {m['uar_speaker_sd']:.3f}" in block
    details = json.loads((grid_built["metrics"] / "speaker_cv" / "egemaps_spk" / "svm"
                          / "details.json").read_text())
    assert "spk ravdess:01" in block and "spk tess:OAF" in block
    assert f"{details['per_speaker']['ravdess:02']['uar']:.3f}" in block


def test_facts_box_quotes_the_results_file(grid_built):
    html = _section(grid_built["html"], "results")
    box = html[html.index('id="real-data"'):]
    box = box[:box.index("</ul>")]
    for number in ("0.31", "0.49 ± 0.06", "0.61 ± 0.09", "0.37 ± 0.07"):
        assert number in box
    assert "2031-02-01 to 2031-02-04" in box and "transductive" in box
    assert "No real-data measurement" not in grid_built["html"]
    assert "0.61 ± 0.09" in grid_built["md"]


def test_facts_box_without_a_results_file(tmp_path):
    from ser.report.comparison import real_data_facts

    assert real_data_facts(None) == {"available": False, "file": ""}
    assert real_data_facts(tmp_path / "absent.json")["available"] is False
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(SerError, match="bad.json"):
        real_data_facts(bad)


def test_collapsed_model_is_flagged_and_a_balanced_one_is_not(grid_built):
    section = _section(grid_built["html"], "comparison")
    block = section[section.index('id="distribution"'):]
    assert "Collapsed predictions." in block
    rows = [r for r in _rows(block) if len(r) > 3]
    knn = [r for r in rows if r[2] == "KNN"]
    svm = [r for r in rows if r[2] == "SVM"]
    assert knn and all(r[-1].startswith("⚠ collapsed: angry takes 100%") for r in knn)
    assert svm and all(r[-1] == "ok" for r in svm)
    assert "KNN (egemaps_spk †, speaker cross-validation): angry takes 100%" in block


def test_collapse_rule():
    from ser.report.comparison import collapse

    assert collapse({"a": 10, "b": 10, "c": 10, "d": 10}) is None
    assert collapse({"a": 17, "b": 1, "c": 1, "d": 1}) == "a takes 85% of the predictions"
    assert collapse({"a": 9, "b": 8, "c": 2, "d": 1}).startswith("a and b take 85%")
    assert collapse({"a": 9, "b": 8, "c": 3}) is None  # two of three classes: not a collapse
    assert collapse({}) is None


def test_each_model_reports_on_the_first_feature_set_it_can_read(tmp_path):
    """crnn reads only logmel, svm only summary sets: both appear, each on its own set."""
    from ser.report import build_report
    from ser.report.inputs import load_inputs

    fab = fabricate(tmp_path, models=("svm", "crnn"), protocols=("speaker",),
                    feature_sets=("mfcc", "logmel"))
    inputs = load_inputs(fab["params"], manifests_dir=fab["manifests"],
                           metrics_dir=fab["metrics"], models_dir=fab["models"])
    assert inputs.runs[("speaker", "svm")].feature_set == "mfcc"
    assert inputs.runs[("speaker", "crnn")].feature_set == "logmel"
    assert ("speaker", "logmel", "svm") not in inputs.grid
    assert ("speaker", "mfcc", "crnn") not in inputs.grid
    html = build_report(params=fab["params"], manifests_dir=fab["manifests"],
                        metrics_dir=fab["metrics"], models_dir=fab["models"],
                        out_dir=fab["reports"], project_dir=fab["root"]).read_text()
    assert "CRNN" in html or "crnn" in html


def test_headline_is_the_best_run_over_every_feature_set_and_names_it(grid_built):
    """The summary card of each protocol is its best run across feature sets and models,
    names the feature set, marks a transductive run and then gives the best plain one."""
    runs = {(p, fs, m): _grid_metrics(grid_built, p, fs, m)["uar"]
            for p in ("random", "speaker", "speaker_cv")
            for fs in ("mfcc", "egemaps", "egemaps_spk") for m in ("svm", "knn")}
    header = grid_built["html"][:grid_built["html"].index('id="corpora"')]
    cards = re.findall(r'<div class="kpi">(.*?)</div></div>', header, flags=re.S)
    assert len(cards) == 3
    names = {"svm": "SVM", "knn": "KNN"}
    for protocol, card in zip(("random", "speaker", "speaker_cv"), cards, strict=True):
        (_, fs, model), uar = max(((k, v) for k, v in runs.items() if k[0] == protocol),
                                  key=lambda kv: kv[1])
        text = re.sub(r"<[^>]+>", " ", card)
        assert f"{uar:.3f}" in text and f"{names[model]} on {fs}" in text, text
        assert ("†" in text) == fs.endswith("_spk")
        if fs.endswith("_spk"):
            (_, pfs, pmodel), puar = max(((k, v) for k, v in runs.items()
                                          if k[0] == protocol and not k[1].endswith("_spk")),
                                         key=lambda kv: kv[1])
            assert f"best plain: {puar:.3f} ({names[pmodel]} on {pfs})" in text
    assert "over every feature set and model" in grid_built["md"]


def test_every_per_model_table_names_its_feature_set(grid_built):
    results = _section(grid_built["html"], "results")
    assert "on feature set mfcc (the first listed in train.feature_sets)" in results
    table = results[:results.index('id="seed"')]
    rows = [r for r in _rows(table) if len(r) > 5]
    assert rows and all(r[1] == "mfcc" for r in rows)  # the "Features" column
    for anchor in ("confusion", "search"):
        assert "on feature set mfcc" in _section(grid_built["html"], anchor)
    assert "| Features |" in grid_built["md"]


def test_real_data_sequence_line_separates_plain_and_transductive(grid_built):
    html = _section(grid_built["html"], "results")
    box = html[html.index('id="real-data"'):]
    box = box[:box.index("</ul>")]
    assert "best sequence model without speaker normalisation: 0.37 ± 0.07" in box
    assert "best sequence model with speaker normalisation († transductive): 0.40 ± 0.08" \
        in box


def test_seed_table_lists_the_seed_lstm_once(built):
    seed = _section(built["html"], "results")
    seed = seed[seed.index('id="seed"'):seed.index('class="callout info"')]
    rows = _rows(seed)
    lstm = [r for r in rows if r and ("LSTM" in r[0] or r[0] == "lstm")]
    assert len(lstm) == 1 and lstm[0][2] == "0.96" and "not run" not in lstm[0], rows


def test_label_mapping_unused_clips_and_clip_differences_are_shown(tmp_path):
    """The report shows what `labels:` did, counts clips after it, lists the clips left
    unused with their reasons, and says how many clips the feature sets disagree on."""
    from ser.report import build_report

    fab = fabricate(tmp_path, models=("svm",), protocols=("speaker",),
                    feature_sets=("mfcc", "egemaps"))
    fab["params"]["labels"] = {"preset": None, "merge": {"calm": "neutral"},
                               "drop": ["surprised"], "keep": None}
    (fab["manifests"] / "ravdess_rejected.csv").write_text(
        "path,reason\nnotes.wav,not a RAVDESS file name\nx.wav,not a RAVDESS file name\n")
    (fab["manifests"] / "tess_rejected.csv").write_text("path,reason\n")
    features = tmp_path / "features"
    quiet = sorted(str(p) for p in (tmp_path / "audio" / "tess").glob("*.wav"))[:3]
    for fs, skipped in (("mfcc", quiet), ("egemaps", quiet[:1])):
        for corpus in ("tess", "ravdess"):
            folder = features / fs / corpus
            folder.mkdir(parents=True)
            # The stage's own wording: each clip's level in the reason.
            lines = [f'{p},"silent or near-silent clip (level -6{i}.4 dBFS, below '
                     f'mfcc.min_rms_db -60); skipped"'
                     for i, p in enumerate(skipped) if corpus == "tess"]
            (folder / "skipped.csv").write_text("\n".join(["path,reason", *lines]) + "\n")
    html = build_report(params=fab["params"], manifests_dir=fab["manifests"],
                        metrics_dir=fab["metrics"], models_dir=fab["models"],
                        out_dir=fab["reports"], project_dir=fab["root"],
                        features_dir=features).read_text()
    corpora = _section(html, "corpora")
    # Clip counts after the mapping: no calm or surprised column, calm counted as neutral.
    counts = corpora[:corpora.index('id="labels"')]
    header = re.findall(r"<th>(.*?)</th>", counts)
    assert "calm" not in header and "surprised" not in header and "neutral" in header
    rows = {r[0]: r for r in _rows(counts) if r}
    neutral = header.index("neutral")
    assert rows["RAVDESS"][neutral] == str(3 * 2 * 2)  # 3 speakers x 2 clips, neutral + calm
    assert rows["RAVDESS"][-1] == str(3 * 2) and rows["TESS"][-1] == str(2 * 2)  # surprised
    mapping = corpora[corpora.index('id="labels"'):corpora.index('id="unused"')]
    assert "merged calm -&gt; neutral" in mapping and "dropped surprised" in mapping
    table = {r[0]: r for r in _rows(mapping) if r}
    assert table["calm"][2:] == ["neutral", "labels.merge: calm → neutral"]
    assert table["surprised"][1:] == ["10", "left out", "labels.drop lists surprised"]
    assert table["happy"][2:] == ["happy", "kept as is"]
    unused = corpora[corpora.index('id="unused"'):corpora.index("<h3>Speakers")]
    rows = {r[0]: r for r in _rows(unused) if r}
    assert rows["RAVDESS"][1] == "2 (2: not a RAVDESS file name)"
    assert rows["RAVDESS"][2] == "6 (surprised 6)" and rows["TESS"][1] == "0"
    assert rows["TESS"][3:] == ["3 (3: silent or near-silent clip)",
                                "1 (1: silent or near-silent clip)"]
    assert "Feature sets compared on different clips." in unused
    assert "differ by 2 clip(s): TESS: 2 clip(s) (mfcc skipped 2, egemaps skipped 0)" in unused
    assert "differ by 2 skipped clip(s)" in _section(html, "comparison")
    md = (fab["reports"] / "report.md").read_text()
    assert "merged calm -> neutral" in md and "**Feature sets compared on different clips**" in md


def test_literature_figures_name_their_source_and_stand_apart(built):
    """Human rates are quoted with their paper and year (no file outside the repository is
    cited), and the report says they come from the literature, not from this project."""
    from ser.report import facts

    assert "corpora.md" not in Path(facts.__file__).read_text()
    for corpus, (rate, source) in facts.HUMAN_RECOGNITION.items():
        assert 0 < rate < 1 and re.search(r"[A-Z][a-z]+.* (19|20)\d\d$", source), corpus
    corpora = _section(built["html"], "corpora")
    assert "quoted from the literature (not measured by this project)" in corpora
    assert "Livingstone &amp; Russo 2018" in corpora
