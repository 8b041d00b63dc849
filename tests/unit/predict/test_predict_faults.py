"""predict.py notes (no speech, low confidence) and model-folder faults, one line each.

Part of the reliability matrix (issue 8): one case per fault a hostile or clumsy user
can cause, refused or reported in one readable line, nothing of the user's lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support import (
    edit_card,
    exec_pipeline,
    run_with_timeout,
    tone,
)

ROOT = Path(__file__).resolve().parents[3]


def predict(capsys, *args):
    from ser.cli.predict import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("signal, note", [
    ("silence", "no speech"),
    ("dc", "no speech"),
    ("white_noise", "low confidence"),
])
def test_predict_notes_no_speech_and_low_confidence(flat_model, tmp_path, capsys, signal, note):
    sr = 16000
    rng = np.random.default_rng(1)
    y = {"silence": np.zeros(2 * sr), "dc": np.full(2 * sr, 0.4),
         "white_noise": rng.uniform(-0.5, 0.5, 2 * sr)}[signal].astype("f4")
    clip = tmp_path / f"{signal}.wav"
    sf.write(clip, y, sr, subtype="FLOAT")
    rc, out, _ = predict(capsys, "--file", str(clip), "--model", str(flat_model), "--json")
    result = json.loads(out)
    assert rc == 0 and any(n.startswith(note) for n in result["notes"])
    rc, out, _ = predict(capsys, "--file", str(clip), "--model", str(flat_model))
    assert f"note: {note}" in out


def test_predict_on_a_non_utf8_folder_and_a_fifo_does_not_crash(flat_model, tmp_path, capsys):
    folder = Path(os.fsdecode(os.fsencode(tmp_path) + b"/r\xffc"))
    folder.mkdir()
    sf.write(os.fsencode(folder / "a.wav"), tone(2.0), 16000)
    os.mkfifo(folder / "pipe.wav")  # never opened: not a regular file
    rc, out, _ = run_with_timeout(lambda: predict(capsys, "--file", str(folder), "--model",
                                                  str(flat_model)))
    assert rc == 0 and "r\\xffc/a.wav" in out
    rc, _, err = run_with_timeout(lambda: predict(capsys, "--file", str(folder / "pipe.wav"),
                                                  "--model", str(flat_model)))
    assert rc == 2 and "not a regular file" in err


@pytest.mark.parametrize("fault", ["edited_card", "corrupt_model", "no_checksums",
                                   "untrusted_type", "missing_folder"])
def test_every_model_folder_fault_is_one_line_exit_2(flat_model, tmp_path, capsys, fault):
    from ser.models.store import CHECKSUMS, save_model

    clip = tmp_path / "c.wav"
    sf.write(clip, tone(), 16000)
    model = flat_model
    if fault == "edited_card":
        edit_card(model, lambda c: c.update(labels=["sad", "happy", "angry"]))
    elif fault == "corrupt_model":
        (model / "model.skops").write_bytes(b"not a zip")
    elif fault == "no_checksums":
        (model / CHECKSUMS).unlink()
    elif fault == "untrusted_type":
        model = tmp_path / "evil"
        save_model(model, exec_pipeline(tmp_path / "pwned"),
                   {"format": "skops", "labels": ["a"], "feature_params": {}})
    else:
        model = tmp_path / "nowhere"
    rc, out, err = predict(capsys, "--file", str(clip), "--model", str(model))
    assert rc == 2 and not out and err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err and not (tmp_path / "pwned").exists()
