"""Audio checks at feature time: silent clips skipped with a reason, decoding bounded.

Part of the reliability matrix (issue 8): one case per fault a hostile or clumsy user
can cause, refused or reported in one readable line, nothing of the user's lost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support import MODEL_KINDS, card_for, fitted, one_line, small_ravdess, tone, toy_xy  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("signal, skipped", [
    ("digital_silence", True),
    ("near_silence", True),
    ("dc_offset", True),
    ("speech_like", False),
])
def test_silent_clips_are_skipped_with_a_reason(tmp_path, signal, skipped):
    import pandas as pd

    from ser.features import extract_features
    from ser.params.load import load_params

    sr = 16000
    y = {"digital_silence": np.zeros(sr, "f4"),
         "near_silence": tone(amp=1e-4) * 0.01,
         "dc_offset": np.full(sr, 0.5, "f4"),
         "speech_like": tone()}[signal]
    good = tmp_path / "good.wav"
    sf.write(good, tone(seed=1), sr)
    clip = tmp_path / f"{signal}.wav"
    sf.write(clip, y, sr, subtype="FLOAT")
    mfcc = load_params(Path(__file__).parents[3] / "params.yaml")["mfcc"]
    res = extract_features(pd.DataFrame({"path": [str(good), str(clip)]}), tmp_path / "f",
                           params=mfcc, workers=1, progress=False)
    reasons = dict(res.skipped)
    if skipped:
        assert "silent or near-silent clip" in reasons[str(clip)]
        assert "mfcc.min_rms_db" in reasons[str(clip)]
    else:
        assert str(clip) not in reasons


def test_decoding_reads_at_most_max_seconds_plus_margin(tmp_path):
    from ser.audio import load_audio
    from ser.features.mfcc import READ_MARGIN_SECONDS, file_features, read_seconds
    from ser.params.load import load_params

    mfcc = load_params(Path(__file__).parents[3] / "params.yaml")["mfcc"]
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(tone(1.0, sr=8000), 60), 8000)  # 60 s
    y, _ = load_audio(long, max_seconds=read_seconds(mfcc))
    assert y.size == int((mfcc["max_seconds"] + READ_MARGIN_SECONDS) * 8000)
    seq, _, duration = file_features(long, params=mfcc)
    assert duration == pytest.approx(60.0)  # the true length, from the header
    assert seq.shape[0] <= mfcc["max_seconds"] * mfcc["sample_rate"] / mfcc["hop_length"] + 1
