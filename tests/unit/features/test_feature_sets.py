"""Named feature sets (MFCC statistics, eGeMAPS) on real recordings."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ser.errors import ConfigError
from ser.features.summaries import extract_feature_set, file_feature_vector

ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]
MFCC = yaml.safe_load((ROOT / "params.yaml").read_text())["mfcc"]


@pytest.fixture(scope="module")
def real_files(shared_data):
    files = sorted((shared_data / "ravdess").glob("Actor_0[12]/*.wav"))
    return [files[0], files[-1]]


def test_egemaps_on_real_files(real_files):
    pytest.importorskip("opensmile")
    vec, names = file_feature_vector("egemaps", real_files[0], params=MFCC)
    assert vec.shape == (88,) and len(names) == 88 and len(set(names)) == 88
    assert np.all(np.isfinite(vec))
    assert "feat_egemaps_F0semitoneFrom27.5Hz_sma3nz_amean" in names
    assert "feat_egemaps_loudness_sma3_amean" in names
    other, _ = file_feature_vector("egemaps", real_files[1], params=MFCC)
    assert not np.allclose(vec, other)


def test_mfcc_stats_and_concatenation(real_files):
    pytest.importorskip("opensmile")
    m, mn = file_feature_vector("mfcc_stats", real_files[0], params=MFCC)
    assert m.shape == (MFCC["n_mfcc"] * 4,) and mn[:2] == ["feat_mfcc00_mean", "feat_mfcc00_std"]
    assert "feat_mfcc00_d1_mean" in mn
    both, bn = file_feature_vector("egemaps_mfcc", real_files[0], params=MFCC)
    assert both.shape == (88 + m.shape[0],) and bn[88:] == mn
    np.testing.assert_array_equal(both[88:], m)


def test_extract_feature_set_table_and_skips(real_files, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    frame, skipped = extract_feature_set([real_files[0], bad, real_files[1]], "mfcc_stats",
                                         params=MFCC, workers=2, progress=False)
    assert list(frame["path"]) == [str(real_files[0]), str(real_files[1])]
    assert frame.shape[1] == 1 + MFCC["n_mfcc"] * 4
    assert [p for p, _ in skipped] == [str(bad)]
    one, _ = file_feature_vector("mfcc_stats", real_files[1], params=MFCC)
    np.testing.assert_array_equal(frame.iloc[1, 1:].to_numpy(dtype=np.float32), one)


def test_unknown_feature_set_is_a_config_error(real_files):
    with pytest.raises(ConfigError, match="unknown feature set"):
        file_feature_vector("wav2vec", real_files[0], params=MFCC)
