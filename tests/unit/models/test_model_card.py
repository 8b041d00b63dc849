"""Model cards: base_card -> save -> load round trip, card.md, the synthetic-data and
library-version warnings, evaluate's model_card.md, and predict.py's use of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.cli.predict import main as predict_main
from ser.cli.predict import spoken_answer
from ser.models.store import (
    CARD,
    CARD_MD,
    CHECKSUMS,
    library_versions,
    load_model,
    read_card,
    render_card_markdown,
    validate_card,
    version_mismatches,
    write_checksums,
)

ROOT = Path(__file__).resolve().parents[3]
FEATURES = {"sample_rate": 16000, "n_mfcc": 20, "n_fft": 512, "hop_length": 160, "n_mels": 40,
            "fmin": 0.0}


def _protocol_data(root: Path, corpus: str, features_dir: Path, *, speakers=None):
    """A ProtocolData over the clips of a corpus folder (speakers 01-02 train, the rest test)."""
    from ser.corpora import parse_corpus
    from ser.features.mfcc import feature_params_fingerprint, features_from_file, summary_names
    from ser.splits.protocol_data import ProtocolData

    fp = feature_params_fingerprint(FEATURES)
    rows = parse_corpus(corpus, root).to_frame()
    if speakers:
        rows = rows[rows["speaker"].isin(speakers)].reset_index(drop=True)
    X = np.vstack([features_from_file(p, params=fp)[1] for p in rows["path"]])
    table = rows[["path", "corpus", "speaker", "gender", "emotion"]].copy()
    table["split"] = np.where(table["speaker"].isin(["01", "02"]), "train", "test")
    feats = pd.DataFrame(X, columns=summary_names(fp["n_coeffs"]))
    table = pd.concat([table, feats], axis=1)
    (features_dir / corpus).mkdir(parents=True)
    table.to_parquet(features_dir / corpus / "summary.parquet")
    return ProtocolData(table, fp, features_dir, "mfcc", [corpus])


def _train_and_save(data, out: Path) -> dict:
    from ser.features import feature_columns
    from ser.models.classical import make_pipeline
    from ser.models.store import save_model
    from ser.models.training import base_card

    train = data.train
    columns = feature_columns(train)
    pipe = make_pipeline("svm", seed=0).fit(train[columns].to_numpy(np.float64),
                                            train["emotion"].to_numpy())
    card = base_card("svm", "speaker", data, [str(c) for c in pipe.classes_], "skops", seed=0)
    card |= {"feature_columns": columns, "cv_best_score": 0.5, "scoring": "f1_macro",
             "cv": "GroupKFold", "cv_folds": 2, "best_params": {"C": 1.0}}
    save_model(out, pipe, card)
    return card


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    """An SVM trained on a tiny generated RAVDESS corpus (outside any data/demo folder)."""
    from ser.corpora.demo import generate_corpus

    base = tmp_path_factory.mktemp("card")
    generate_corpus("ravdess", base / "corpus" / "ravdess", preset="tiny", seed=1)
    data = _protocol_data(base / "corpus" / "ravdess", "ravdess", base / "features")
    _train_and_save(data, base / "models" / "svm")
    return base / "models" / "svm"


@pytest.fixture(scope="module")
def real_model(shared_data, tmp_path_factory) -> Path:
    """An SVM trained on real RAVDESS clips (two actors, read in place)."""
    base = tmp_path_factory.mktemp("real")
    data = _protocol_data(shared_data / "ravdess", "ravdess", base / "features",
                          speakers=["01", "02", "03"])
    _train_and_save(data, base / "models" / "svm")
    return base / "models" / "svm"


def _rewrite_card(model_dir: Path, **changes) -> None:
    """Edit card.json and re-sign the folder with the store's own manifest writer."""
    card = json.loads((model_dir / CARD).read_text())
    card.update(changes)
    (model_dir / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    write_checksums(model_dir)


def test_card_round_trip(demo_model):
    model, card = load_model(demo_model)
    validate_card(card)
    assert card["labels"] == [str(c) for c in model.classes_]
    assert card["sample_rate"] == 16000 and card["feature_set"] == "mfcc"
    assert card["protocol"] == "speaker" and card["model"] == "svm"
    [corpus] = card["training_corpora"]
    # The generator's marker file makes the corpus synthetic, wherever it lives.
    assert corpus["name"] == "ravdess" and corpus["synthetic"] is True
    assert corpus["n_train"] == card["n_train"] > 0
    versions = card["data_versions"]
    assert len(versions["split_table"]) == 64
    assert list(versions["features"]) == [
        (demo_model.parents[1] / "features" / "ravdess" / "summary.parquet").as_posix()]
    libs = card["library_versions"]
    assert set(libs) >= {"python", "numpy", "scikit-learn", "keras", "jax", "librosa",
                         "soundfile", "ser"}
    assert libs == library_versions()
    # card.md is written at save time and covered by the checksum manifest.
    assert CARD_MD in (demo_model / CHECKSUMS).read_text()
    md = (demo_model / CARD_MD).read_text()
    assert md.startswith("# Model card: svm, speaker-independent, mfcc features")
    assert ", ".join(card["labels"]) in md
    assert "synthetic demo data only" in md and "scikit-learn" in md
    assert "f1_macro: 0.500" in md


def test_card_schema_rejects_a_wrong_synthetic_flag(demo_model, tmp_path):
    import shutil

    from ser.errors import SerError

    copy = tmp_path / "svm"
    shutil.copytree(demo_model, copy)
    _rewrite_card(copy, training_corpora=[{"name": "ravdess", "synthetic": "yes"}])
    with pytest.raises(SerError, match="training_corpora"):
        read_card(copy)


def test_an_edited_card_md_is_refused(demo_model, tmp_path):
    import shutil

    from ser.errors import SerError

    copy = tmp_path / "svm"
    shutil.copytree(demo_model, copy)
    (copy / CARD_MD).write_text("# a better model\n")
    with pytest.raises(SerError, match="card.md: checksum differs"):
        read_card(copy)


def test_real_corpus_is_not_synthetic(real_model):
    card = read_card(real_model)
    assert [c["synthetic"] for c in card["training_corpora"]] == [False]
    assert "synthetic demo data only" not in (real_model / CARD_MD).read_text()


def test_version_mismatches_compare_major_minor():
    card = {"library_versions": {"scikit-learn": "1.2.0", "numpy": "2.1.3", "keras": "3.5.0"}}
    installed = {"scikit-learn": "1.2.9", "numpy": "1.26.4", "keras": None}
    assert version_mismatches(card, installed) == ["numpy trained 2.1.3, installed 1.26.4"]
    assert version_mismatches({}, installed) == []


def predict(capsys, *args: str) -> tuple[int, str, str]:
    rc = predict_main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _clip(model_dir: Path) -> Path:
    return next((model_dir.parents[1] / "corpus" / "ravdess").rglob("*.wav"))


def test_predict_names_the_model_and_warns_on_synthetic(demo_model, capsys):
    rc, out, err = predict(capsys, "--file", str(_clip(demo_model)), "--model",
                           str(demo_model), "--top-k", "1")
    assert rc == 0
    first, answer = out.splitlines()
    assert first.startswith("model: ") and str(demo_model) in first
    assert "(svm, speaker-independent, mfcc features)" in first
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "synthetic demo data only (ravdess)" in warnings[0]
    assert answer.split(": ")[1].split()[0].isupper()


def test_predict_warns_on_library_versions(demo_model, tmp_path, capsys):
    import shutil

    copy = tmp_path / "svm"
    shutil.copytree(demo_model, copy)
    libs = library_versions() | {"scikit-learn": "0.1.0", "numpy": "0.9.0"}
    _rewrite_card(copy, library_versions=libs)
    rc, out, err = predict(capsys, "--file", str(_clip(demo_model)), "--model", str(copy))
    assert rc == 0
    [warning] = [line for line in err.splitlines() if "library versions" in line]
    assert warning.startswith("warning: ")
    assert f"scikit-learn trained 0.1.0, installed {library_versions()['scikit-learn']}" in warning
    assert "numpy trained 0.9.0" in warning


def test_real_model_gives_no_warning(real_model, shared_data, capsys):
    clip = sorted((shared_data / "ravdess" / "Actor_05").glob("*.wav"))[0]
    rc, out, err = predict(capsys, "--file", str(clip), "--model", str(real_model))
    assert rc == 0 and "warning:" not in err
    assert out.startswith(f"model: {real_model} (svm, speaker-independent, mfcc features)\n")


def test_speak_to_says_the_answer_not_the_file(demo_model, capsys, monkeypatch, tmp_path):
    import ser.predict.speech

    said = []
    monkeypatch.setattr(ser.predict.speech, "speak", lambda text, to_file=None: said.append(text))
    clip = _clip(demo_model)
    rc, out, _ = predict(capsys, "--file", str(clip), "--model", str(demo_model), "--json",
                         "--speak-to", str(tmp_path / "a.wav"))
    result = json.loads(out)
    assert rc == 0
    p = round(100 * result["probabilities"][result["emotion"]])
    assert said == [f"{result['emotion']}, {p} percent"]
    assert clip.stem not in said[0]


def test_spoken_answer_of_several_files():
    answers = [{"file": "a.wav", "emotion": "sad", "probabilities": {"sad": 0.5}},
               {"file": "b.wav", "emotion": "angry", "probabilities": {"angry": 0.724}}]
    assert spoken_answer(answers) == "file 1: sad, 50 percent. file 2: angry, 72 percent."


def test_predict_segments_writes_a_timeline(demo_model, capsys, tmp_path):
    clips = sorted((demo_model.parents[1] / "corpus" / "ravdess").rglob("*.wav"))[:4]
    parts, sr = [], None
    for clip in clips:
        y, sr = sf.read(clip)
        parts += [np.zeros(int(0.6 * sr)), y]
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate(parts + [np.zeros(int(0.6 * sr))]), sr)
    out = tmp_path / "timeline"
    rc, stdout, _ = predict(capsys, "--file", str(long), "--model", str(demo_model),
                            "--segments", "--out", str(out))
    assert rc == 0 and f"-> {out}" in stdout
    frame = pd.read_csv(out / "timeline.csv")
    assert len(frame) >= 2 and set(frame["emotion"]) <= set(read_card(demo_model)["labels"])
    assert (out / "timeline.png").stat().st_size > 1000
    assert json.loads((out / "timeline.json").read_text())["model"] == str(demo_model)


