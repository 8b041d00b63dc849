"""MFCC feature definition and the Parquet extraction stage, on real recordings."""

from __future__ import annotations

import csv
import importlib.util
import json
import multiprocessing
import sys
import types
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from threadpoolctl import threadpool_limits

import ser.features.extract as extract_mod
from ser.audio import load_audio
from ser.errors import ConfigError, SerError
from ser.features import (
    SUMMARY_STATS,
    FeatureError,
    analysis_kernels,
    check_feature_params,
    coefficient_names,
    extract_features,
    feature_columns,
    feature_params_fingerprint,
    features_from_file,
    load_sequences,
    mfcc_sequence,
    mfcc_summary,
    prepare_signal,
    read_feature_params,
    summary_names,
)
from ser.params.load import load_params

ROOT = Path(__file__).resolve().parents[3]

#: librosa.feature.mfcc's defaults at librosa.load's default rate, no trimming.
LIBROSA_DEFAULTS = dict(sample_rate=22050, n_mfcc=40, n_fft=2048, hop_length=512, n_mels=128,
                        fmin=0.0, fmax=None, deltas=0, trim_db=None, max_seconds=None,
                        pad="none")


@pytest.fixture(scope="module")
def params() -> dict:
    """The project's mfcc: section (16 kHz, trim, 4 s cap)."""
    return load_params(ROOT / "params.yaml")["mfcc"]


