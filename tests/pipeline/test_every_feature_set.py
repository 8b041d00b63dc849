"""Issue 17 item 5: every feature set works in every path that classifies audio.

One small demo project (the tiny RAVDESS-layout corpus, speaker protocol) extracts every
feature set of the registry (:data:`ser.features.sets.FEATURE_SETS`, all but the ``_spk``
variants, so a set added later is covered without editing this file) and trains a model
on each; the eGeMAPS set (``predict.py``'s usual default model) gets every classical
model kind, and each sequence model its own set. Then, per set and per model kind:
``predict.py --file``, ``predict.py --file <40 s recording> --segments``,
``ser timeline`` and ``ser evaluate`` must answer (timelines used to fail on every
non-MFCC model with "no segment could be classified").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from support import build_every_set_project, models_for, plain_feature_sets, working_directory

PLAIN_SETS = list(plain_feature_sets())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return build_every_set_project(tmp_path_factory.mktemp("every_set"))


@pytest.fixture(scope="module")
def recordings(project) -> dict[str, Path]:
    """A 40-s recording (demo clips with pauses) and a small folder-per-label corpus."""
    clips = sorted((project / "data" / "demo" / "ravdess").rglob("*.wav"))
    parts, total, sr = [], 0.0, None
    for clip in clips:
        y, sr = sf.read(clip, dtype="float32")
        parts += [y, np.zeros(int(0.4 * sr), np.float32)]
        total += len(y) / sr + 0.4
        if total >= 40.0:
            break
    long = project / "long40.wav"
    sf.write(long, np.concatenate(parts), sr)
    custom = project / "custom_corpus"
    for clip in clips[:12]:
        emotion = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                   "06": "fearful", "07": "disgust", "08": "surprised"}[clip.stem.split("-")[2]]
        dest = custom / emotion / "spk1" / clip.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, dest)
    return {"long": long, "clip": clips[0], "custom": custom}


def _predict(capsys, *args: str) -> tuple[int, str, str]:
    from ser.cli.predict import main

    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def _segments_work(capsys, project: Path, model_dir: Path, long: Path, out: Path) -> None:
    import pandas as pd

    rc, stdout, err = _predict(capsys, "--file", str(long), "--model", str(model_dir),
                               "--segments", "--out", str(out), "--json")
    assert rc == 0, err
    frame = pd.read_csv(out / "timeline.csv")
    assert len(frame) >= 5 and frame["end"].max() > 35.0
    assert set(frame["emotion"]) <= set(yaml.safe_load(
        (model_dir / "card.json").read_text())["labels"])


def test_the_registry_is_covered():
    assert {"mfcc", "egemaps", "logmel"} <= set(PLAIN_SETS)
    assert all(models_for(s) for s in PLAIN_SETS)


@pytest.mark.parametrize("feature_set", PLAIN_SETS)
def test_every_path_classifies_with_every_feature_set(project, recordings, capsys, tmp_path,
                                                      feature_set):
    from ser.cli import main as ser_main

    model_dir = project / "models" / "speaker" / feature_set / models_for(feature_set)[0]
    with working_directory(project):
        rc, out, err = _predict(capsys, "--file", str(recordings["clip"]), "--model",
                                str(model_dir))
        assert rc == 0 and recordings["clip"].name in out, err
        _segments_work(capsys, project, model_dir, recordings["long"], tmp_path / "seg")
        capsys.readouterr()
        assert ser_main(["timeline", "--file", str(recordings["long"]), "--model",
                         str(model_dir), "--out", str(tmp_path / "tl"), "--no-plot",
                         "--no-progress"]) == 0
        assert "segments" in capsys.readouterr().out
        assert ser_main(["evaluate", "--model", str(model_dir), "--corpus", "custom",
                         "--root", str(recordings["custom"]), "--out", str(tmp_path / "ev"),
                         "--bootstrap", "10"]) == 0
        assert (tmp_path / "ev" / "metrics.json").is_file()


@pytest.mark.parametrize("feature_set, model", [(s, m) for s in PLAIN_SETS
                                                for m in models_for(s)[1:]])
def test_segments_work_with_every_model_kind(project, recordings, capsys, tmp_path,
                                             feature_set, model):
    model_dir = project / "models" / "speaker" / feature_set / model
    with working_directory(project):
        _segments_work(capsys, project, model_dir, recordings["long"], tmp_path / "seg")


def test_a_config_error_is_never_reported_as_no_segment(project, recordings, tmp_path):
    """A model that cannot classify (here: a feature set this code does not know) stops
    the timeline with its own message instead of 'no segment could be classified'."""
    from ser.errors import ConfigError
    from ser.predict.inference import Predictor
    from ser.predict.timeline import emotion_timeline

    predictor = Predictor.load(project / "models" / "speaker" / "egemaps" / "svm")
    predictor.card = predictor.card | {"feature_params": predictor.card["feature_params"]
                                       | {"feature_set": "not_a_set"}}
    with pytest.raises(ConfigError, match="not_a_set"):
        emotion_timeline(recordings["long"], predictor)