def test_classical_predict_does_not_import_keras(demo_model):
    code = ("import sys; from ser.cli.predict import main; rc = main(sys.argv[1:]); "
            "heavy = sorted(m for m in ('keras', 'jax', 'matplotlib', 'tensorflow') "
            "if m in sys.modules); print('HEAVY', heavy); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, "--file", str(_clip(demo_model)),
                          "--model", str(demo_model)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "HEAVY []" in run.stdout


def test_evaluate_writes_model_card_with_test_cis(demo_model, tmp_path):
    from ser.evaluation.metrics import write_model_card

    card = read_card(demo_model)
    metrics = {"uar": 0.42, "accuracy": 0.5, "f1_macro": 0.4, "n_test": 20,
               "ci95": {"uar": [0.3, 0.55], "accuracy": [0.35, 0.6]}}
    before = (demo_model / CHECKSUMS).read_text()
    out = write_model_card(tmp_path / "metrics", card, metrics, model_dir=demo_model)
    md = out.read_text()
    assert "uar: 0.420 [0.300, 0.550]" in md and "accuracy: 0.500 [0.350, 0.600]" in md
    assert (out.parent / Path(md.split("](")[1].split(")")[0])).resolve() == demo_model.resolve()
    assert (demo_model / CHECKSUMS).read_text() == before  # the model folder is untouched
    assert md == render_card_markdown(card, test_metrics=metrics,
                                      model_link=md.split("](")[1].split(")")[0])