@pytest.fixture(scope="module")
def clips(shared_data: Path) -> list[Path]:
    """A spread of real RAVDESS clips (different actors and emotions)."""
    files = sorted((shared_data / "ravdess").glob("Actor_*/*.wav"))
    assert len(files) >= 40
    return files[:: len(files) // 12][:12]


def _as_librosa(p: dict) -> dict:
    return dict(n_mfcc=p["n_mfcc"], n_fft=p["n_fft"], hop_length=p["hop_length"],
                n_mels=p["n_mels"], fmin=p["fmin"], fmax=p["fmax"])


# ----------------------------------------------------------------- the definition

@pytest.mark.parametrize("setting", ["librosa_defaults", "project"])
def test_cached_mfcc_is_bit_identical_to_librosa(clips, params, setting):
    """Exact equality (np.array_equal) with librosa.feature.mfcc on one BLAS thread.

    With several BLAS threads OpenBLAS's sgemm rounds differently, so librosa
    itself moves by ~1e-7 relative; against that we check allclose with
    rtol=1e-6, atol=1e-4 (dB-scaled coefficients of magnitude up to ~1000).
    """
    p = LIBROSA_DEFAULTS if setting == "librosa_defaults" else {
        **params, "trim_db": None, "max_seconds": None}
    for path in clips:
        y, sr = load_audio(path, sr=p["sample_rate"])
        ours = mfcc_sequence(y, sr, params=p)
        assert ours.dtype == np.float32 and ours.flags.c_contiguous
        with threadpool_limits(limits=1, user_api="blas"):
            ref = librosa.feature.mfcc(y=y, sr=sr, **_as_librosa(p)).T
        assert ours.shape == ref.shape == (1 + len(y) // p["hop_length"], p["n_mfcc"])
        assert np.array_equal(ours, ref), f"{path}: max diff {np.abs(ours - ref).max()}"
        ref_threads = librosa.feature.mfcc(y=y, sr=sr, **_as_librosa(p)).T
        np.testing.assert_allclose(ours, ref_threads, rtol=1e-6, atol=1e-4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # audioread, imported by librosa.load
def test_seed_loader_gives_the_same_audio(clips):
    """load_audio(sr=22050) == librosa.load's default decoding + soxr_hq resampling."""
    for path in clips[:4]:
        y, sr = load_audio(path, sr=22050)
        ref, ref_sr = librosa.load(path)
        assert sr == ref_sr and np.array_equal(y, ref)


def test_filterbank_is_built_once(clips, monkeypatch):
    analysis_kernels.cache_clear()
    calls = []
    real_mel = librosa.filters.mel

    def counting_mel(**kwargs):
        calls.append(kwargs)
        return real_mel(**kwargs)

    monkeypatch.setattr(librosa.filters, "mel", counting_mel)
    y, sr = load_audio(clips[0], sr=22050)
    for _ in range(3):
        mfcc_sequence(y, sr, params=LIBROSA_DEFAULTS)
    assert len(calls) == 1
    assert analysis_kernels.cache_info().hits == 2
    window, basis = analysis_kernels(22050, 2048, 128, 0.0, None)
    assert not window.flags.writeable and not basis.flags.writeable
    analysis_kernels.cache_clear()


def test_threads_share_the_cache_and_get_identical_results(clips, params):
    """Concurrent callers (per-thread work buffers, shared BLAS limit) match serial calls."""
    from concurrent.futures import ThreadPoolExecutor

    audio = [load_audio(path, sr=params["sample_rate"])[0] for path in clips]
    p = {**params, "trim_db": None}
    serial = [mfcc_sequence(y, params["sample_rate"], params=p) for y in audio]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda y: mfcc_sequence(y, params["sample_rate"], params=p),
                                 audio * 3))
    for i, seq in enumerate(threaded):
        assert np.array_equal(seq, serial[i % len(audio)])


@pytest.mark.parametrize("deltas", [1, 2])
def test_deltas_are_stacked_as_extra_coefficients(clips, params, deltas):
    p = {**params, "deltas": deltas}
    y, sr = load_audio(clips[0], sr=params["sample_rate"])
    seq = mfcc_sequence(y, sr, params=p)
    base = mfcc_sequence(y, sr, params={**params, "deltas": 0})
    n = params["n_mfcc"]
    assert seq.shape == (base.shape[0], n * (1 + deltas))
    assert np.array_equal(seq[:, :n], base)
    d1 = librosa.feature.delta(base.T, order=1).T
    np.testing.assert_allclose(seq[:, n:2 * n], d1, rtol=1e-5, atol=1e-4)
    names = coefficient_names(seq.shape[1], deltas=deltas)
    assert names[0] == "mfcc00" and names[n] == "mfcc00_d1" and len(set(names)) == len(names)


def test_deltas_of_very_short_clips(params):
    sr = params["sample_rate"]
    y = np.random.default_rng(0).standard_normal(sr // 20).astype(np.float32)  # 5 frames
    p = {**params, "deltas": 2, "trim_db": None}
    assert mfcc_sequence(y, sr, params=p).shape == (6, 3 * params["n_mfcc"])
    tiny = mfcc_sequence(y[:100], sr, params=p)  # 1 frame: zero deltas
    assert tiny.shape[0] == 1 and not tiny[:, params["n_mfcc"]:].any()


def test_trim_truncate_and_pad(params):
    sr, hop = params["sample_rate"], params["hop_length"]
    rng = np.random.default_rng(1)
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    silence = (1e-5 * rng.standard_normal(sr)).astype(np.float32)
    y = np.concatenate([silence, tone, silence])  # 1 s silence, 1 s tone, 1 s silence

    base = {**params, "trim_db": None, "max_seconds": None, "pad": "none"}
    assert mfcc_sequence(y, sr, params=base).shape[0] == 1 + len(y) // hop

    trimmed = prepare_signal(y, params={**base, "trim_db": 30})
    assert np.array_equal(trimmed, librosa.effects.trim(y, top_db=30)[0])
    assert 0.9 * sr < len(trimmed) < 1.3 * sr  # the tone, give or take a trim frame
    assert mfcc_sequence(y, sr, params={**base, "trim_db": 30}).shape[0] == \
        1 + len(trimmed) // hop

    cut = {**base, "max_seconds": 0.5}
    assert len(prepare_signal(y, params=cut)) == sr // 2
    assert mfcc_sequence(y, sr, params=cut).shape[0] == 1 + (sr // 2) // hop
    # Padding only lengthens: a long clip is cut, a short one zero-padded.
    padded = {**base, "max_seconds": 4.0, "pad": "zeros"}
    frames = 1 + 4 * sr // hop
    assert mfcc_sequence(y, sr, params=padded).shape[0] == frames
    short = prepare_signal(tone[: sr // 4], params=padded)
    assert len(short) == 4 * sr and not short[sr // 4:].any()
    assert mfcc_sequence(tone[: sr // 4], sr, params=padded).shape[0] == frames


def test_bad_inputs(params):
    sr = params["sample_rate"]
    with pytest.raises(FeatureError, match="22050 Hz"):
        mfcc_sequence(np.zeros(1000, np.float32), 22050, params=params)
    with pytest.raises(FeatureError, match="no audio samples"):
        mfcc_sequence(np.zeros(0, np.float32), sr, params=params)
    with pytest.raises(FeatureError, match="mono"):
        mfcc_sequence(np.zeros((2, 100), np.float32), sr, params=params)
    with pytest.raises(ConfigError, match="max_seconds"):
        mfcc_sequence(np.zeros(100, np.float32), sr,
                      params={**params, "pad": "zeros", "max_seconds": None})
    with pytest.raises(ConfigError, match="n_fft"):
        mfcc_sequence(np.zeros(100, np.float32), sr, params={**params, "n_fft": 0})


def test_summary_statistics_and_names():
    rng = np.random.default_rng(2)
    seq = rng.standard_normal((57, 40)).astype(np.float32)
    summary = mfcc_summary(seq)
    names = summary_names(40)
    assert summary.dtype == np.float32 and summary.shape == (40 * len(SUMMARY_STATS),)
    assert len(names) == len(summary) == len(set(names))
    assert names[:6] == ["feat_mfcc00_mean", "feat_mfcc00_std", "feat_mfcc00_median",
                         "feat_mfcc00_p10", "feat_mfcc00_p90", "feat_mfcc00_iqr"]
    assert names[-1] == "feat_mfcc39_iqr"
    x = seq[:, 7].astype(np.float64)
    got = dict(zip(names, summary, strict=True))
    q25, q75 = np.percentile(x, [25, 75])
    expected = {"mean": x.mean(), "std": x.std(), "median": np.median(x),
                "p10": np.percentile(x, 10), "p90": np.percentile(x, 90), "iqr": q75 - q25}
    for stat, value in expected.items():
        assert got[f"feat_mfcc07_{stat}"] == pytest.approx(value, rel=1e-6, abs=1e-6)
    assert summary_names(80, deltas=1)[40 * 6] == "feat_mfcc00_d1_mean"
    assert len(mfcc_summary(seq[:1])) == 240  # one frame still works


def test_fingerprint(params):
    fp = feature_params_fingerprint(params)
    assert json.loads(json.dumps(fp)) == fp
    assert "workers" not in fp and fp["n_coeffs"] == params["n_mfcc"]
    assert feature_params_fingerprint({"mfcc": {**params, "trim_db": 30, "workers": 7}}) == fp
    assert feature_params_fingerprint(fp) == fp  # a stored fingerprint is valid params
    check_feature_params(fp, params)
    with pytest.raises(ConfigError, match="n_mels"):
        check_feature_params(fp, {**params, "n_mels": 40})


def test_features_from_file(clips, params, tmp_path):
    seq, summary = features_from_file(clips[0], params=params)
    y, sr = load_audio(clips[0], sr=params["sample_rate"])
    assert np.array_equal(seq, mfcc_sequence(y, sr, params=params))
    assert np.array_equal(summary, mfcc_summary(seq))
    assert seq.shape[0] <= 1 + 4 * 16000 // 160
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(SerError, match="empty"):
        features_from_file(empty, params=params)


# ----------------------------------------------------------------------- the stage

@pytest.fixture()
def manifest(clips, tmp_path) -> pd.DataFrame:
    """8 real clips in a non-sorted order, plus a corrupt and an empty file."""
    corrupt = tmp_path / "bad" / "corrupt.wav"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage, not a real header" * 4)
    empty = tmp_path / "bad" / "empty.wav"
    empty.write_bytes(b"")
    good = [str(p) for p in clips[:8]]
    paths = [good[5], good[0], str(corrupt), good[7], good[2], good[1], str(empty),
             good[6], good[3], good[4]]
    return pd.DataFrame({
        "path": paths,
        "corpus": "ravdess",
        "speaker": [Path(p).parent.name for p in paths],
        "gender": ["male", "female"] * 5,
        "emotion": ["neutral", "happy", "sad", "angry", "fearful"] * 2,
        "label_code": np.arange(10, dtype=np.int64),
        "statement": ["kids", "dogs"] * 5,
    })


def _read_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_stage_writes_ordered_parquets_and_skips_bad_files(manifest, params, tmp_path, capsys):
    src = tmp_path / "manifest.parquet"
    manifest.to_parquet(src, index=False)
    out = tmp_path / "features" / "ravdess"
    result = extract_features(src, out, params=params, workers=2, chunk_size=3, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".ser-output", "sequences.parquet",
                                                     "skipped.csv", "summary.parquet"]
    assert not list(out.parent.glob(".*partial"))

    good = manifest[~manifest["path"].str.contains("/bad/")]
    summary = pd.read_parquet(out / "summary.parquet")
    assert result.n_rows == len(summary) == 8 and result.n_files == 10
    assert summary["path"].tolist() == good["path"].tolist()
    assert summary.columns[:7].tolist() == manifest.columns.tolist()
    assert summary["label_code"].tolist() == good["label_code"].tolist()
    assert summary["statement"].tolist() == good["statement"].tolist()
    feats = feature_columns(summary)
    assert feats == summary_names(params["n_mfcc"])
    assert all(summary[c].dtype == np.float32 for c in feats)
    assert summary.columns.tolist() == manifest.columns.tolist() + ["n_frames", "duration_s"] \
        + feats

    with open(out / "skipped.csv", newline="") as fh:
        skipped = list(csv.DictReader(fh))
    assert [r["path"] for r in skipped] == [p for p in manifest["path"] if "/bad/" in p]
    assert "empty" in skipped[1]["reason"] and "not a readable audio file" in skipped[0]["reason"]
    err = capsys.readouterr().err
    assert err.count("warning: skipped") == 2

    paths, seqs = load_sequences(out / "sequences.parquet")
    assert paths == good["path"].tolist()
    for i, (path, seq) in enumerate(zip(paths, seqs, strict=True)):
        ref_seq, ref_summary = features_from_file(path, params=params)
        assert np.array_equal(seq, ref_seq)
        assert np.array_equal(summary.loc[i, feats].to_numpy(np.float32), ref_summary)
        assert summary.loc[i, "n_frames"] == seq.shape[0]
        duration = len(load_audio(path, sr=params["sample_rate"])[0]) / params["sample_rate"]
        assert summary.loc[i, "duration_s"] == pytest.approx(duration)

    fp = feature_params_fingerprint(params)
    assert read_feature_params(out / "summary.parquet") == fp
    assert read_feature_params(out / "sequences.parquet") == fp
    seq_schema = pq.read_schema(out / "sequences.parquet")
    assert [f.name for f in seq_schema] == ["path", "n_frames", "n_coeffs", "mfcc"]

    first = _read_bytes(out)
    extract_features(src, out, params=params, workers=2, chunk_size=3, progress=False)
    assert _read_bytes(out) == first, "rerun must give byte-identical files"
    serial = tmp_path / "serial"
    extract_features(manifest, serial, params=params, workers=1, chunk_size=5, progress=False)
    assert _read_bytes(serial) == first, "workers=1 and workers=2 must give identical files"


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX loaded by other tests
def test_stage_without_fork_gives_the_same_files(manifest, params, tmp_path, monkeypatch):
    """With a library that runs its own threads (JAX, ...) loaded, workers come
    from a forkserver instead of a plain fork: same output bytes."""
    good = manifest[~manifest["path"].str.contains("/bad/")].iloc[:4]
    forked = tmp_path / "fork"
    with monkeypatch.context() as patch:
        patch.setattr(extract_mod, "_mp_context", lambda: multiprocessing.get_context("fork"))
        extract_features(good, forked, params=params, workers=2, chunk_size=1, progress=False)
    if "jax" not in sys.modules:
        monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    assert extract_mod._mp_context().get_start_method() == "forkserver"
    served = tmp_path / "forkserver"
    extract_features(good, served, params=params, workers=2, chunk_size=1, progress=False)
    assert _read_bytes(served) == _read_bytes(forked)


def test_all_files_bad_is_an_error(manifest, params, tmp_path):
    bad = manifest[manifest["path"].str.contains("/bad/")]
    out = tmp_path / "out"
    with pytest.raises(SerError, match="none of the 2 files"):
        extract_features(bad, out, params=params, workers=2, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX loaded by other tests
@pytest.mark.parametrize(("workers", "exc"), [(1, RuntimeError), (2, RuntimeError),
                                              (1, KeyboardInterrupt)])
def test_failed_run_leaves_no_output(manifest, params, tmp_path, monkeypatch, workers, exc):
    real = extract_mod.file_features
    good = manifest[~manifest["path"].str.contains("/bad/")]
    victim = good["path"].iloc[5]

    def failing(path, *, params, **options):
        if path == victim:
            raise exc("boom")
        return real(path, params=params, **options)

    monkeypatch.setattr(extract_mod, "file_features", failing)  # forked workers inherit it
    monkeypatch.setattr(extract_mod, "_mp_context", lambda: multiprocessing.get_context("fork"))
    out = tmp_path / "out"
    with pytest.raises(exc):
        extract_features(good, out, params=params, workers=workers, chunk_size=2,
                         progress=False)
    assert not out.exists() and not list(tmp_path.glob(".out*"))

    # A previous output survives a failed rerun untouched.
    monkeypatch.setattr(extract_mod, "file_features", real)
    extract_features(good.iloc[:3], out, params=params, workers=1, progress=False)
    before = _read_bytes(out)
    monkeypatch.setattr(extract_mod, "file_features", failing)
    with pytest.raises(exc):
        extract_features(good, out, params=params, workers=workers, chunk_size=2,
                         progress=False)
    assert _read_bytes(out) == before


def test_stage_cli(manifest, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "extract_features_script", ROOT / "scripts" / "extract_features.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    src = tmp_path / "m.parquet"
    manifest.iloc[:4].to_parquet(src, index=False)
    out = tmp_path / "feat"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["mfcc"]["workers"] = 1  # mfcc.workers sets the extraction processes
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--feature-set", "mfcc", "--corpus", "ravdess", "--params",
            str(tmp_path / "params.yaml"), "--manifest", str(src), "--out", str(out),
            "--no-progress"]
    from ser.cli import run_cli

    assert run_cli(script.main, argv) == 0
    out_text = capsys.readouterr().out
    assert "wrote features of 3/4 files" in out_text and "1 workers" in out_text
    assert len(pd.read_parquet(out / "summary.parquet")) == 3
    missing = ["--feature-set", "mfcc", "--corpus", "nope", "--params",
               str(ROOT / "params.yaml"), "--manifest", str(tmp_path / "nope.parquet"),
               "--out", str(tmp_path / "x")]
    assert run_cli(script.main, missing) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_float16_sequences_round_real_mfccs_by_about_1e_3_of_their_spread(clips, params,
                                                                          tmp_path):
    """The LSTM holds its training frames as float16 (ser.models.lstm.SEQUENCE_DTYPE):
    on real speech that moves a frame by ~1e-3 of its coefficient's spread, never more
    than 1 %."""
    from ser.models.lstm import SEQUENCE_DTYPE

    manifest = pd.DataFrame({"path": [str(p) for p in clips], "corpus": "ravdess"})
    extract_features(manifest, tmp_path, params=params, workers=1, progress=False)
    paths, full = load_sequences(tmp_path / "sequences.parquet")
    paths16, half = load_sequences(tmp_path / "sequences.parquet", dtype=SEQUENCE_DTYPE,
                                   keep=set(paths))
    assert paths16 == paths and all(s.dtype == np.float16 for s in half)
    full, half = np.concatenate(full).astype(np.float64), np.concatenate(half)
    spread = full.std(axis=0)
    error = np.abs(half.astype(np.float64) - full) / spread
    assert np.sqrt(np.mean(error**2, axis=0)).max() < 3e-3
    assert error.max() < 1e-2
