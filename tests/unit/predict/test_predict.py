"""predict.py and `ser evaluate`: happy paths on demo and real clips, and every error path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.cli.predict import main as predict_main

ROOT = Path(__file__).resolve().parents[3]


def predict(capsys, *args: str) -> tuple[int, str, str]:
    rc = predict_main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def svm(demo_project) -> str:
    return str(demo_project / "models" / "speaker" / "mfcc" / "svm")


def demo_clip(demo_project) -> Path:
    return next((demo_project / "data" / "demo" / "ravdess").rglob("*.wav"))


@pytest.mark.parametrize("model", ["svm", "knn", "random_forest", "decision_tree", "lstm_seed"])
def test_every_model_predicts_a_demo_clip(demo_project, capsys, model):
    rc, out, _ = predict(capsys, "--file", str(demo_clip(demo_project)), "--json",
                         "--model", str(demo_project / "models" / "speaker" / "mfcc" / model))
    result = json.loads(out)
    assert rc == 0
    card = json.loads((demo_project / "models" / "speaker" / "mfcc" / model / "card.json")
                      .read_text())
    assert result["emotion"] in card["labels"]
    assert len(result["probabilities"]) == 3
    assert max(result["probabilities"].values()) == result["probabilities"][result["emotion"]]
    # The demo models are synthetic-only: --json readers get predict's warning too.
    assert any("synthetic demo data only" in w for w in result["warnings"])


def test_real_file_any_rate_and_channels(shared_data, svm, capsys, tmp_path):
    real = sorted((shared_data / "ravdess" / "Actor_02").glob("*.wav"))[0]
    y, sr = sf.read(real)
    stereo = tmp_path / "stereo_22k.flac"
    import librosa

    y22 = librosa.resample(y, orig_sr=sr, target_sr=22050)
    sf.write(stereo, np.stack([y22, y22], axis=1), 22050)
    rc, out, _ = predict(capsys, "--file", str(real), "--file", str(stereo), "--json",
                         "--model", svm)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(rows) == 2
    # Same audio at another rate and layout gives nearly the same probabilities.
    a, b = rows[0]["probabilities"], rows[1]["probabilities"]
    assert rows[0]["emotion"] == rows[1]["emotion"] or abs(sum(a.values()) - sum(b.values())) < 1


def test_text_output_and_folder(demo_project, svm, capsys):
    folder = demo_project / "data" / "demo" / "savee"
    rc, out, _ = predict(capsys, "--file", str(folder), "--model", svm, "--top-k", "1")
    header, *lines = out.strip().splitlines()
    assert header == f"model: {svm} (svm, speaker-independent, mfcc features)"
    assert rc == 0 and len(lines) == len(list(folder.rglob("*.wav")))
    assert all(": " in line and line.split(": ")[1].split()[0].isupper() for line in lines)


def test_default_model_is_best_speaker_uar(demo_project, monkeypatch, capsys):
    monkeypatch.chdir(demo_project)
    uars = {p.parent.name: json.loads(p.read_text())["uar"]
            for p in (demo_project / "metrics" / "speaker" / "mfcc").glob("*/metrics.json")}
    rc, out, _ = predict(capsys, "--file", str(demo_clip(demo_project)), "--json")
    assert rc == 0
    assert json.loads(out)["model"] == f"models/speaker/mfcc/{max(uars, key=uars.get)}"


def test_bad_files_give_one_line_each_and_good_ones_still_run(demo_project, svm, capsys,
                                                              tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    good = demo_clip(demo_project)
    rc, out, err = predict(capsys, "--file", str(corrupt), "--file", str(empty), "--file",
                           str(text), "--file", str(tmp_path / "missing.wav"), "--file",
                           str(good), "--model", svm)
    assert rc == 1
    assert str(good) in out
    # The demo model is synthetic-only: one warning line, then the four errors.
    warning, *errors = err.strip().splitlines()
    assert warning.startswith("warning: ") and "synthetic demo data only" in warning
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    for name in ("corrupt.wav", "empty.wav", "notes.wav", "missing.wav"):
        assert any(name in line for line in errors)
    assert "Traceback" not in err


def test_only_bad_files_exit_2(svm, capsys, tmp_path):
    rc, _, err = predict(capsys, "--file", str(tmp_path / "nope.wav"), "--model", svm)
    assert rc == 2 and "file not found" in err


def test_missing_and_unfinished_model_folders(demo_project, capsys, tmp_path):
    clip = str(demo_clip(demo_project))
    rc, _, err = predict(capsys, "--file", clip, "--model", str(tmp_path / "nothing"))
    assert rc == 2 and "model folder not found" in err
    (tmp_path / "half").mkdir()
    rc, _, err = predict(capsys, "--file", clip, "--model", str(tmp_path / "half"))
    assert rc == 2 and "not a trained model folder" in err


@pytest.mark.parametrize("model", ["svm", "lstm_seed"])
def test_model_with_other_feature_params_is_refused(demo_project, capsys, tmp_path, model):
    tampered = tmp_path / model
    shutil.copytree(demo_project / "models" / "speaker" / "mfcc" / model, tampered)
    card = json.loads((tampered / "card.json").read_text())
    card["feature_params"]["n_mfcc"] = 20
    card["feature_params"]["n_coeffs"] = 20
    (tampered / "card.json").write_text(json.dumps(card))
    rc, _, err = predict(capsys, "--file", str(demo_clip(demo_project)), "--model", str(tampered))
    assert rc == 2 and "card.json: checksum differs" in err and err.count("\n") == 1
    from ser.models.store import write_checksums

    write_checksums(tampered)  # a self-consistent folder: the card check itself must catch it
    rc, _, err = predict(capsys, "--file", str(demo_clip(demo_project)), "--model", str(tampered))
    assert rc == 2 and "trained on" in err and err.count("\n") == 1


def test_cli_help_and_one_line_error_as_a_process(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "--transcribe" in proc.stdout and "--top-k" in proc.stdout
    proc = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--file", "x.wav",
                           "--model", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_speak_to_writes_the_answer(demo_project, svm, capsys, tmp_path):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    answer = tmp_path / "answer.wav"
    rc, out, _ = predict(capsys, "--file", str(demo_clip(demo_project)), "--model", svm,
                         "--speak-to", str(answer))
    y, _ = sf.read(answer)
    assert rc == 0 and len(y) > 1000 and np.sqrt(np.mean(y**2)) > 0.01


def test_ser_evaluate_on_real_folder(shared_data, svm, tmp_path):
    from ser.cli import main as ser_main

    out = tmp_path / "eval"
    rc = ser_main(["evaluate", "--model", svm, "--corpus", "ravdess", "--root",
                   str(shared_data / "ravdess"), "--out", str(out), "--bootstrap", "50"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"] == "external:ravdess" and m["n_test"] == 716
    assert {"accuracy", "uar", "f1_macro", "ci95"} <= set(m)
    details = json.loads((out / "details.json").read_text())
    assert sum(row["support"] for row in details["per_class"].values()) == 716


def test_prefetched_features_are_the_ones_the_model_would_extract(demo_project, svm):
    """predict.py extracts features in a forked process while the model loads; they must be
    exactly what the verified model extracts itself, and unused when its card differs.
    Run in a fresh process, as predict.py forks (before JAX or other threads exist)."""
    import subprocess
    import sys

    clips = sorted((demo_project / "data" / "demo" / "ravdess").rglob("*.wav"))[:3]
    script = """
