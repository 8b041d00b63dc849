"""The byols feature set: safe checkpoint reading, shipped weights, numerics, inference."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, build_demo_project

from ser.cli.byols import main as byols_main
from ser.errors import SerError
from ser.features import byols as B
from ser.features import byols_weights
from ser.features.torch_checkpoint import CheckpointError, read_state_dict

SHARED = ROOT.parent / "shared"
ORIGINAL = SHARED / "models" / "byols" / B.ORIGINAL_FILE
FIXTURE = ROOT / "tests" / "data" / "byols_reference.npz"
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


def _torch_zip(path: Path, pickle_bytes: bytes, storages: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        for key, raw in (storages or {}).items():
            z.writestr(f"archive/data/{key}", raw)
        z.writestr("archive/version", "3\n")
    return path


# --------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"),
                                         ("posix", "system"), ("torch", "load")])
def test_crafted_pickle_that_would_run_code_is_refused(tmp_path, module, name):
    # GLOBAL module.name, the argument 'touch PWNED', REDUCE: a call when unpickled.
    marker = tmp_path / "PWNED"
    payload = (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
               + b"X" + len(f"touch {marker}").to_bytes(4, "little")
               + f"touch {marker}".encode() + b"\x85R.")
    pth = _torch_zip(tmp_path / "evil.pth", payload)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(pth)
    msg = _one_line(info.value)
    assert f"{module}.{name}" in msg and "refused" in msg and str(pth) in msg
    assert not marker.exists()


def test_converter_cli_refuses_a_crafted_pickle_in_one_line(tmp_path, capsys):
    payload = b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R."
    pth = _torch_zip(tmp_path / "evil.pth", payload)
    code = byols_main(["convert", str(pth), "--sha256", "none", "--out", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "os.system" in err
    assert not (tmp_path / "w.npz").exists()


def test_reader_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys; from ser.features.torch_checkpoint import read_state_dict; "
            f"read_state_dict({str(ORIGINAL)!r}) if __import__('pathlib').Path("
            f"{str(ORIGINAL)!r}).exists() else None; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.fixture()
def original():
    if not ORIGINAL.is_file():
        pytest.skip(f"{ORIGINAL} not found (the shared BYOL-S checkpoint)")
    return ORIGINAL


def test_converter_reproduces_the_shipped_arrays(original, tmp_path):
    meta = B.convert_checkpoint(original, tmp_path / "w.npz")
    arrays, digest = B.load_weights(tmp_path / "w.npz")
    shipped, shipped_digest = B.load_weights(None)
    assert digest == shipped_digest == meta["arrays_sha256"]
    assert meta["source_sha256"] == B.ORIGINAL_SHA256
    assert meta["source_commit"] == B.ORIGINAL_COMMIT
    # a .pth given directly as byols.weights is read the same way (no torch)
    assert B.load_weights(original)[1] == shipped_digest


def test_converter_checks_the_source_sha256(original, tmp_path):
    with pytest.raises(CheckpointError) as info:
        B.convert_checkpoint(original, tmp_path / "w.npz", expected_sha256="0" * 64)
    assert "sha256" in _one_line(info.value) and not (tmp_path / "w.npz").exists()


def test_shipped_weights_are_package_data_with_licence_and_checksum():
    folder = B.weights_dir()
    assert (folder / B.SHIPPED_WEIGHTS).is_file()
    licence = (folder / "BYOLS_LICENSE.txt").read_text()
    assert "MIT" in licence or "Permission is hereby granted" in licence
    from ser.outputs import sha256_file

    assert sha256_file(folder / B.SHIPPED_WEIGHTS) == B.SHIPPED_SHA256
    with np.load(folder / B.SHIPPED_WEIGHTS, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    assert meta["source_commit"] == B.ORIGINAL_COMMIT
    assert "features/weights/*" in (ROOT / "pyproject.toml").read_text()


def test_damaged_weights_fail_their_checksum(tmp_path, monkeypatch):
    arrays, _ = B.load_weights(None)
    meta = {"arrays_sha256": B.arrays_sha256(arrays)}
    arrays["fc.0.bias"] = arrays["fc.0.bias"] + np.float32(1e-3)
    np.savez(tmp_path / "w.npz", meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(CheckpointError) as info:
        B.load_weights(tmp_path / "w.npz")
    assert "checksum mismatch" in _one_line(info.value)
    # the shipped file is also checked against its own sha256
    shipped = tmp_path / "pkg"
    shipped.mkdir()
    (shipped / B.SHIPPED_WEIGHTS).write_bytes(
        (B.weights_dir() / B.SHIPPED_WEIGHTS).read_bytes() + b"\0")
    monkeypatch.setattr(byols_weights, "weights_dir", lambda: shipped)
    with pytest.raises(CheckpointError) as info:
        B.load_weights(None)
    assert "reinstall" in _one_line(info.value)


def test_mismatched_checkpoint_is_one_line(tmp_path):
    arrays, _ = B.load_weights(None)
    wrong = dict(arrays, **{"fc.0.weight": np.zeros((256, 512), np.float32)})
    np.savez(tmp_path / "shape.npz", **wrong)
    with pytest.raises(CheckpointError) as info:
        B.load_weights(tmp_path / "shape.npz")
    assert "fc.0.weight has shape (256, 512)" in _one_line(info.value)
    missing = {k: v for k, v in arrays.items() if not k.startswith("features.8")}
    np.savez(tmp_path / "keys.npz", **missing)
    with pytest.raises(CheckpointError) as info:
        B.load_weights(tmp_path / "keys.npz")
    assert "missing features.8" in _one_line(info.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError) as info:
        B.load_weights(tmp_path / "junk.npz")
    _one_line(info.value)
    with pytest.raises(SerError) as info:
        B.load_weights(tmp_path / "nothing.npz")
    assert "byols.weights" in _one_line(info.value)


def test_truncated_storage_is_one_line(original, tmp_path):
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(tmp_path / "cut.pth", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:16] if info.filename == "archive/data/14"
                         else data)
    with pytest.raises(CheckpointError) as info:
        read_state_dict(tmp_path / "cut.pth")
    _one_line(info.value)


# --------------------------------------------------------------------------- numerics

def test_front_end_matches_librosa_with_the_original_parameters():
    import librosa

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    ours = B.byols_logmel(y)
    mel = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=1024, win_length=400, hop_length=160, window="hann",
        center=True, pad_mode="reflect", power=2.0, n_mels=64, fmin=60, fmax=7800,
        htk=True, norm=None)
    ref = np.log(mel + np.finfo(np.float32).eps).T
    assert ours.shape == ref.shape == (1 + 16000 // 160, 64)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=0)
    fb = B.mel_filterbank()
    assert fb.shape == (64, 513) and fb.max() == pytest.approx(1.0, abs=1e-3)  # no area norm
    fe = B.byols_fingerprint({**PARAMS["mfcc"], "options": PARAMS["byols"]})["front_end"]
    assert (fe["n_fft"], fe["win_length"], fe["hop_length"], fe["n_mels"]) == (1024, 400, 160,
                                                                                 64)
    assert (fe["f_min"], fe["f_max"], fe["mel_scale"], fe["mel_norm"]) == (60.0, 7800.0, "htk",
                                                                           None)
    assert fe["log_eps"] == float(np.finfo(np.float32).eps) and fe["pad_mode"] == "reflect"


def test_embeddings_match_the_pytorch_reference_fixture():
    """Reference embeddings of 3 real clips, made by benchmarks/byols_numerics.py with an
    independent PyTorch model on the original .pth; checked here without PyTorch."""
    with np.load(FIXTURE, allow_pickle=False) as ref:
        names = [str(n) for n in ref["names"]]
        expected = ref["embeddings"]
        mfcc = json.loads(str(ref["mfcc"]))
        opts = {"norm_mean": float(ref["norm_mean"]), "norm_std": float(ref["norm_std"])}
    files = [SHARED / n for n in names]
    if not all(f.is_file() for f in files):
        pytest.skip(f"reference clips not found under {SHARED} (../shared/data)")
    fingerprint = B.byols_fingerprint({**mfcc, "options": opts})
    ok, emb, failures = B.embeddings_from_files(files, fingerprint=fingerprint)
    assert not failures and len(ok) == 3
    assert np.abs(emb - expected).max() <= 1e-4
    assert expected.std() > 0.5  # the fixture is not trivially flat


def _pad_to(x: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([x, np.zeros((width - x.shape[0], x.shape[1]), np.float32)])


def test_inference_is_per_clip_chunked_and_agrees_with_the_keras_model():
    rng = np.random.default_rng(3)
    lengths = [8, 9, 15, 63, 64, 65, 130, 200, 257, B.CHUNK_FRAMES + 500]
    mels = [rng.normal(-6, 4, size=(n, 64)).astype(np.float32) for n in lengths]
    enc = B.get_encoder(None)
    together = enc.embed(mels, norm_mean=-6.0, norm_std=4.0)
    single = np.stack([enc.embed([m], norm_mean=-6.0, norm_std=4.0)[0] for m in mels])
    # the same bytes whatever clips are encoded with it (shards merge to one job's output)
    np.testing.assert_array_equal(together, single)
    # the long clip (overlapping windows) equals the whole clip in one pass
    frames = enc.frame_outputs((mels[-1] + 6.0) / 4.0)
    assert frames.shape == (lengths[-1] // 8, 512)
    np.testing.assert_allclose(together[-1], frames.mean(0) + frames.max(0), atol=2e-5)
    # the padded, masked Keras model (fine-tuning starts from it) gives the same embeddings
    arrays, _ = B.load_weights(None)
    pooled = B.build_encoder(arrays)
    x = np.stack([_pad_to((m + 6.0) / 4.0, 320) for m in mels[:8]])
    out = np.asarray(pooled.predict([x, np.array(lengths[:8], np.int32)], verbose=0))
    np.testing.assert_allclose(out, together[:8], atol=5e-5)
    assert np.abs(together[:8]).max() > 0.5  # not trivially small


def test_embedding_a_file_never_imports_jax_or_keras(tmp_path):
    # JAX + Keras cost ~360 MB; the frozen encoder is NumPy (issue 17: flat, small memory).
    import subprocess
    import sys

    import soundfile as sf

    t = np.arange(16000) / 16000
    sf.write(tmp_path / "c.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    code = (
        "import sys, json; from ser.features import byols as B\n"
        f"p = json.loads({json.dumps(json.dumps(PARAMS['mfcc']))})\n"
        "fp = B.byols_fingerprint({**p, 'options': {}})\n"
        f"v = B.embedding_from_file({str(tmp_path / 'c.wav')!r}, fingerprint=fp)\n"
        "assert v.shape == (512,), v.shape\n"
        "print(sorted(m for m in ('jax', 'keras', 'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_too_short_clip_is_a_one_line_feature_error(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "short.wav", np.full(800, 0.1, np.float32), 16000)
    mfcc = dict(PARAMS["mfcc"], trim_db=None)
    with pytest.raises(SerError) as info:
        B.logmel_from_file(tmp_path / "short.wav", params=mfcc)
    assert "too short" in _one_line(info.value)


# --------------------------------------------------------------------------- registry

def test_registry_entry_schema_and_params_agree():
    from ser.features.sets import EXTRACTED_SETS, FEATURE_SETS, feature_set_params, model_accepts
    from ser.params.load import load_params

    spec, spk = FEATURE_SETS["byols"], FEATURE_SETS["byols_spk"]
    assert "byols" in EXTRACTED_SETS and "byols_spk" not in EXTRACTED_SETS
    assert spec.extract_function() is B.extract_byols and spec.has_summary
    assert spk.base == "byols" and spk.speaker_norm and spk.section == "byols"
    assert model_accepts("svm", "byols_spk") and not model_accepts("lstm_seed", "byols")
    params = load_params(ROOT / "params.yaml")  # schema-validated
    fs = feature_set_params("byols", params)
    assert fs["options"]["norm_mean"] == B.DEFAULT_NORM_MEAN
    assert fs["options"]["norm_std"] == B.DEFAULT_NORM_STD
    assert fs["workers"] == params["byols"]["workers"]


# --------------------------------------------------------------------------- pipeline

@pytest.fixture(scope="module")
def byols_project(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("byols_project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"tess": "data/demo/tess", "ravdess": "data/demo/ravdess"}
    params["demo"]["preset"] = "tiny"
    params["train"]["cv_folds"] = 2
    params["svm"]["grid"] = {"C": [1.0]}
    params["evaluate"]["bootstrap"] = 20
    params["byols"]["workers"] = 1
    return build_demo_project(project, params, protocol="speaker",
                              feature_sets=("byols", "byols_spk"), extracted="byols",
                              models=("svm",))


def test_pipeline_extracts_trains_and_evaluates_byols(byols_project):
    summary = pd.read_parquet(byols_project / "data" / "features" / "byols" / "tess" /
                              "summary.parquet")
    feats = [c for c in summary.columns if c.startswith("feat_")]
    assert feats == B.FEATURE_NAMES and np.isfinite(summary[feats].to_numpy()).all()
    for fs in ("byols", "byols_spk"):
        card = json.loads((byols_project / "models" / "speaker" / fs / "svm" /
                           "card.json").read_text())
        fp = card["feature_params"]
        assert fp["feature_set"] == "byols"
        assert (fp["norm_mean"], fp["norm_std"]) == (B.DEFAULT_NORM_MEAN, B.DEFAULT_NORM_STD)
        metrics = json.loads((byols_project / "metrics" / "speaker" / fs / "svm" /
                              "metrics.json").read_text())
        assert metrics["feature_set"] == fs and metrics["n_test"] > 0
        assert 0.0 <= metrics["uar"] <= 1.0 and metrics["transductive"] == (fs == "byols_spk")


def test_prediction_reuses_the_cards_statistics(byols_project):
    from ser.predict.inference import features_for_files

    card = json.loads((byols_project / "models" / "speaker" / "byols" / "svm" /
                       "card.json").read_text())
    summary = pd.read_parquet(byols_project / "data" / "features" / "byols" / "tess" /
                              "summary.parquet")
    path = str(summary["path"].iloc[0])
    if not Path(path).is_absolute():
        path = str(byols_project / path)
    ok, _, vecs, failures = features_for_files([path], card["feature_params"])
    assert not failures
    np.testing.assert_allclose(vecs[0], summary[B.FEATURE_NAMES].iloc[0].to_numpy(),
                               atol=1e-4)
    other = dict(card["feature_params"], norm_mean=card["feature_params"]["norm_mean"] + 1)
    _, _, moved, _ = features_for_files([path], other)
    assert np.abs(moved[0] - vecs[0]).max() > 1e-2  # the statistics are really used


def test_shards_give_the_same_values_as_one_job(tmp_path):
    import soundfile as sf

    from ser.features.sets import feature_set_params

    rng = np.random.default_rng(5)
    rows = []
    for i, seconds in enumerate([0.9, 1.7, 1.2, 2.6, 0.5]):
        t = np.arange(int(seconds * 16000)) / 16000
        y = 0.3 * np.sin(2 * np.pi * (150 + 30 * i) * t) + 0.02 * rng.normal(size=t.size)
        sf.write(tmp_path / f"c{i}.wav", y.astype(np.float32), 16000)
        rows.append({"path": str(tmp_path / f"c{i}.wav"), "corpus": "toy",
                     "speaker": f"s{i % 2}", "emotion": "sad"})
    manifest = pd.DataFrame(rows)
    params = feature_set_params("byols", {"mfcc": PARAMS["mfcc"],
                                          "byols": dict(PARAMS["byols"], workers=1)})
    B.extract_byols(manifest, tmp_path / "all", params=params, progress=False)
    whole = pd.read_parquet(tmp_path / "all" / "summary.parquet")
    parts = []
    for k, rows_ in enumerate([(0, 2), (2, 5)]):
        B.extract_byols(manifest, tmp_path / f"s{k}", params=params, progress=False, rows=rows_)
        parts.append(pd.read_parquet(tmp_path / f"s{k}" / "summary.parquet"))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert len(whole) == 5 and whole[B.FEATURE_NAMES].notna().all().all()
