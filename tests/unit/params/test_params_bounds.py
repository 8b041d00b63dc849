"""Issue 17 item 13: parameters that used to pass validation and fail (or warn, or fork
too many processes) only when their stage ran are caught up front, in one line."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from ser.params.load import ConfigError, load_params, validate_params

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(ROOT / "params.yaml")


@pytest.mark.parametrize("edit, expect", [
    (lambda p: p["mfcc"].update(fmin=5000.0, fmax=4000.0), "need 0 <= fmin < fmax"),
    (lambda p: p["mfcc"].update(fmax=9000.0), "fmax=9000"),
    (lambda p: p["mfcc"].update(n_mels=1000), "mfcc.n_mels 1000 is too many mel bands"),
    (lambda p: p["logmel"].update(n_mels=250), "logmel.n_mels 250 is too many mel bands"),
    (lambda p: p["train"].update(scoring="f1_makro"), "train.scoring 'f1_makro' is not"),
    (lambda p: p["mfcc"].update(workers=1000), "mfcc.workers"),
    (lambda p: p["egemaps"].update(workers=100000), "egemaps.workers"),
])
def test_bad_signal_scoring_and_workers_fail_validation_in_one_line(params, edit, expect):
    bad = copy.deepcopy(params)
    edit(bad)
    with pytest.raises(ConfigError) as exc:
        validate_params(bad, source="params.yaml")
    text = str(exc.value)
    assert "\n" not in text and expect in text and text.startswith("params.yaml: "), text


def test_too_many_bands_names_a_count_that_fits(params):
    from ser.features.mfcc import FeatureParams, empty_mel_band

    bad = copy.deepcopy(params)
    bad["mfcc"]["n_mels"] = 1000
    with pytest.raises(ConfigError) as exc:
        validate_params(bad, source="params.yaml")
    fits = int(str(exc.value).split("use at most ")[1].split()[0])
    fp = FeatureParams.from_mapping(params["mfcc"])
    assert empty_mel_band(fp, fits) is None and empty_mel_band(fp, fits + 1) is not None


def test_empty_band_check_agrees_with_librosa(params):
    import warnings

    import librosa
    import numpy as np

    from ser.features.mfcc import FeatureParams, empty_mel_band

    for n_fft, n_mels, fmin in [(512, 64, 0.0), (512, 128, 0.0), (256, 128, 0.0),
                                (512, 200, 50.0), (2048, 256, 0.0), (128, 40, 300.0)]:
        fp = FeatureParams.from_mapping(params["mfcc"] | {"n_fft": n_fft, "n_mels": n_mels,
                                                          "fmin": fmin})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = librosa.filters.mel(sr=fp.sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin)
        assert (empty_mel_band(fp, n_mels) is None) == bool(np.all(w.max(axis=1) > 0))


def test_workers_never_exceed_cores_or_files(monkeypatch, tmp_path):
    """workers: 16 on a 2-core machine used to fork 16 children."""
    import numpy as np
    import soundfile as sf

    import ser.features.summaries as summaries
    from ser.features.extract import resolve_workers

    cores = len(os.sched_getaffinity(0))
    assert resolve_workers(16) == min(16, cores)
    assert resolve_workers(0) == cores
    started = []

    class Recorder(summaries.ProcessPoolExecutor):
        def __init__(self, max_workers=None, **kwargs):
            started.append(max_workers)
            super().__init__(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(summaries, "ProcessPoolExecutor", Recorder)
    files = []
    for i in range(2):
        files.append(tmp_path / f"{i}.wav")
        sf.write(files[-1], 0.3 * np.sin(np.linspace(0, 900 * (i + 1), 16000)), 16000)
    frame, skipped = summaries.extract_feature_set(files, "mfcc_stats", params=copy.deepcopy(
        load_params(ROOT / "params.yaml")["mfcc"]), workers=16, progress=False)
    assert len(frame) == 2 and not skipped
    assert all(n <= min(2, cores) for n in started)