import json, sys
import numpy as np
from ser.predict.inference import FeaturePrefetch, Predictor
svm, missing, *clips = sys.argv[1:]
files = [*clips, missing]
prefetch = FeaturePrefetch(svm, files)
forked = prefetch._future is not None
predictor = Predictor.load(svm)
ok, seqs, summaries, failures = prefetch.result(predictor.card)
ok2, seqs2, summaries2, failures2 = predictor.features_for_files(files)
changed = json.loads(json.dumps(predictor.card))
changed["feature_params"]["n_mfcc"] = 13
print(json.dumps({
    "forked": forked, "same_ok": ok == ok2, "failures": len(failures),
    "same_failures": failures == failures2,
    "same_summaries": bool(np.array_equal(summaries, summaries2)),
    "same_seqs": all(np.array_equal(a, b) for a, b in zip(seqs, seqs2, strict=True)),
    "other_card": FeaturePrefetch(svm, clips).result(changed) is None,
    "no_model": FeaturePrefetch(missing, clips).result(predictor.card) is None,
    "jax_threads": __import__("ser.predict.inference").predict.inference._threaded() is False}))
"""
    out = subprocess.run([sys.executable, "-c", script, svm, str(demo_project / "missing.wav"),
                          *map(str, clips)], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"forked": True, "same_ok": True, "failures": 1, "same_failures": True,
                      "same_summaries": True, "same_seqs": True, "other_card": True,
                      "no_model": True, "jax_threads": True}


def test_no_prefetch_fork_once_jax_runs_threads(svm, monkeypatch):
    from ser.predict.inference import FeaturePrefetch

    monkeypatch.setitem(sys.modules, "jax", sys.modules.get("jax") or object())
    assert FeaturePrefetch(svm, [])._future is None
