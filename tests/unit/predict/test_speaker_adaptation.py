"""Speaker-normalised (``*_spk``) models outside the pipeline: ser evaluate (transductive),
predict.py with speaker clips or a profile, ser timeline with the recording itself,
the default model choice, and every refusal in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from support import ROOT, build_demo_project

from ser.cli import main as ser_main
from ser.cli.predict import main as predict_main


@pytest.fixture(scope="module")
def spk_project(tmp_path_factory) -> Path:
    """The RAVDESS demo corpus (8 actors x 15 clips) under ``speaker``: an SVM on plain MFCC
    summaries and one on speaker-normalised ones (``mfcc_spk``), both evaluated."""
    project = tmp_path_factory.mktemp("spk_project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"ravdess": "data/demo/ravdess"}
    params["train"]["protocols"] = ["speaker"]
    params["svm"]["grid"] = {"C": [1.0, 10.0]}
    params["evaluate"]["bootstrap"] = 20
    return build_demo_project(project, params, feature_sets=("mfcc", "mfcc_spk"),
                              models=("svm",))


def spk_model(project: Path) -> Path:
    return project / "models" / "speaker" / "mfcc_spk" / "svm"


def actor_clips(project: Path, actor: str) -> list[Path]:
    return sorted((project / "data" / "demo" / "ravdess" / f"Actor_{actor}").glob("*.wav"))


@pytest.fixture(scope="module")
def enrolment(spk_project, tmp_path_factory) -> tuple[Path, Path]:
    """One clip of actor 07 to classify and a folder of 10 other clips of the same actor."""
    clips = actor_clips(spk_project, "07")
    folder = tmp_path_factory.mktemp("actor07_enrol")
    for clip in clips[1:11]:
        shutil.copy(clip, folder / clip.name)
    return clips[0], folder


def run(capsys, main, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(err: str, *needles: str) -> None:
    # The demo model's synthetic-data warning (printed by predict and timeline) is not an error.
    lines = [x for x in err.strip().splitlines() if not x.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def expected_proba(model_dir: Path, target: Path, enrol: list[Path]) -> np.ndarray:
    """What the spk model must answer, computed here independently: the target's MFCC
    summary z-scored with the enrolment clips' mean and std (ddof 0), both shrunk toward the
    card's training-speaker prior (posterior mean with k = within/between variance; 10
    pseudo-clips of the within-speaker variance)."""
    from ser.features import features_from_file
    from ser.predict.inference import Predictor

    predictor = Predictor.load(model_dir)
    params = predictor.card["feature_params"]
    prior = predictor.card["speaker_prior"]
    E = np.vstack([features_from_file(p, params=params)[1] for p in enrol])
    x = features_from_file(target, params=params)[1]
    n, std = len(E), np.where(E.std(axis=0) < 1e-8, 1.0, E.std(axis=0))
    within, between = np.array(prior["within_var"]), np.array(prior["between_var"])
    k = np.where(between > 0, within / np.where(between > 0, between, 1), 0.0)
    mean = (n * E.mean(axis=0) + k * np.array(prior["mean_of_means"])) / (n + k)
    std = np.sqrt((n * std**2 + 10 * within) / (n + 10))
    z = (x - mean) / np.where(std < 1e-8, 1.0, std)
    return predictor.model.predict_proba(z[None, :])[0]


def test_spk_card_holds_the_training_speakers_prior(spk_project):
    """The prior comes from the training speakers' raw features only."""
    import pandas as pd

    from ser.features.speaker_norm import speaker_statistics

    card = json.loads((spk_model(spk_project) / "card.json").read_text())
    prior = card["speaker_prior"]
    assert prior["n_speakers"] == len(card["train_speakers"]) < 8
    feats = pd.read_parquet(spk_project / "data/features/mfcc/ravdess/summary.parquet")
    train = feats[("ravdess:" + feats["speaker"].astype(str)).isin(card["train_speakers"])]
    stats = speaker_statistics(train[card["feature_columns"]].to_numpy(),
                               train["speaker"].to_numpy())
    means = np.array([m for m, _ in stats.values()])
    np.testing.assert_allclose(prior["mean_of_means"], means.mean(axis=0), rtol=1e-5)
    assert "speaker_prior" not in json.loads(
        (spk_project / "models/speaker/mfcc/svm/card.json").read_text())


def test_predict_with_speaker_clips_normalises_with_them(spk_project, enrolment, capsys):
    target, folder = enrolment
    model = spk_model(spk_project)
    rc, out, err = run(capsys, predict_main, "--file", str(target), "--model", str(model),
                       "--speaker-clips", str(folder), "--json", "--top-k", "8")
    assert rc == 0, err
    result = json.loads(out)
    assert result["speaker_normalisation"] == {
        "method": "per-speaker z-score", "n_clips": 10, "kind": "clips", "path": str(folder),
        "n_files": 10, "shrunk_toward_training_speakers": {"n_speakers": 6,
                                                           "std_prior_clips": 10}}
    want = expected_proba(model, target, sorted(folder.glob("*.wav")))
    labels = json.loads((model / "card.json").read_text())["labels"]
    got = np.array([result["probabilities"][lab] for lab in labels])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Text output says how the speaker was normalised, under the model line.
    rc, out, _ = run(capsys, predict_main, "--file", str(target), "--model", str(model),
                     "--speaker-clips", str(folder))
    assert rc == 0 and out.splitlines()[1] == (
        f"speaker: speaker-normalised with 10 clips of {folder}, shrunk toward the "
        "statistics of its "
        f"{len(json.loads((model / 'card.json').read_text())['train_speakers'])} training "
        "speakers")


def test_profile_saved_by_predict_and_by_enrol_gives_the_same_answer(spk_project, enrolment,
                                                                     capsys, tmp_path):
    target, folder = enrolment
    model = str(spk_model(spk_project))
    saved = tmp_path / "from_predict.json"
    rc, direct, err = run(capsys, predict_main, "--file", str(target), "--model", model,
                          "--speaker-clips", str(folder), "--save-speaker-profile", str(saved),
                          "--json")
    assert rc == 0 and saved.is_file() and "speaker profile written" in err
    enrolled = tmp_path / "enrolled.json"
    rc, out, _ = run(capsys, ser_main, "speaker", "enrol", "--model", model, "--clips",
                     str(folder), "--out", str(enrolled))
    assert rc == 0 and "profile of 10 clips" in out
    doc = json.loads(enrolled.read_text())
    assert doc["format"] == "ser-speaker-profile" and doc["n_clips"] == 10
    assert doc["mean"] == json.loads(saved.read_text())["mean"]
    for profile in (saved, enrolled):
        rc, out, _ = run(capsys, predict_main, "--file", str(target), "--model", model,
                         "--speaker-profile", str(profile), "--json")
        result = json.loads(out)
        assert rc == 0 and result["probabilities"] == json.loads(direct)["probabilities"]
        assert result["speaker_normalisation"]["kind"] == "profile"
        assert result["speaker_normalisation"]["made_from"] == str(folder)
    # A profile is never overwritten.
    rc, _, err = run(capsys, ser_main, "speaker", "enrol", "--model", model, "--clips",
                     str(folder), "--out", str(enrolled))
    assert rc == 2
    one_line_error(err, "exists")


def test_profile_of_another_feature_definition_is_refused_in_one_line(spk_project, enrolment,
                                                                      capsys, tmp_path):
    from ser.predict.speaker_profile import feature_fingerprint

    target, folder = enrolment
    model = str(spk_model(spk_project))
    profile = tmp_path / "p.json"
    assert run(capsys, ser_main, "speaker", "enrol", "--model", model, "--clips", str(folder),
               "--out", str(profile))[0] == 0
    doc = json.loads(profile.read_text())
    other = dict(doc["feature_params"], n_coeffs=13)  # another MFCC definition
    doc |= {"feature_params": other, "feature_fingerprint": feature_fingerprint(other)}
    (tmp_path / "other.json").write_text(json.dumps(doc))
    rc, out, err = run(capsys, predict_main, "--file", str(target), "--model", model,
                       "--speaker-profile", str(tmp_path / "other.json"))
    assert rc == 2 and not out
    one_line_error(err, "other.json", "another feature definition", "enrol the speaker again")
    # Not JSON at all (e.g. a pickle): refused without running anything.
    (tmp_path / "evil.json").write_bytes(b"\x80\x04cos\nsystem\n(S'touch pwned'\ntR.")
    rc, _, err = run(capsys, predict_main, "--file", str(target), "--model", model,
                     "--speaker-profile", str(tmp_path / "evil.json"))
    assert rc == 2 and not (tmp_path / "pwned").exists()
    one_line_error(err, "not a JSON speaker profile")


def test_spk_model_without_statistics_and_too_few_clips_give_one_line(spk_project, enrolment,
                                                                      capsys, tmp_path):
    target, folder = enrolment
    model = str(spk_model(spk_project))
    rc, out, err = run(capsys, predict_main, "--file", str(target), "--model", model)
    assert rc == 2 and not out
    one_line_error(err, "speaker-normalised model", "--speaker-clips DIR",
                   "--speaker-profile FILE")
    rc, _, err = run(capsys, ser_main, "timeline", "--model", model, "--file", str(target),
                     "--out", str(tmp_path / "t"), "--no-progress")
    assert rc == 2
    one_line_error(err, "--speaker-from-recording")
    few = tmp_path / "two"
    few.mkdir()
    for clip in sorted(folder.glob("*.wav"))[:2]:
        shutil.copy(clip, few / clip.name)
    rc, _, err = run(capsys, predict_main, "--file", str(target), "--model", model,
                     "--speaker-clips", str(few))
    assert rc == 2
    one_line_error(err, "2 usable clip(s)", "at least 3")
    # A plain model does not take speaker statistics.
    plain = str(spk_project / "models" / "speaker" / "mfcc" / "svm")
    rc, _, err = run(capsys, predict_main, "--file", str(target), "--model", plain,
                     "--speaker-clips", str(folder))
    assert rc == 2
    one_line_error(err, "is not speaker-normalised")


def test_default_model_follows_what_was_given(spk_project, enrolment, capsys, monkeypatch):
    target, folder = enrolment
    monkeypatch.chdir(spk_project)
    rc, out, _ = run(capsys, predict_main, "--file", str(target), "--json")
    assert rc == 0 and json.loads(out)["model"] == "models/speaker/mfcc/svm"
    rc, out, _ = run(capsys, predict_main, "--file", str(target), "--json",
                     "--speaker-clips", str(folder))
    result = json.loads(out)
    assert rc == 0 and result["model"] == "models/speaker/mfcc_spk/svm"
    assert result["speaker_normalisation"]["n_clips"] == 10


def test_default_model_never_ranks_by_the_random_split(tmp_path):
    from ser.errors import SerError
    from ser.predict.inference import default_model_dir

    def add(protocol, fs, uar, transductive):
        (tmp_path / "metrics" / protocol / fs / "svm").mkdir(parents=True)
        (tmp_path / "metrics" / protocol / fs / "svm" / "metrics.json").write_text(
            json.dumps({"uar": uar, "transductive": transductive}))
        (tmp_path / "models" / protocol / fs / "svm").mkdir(parents=True)
        (tmp_path / "models" / protocol / fs / "svm" / "card.json").write_text("{}")

    add("random", "mfcc_spk", 0.99, True)
    add("random", "mfcc", 0.98, False)
    with pytest.raises(SerError, match="speaker-independent protocol"):
        default_model_dir(tmp_path / "models", tmp_path / "metrics", speaker_normalised=True)
    add("speaker_cv", "egemaps_spk", 0.6, True)
    add("speaker_cv", "egemaps", 0.5, False)
    add("speaker_cv", "mfcc_spk", 0.7, True)
    roots = tmp_path / "models", tmp_path / "metrics"
    assert default_model_dir(*roots) == tmp_path / "models/speaker_cv/egemaps/svm"
    assert default_model_dir(*roots, speaker_normalised=True) == \
        tmp_path / "models/speaker_cv/mfcc_spk/svm"


def test_ser_evaluate_spk_model_normalises_each_speaker_with_own_clips(spk_project, capsys,
                                                                      tmp_path):
    from ser.features import features_from_file
    from ser.features.speaker_norm import normalize_by_speaker
    from ser.predict.inference import Predictor

    model = spk_model(spk_project)
    root = spk_project / "data" / "demo" / "ravdess"
    out = tmp_path / "eval"
    rc, stdout, err = run(capsys, ser_main, "evaluate", "--model", str(model), "--corpus",
                          "ravdess", "--root", str(root), "--out", str(out), "--bootstrap",
                          "20")
    assert rc == 0, err
    assert "each of the 8 speakers z-scored with their own clips" in stdout
    assert "transductive" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["transductive"] is True and m["speaker_norm"] == "speaker"
    assert m["speaker_clips"] == {f"ravdess:{a:02d}": 15 for a in range(1, 9)}
    assert "transductive" in m["speaker_norm_note"]
    # The same answers as normalising the whole folder by speaker, as the pipeline does.
    predictor = Predictor.load(model)
    params = predictor.card["feature_params"]
    preds = __import__("pandas").read_csv(out / "predictions.csv", dtype={"speaker": str})
    X = np.vstack([features_from_file(p, params=params)[1] for p in preds["path"]])
    Z = normalize_by_speaker(X, preds["speaker"].to_numpy())
    want = np.asarray(predictor.labels)[predictor.model.predict_proba(Z).argmax(axis=1)]
    assert (preds["predicted"].to_numpy() == want).all()


def test_timeline_with_the_recording_itself(spk_project, capsys, tmp_path):
    """A recording of one demo actor (12 clips with pauses) classified with statistics of
    its own segments; with 3 clips it is refused in one line."""
    clips = actor_clips(spk_project, "08")
    model = str(spk_model(spk_project))

    def concatenate(paths, out):
        parts = []
        for p in paths:
            y, sr = sf.read(p, dtype="float32")
            parts += [y, np.zeros(int(0.8 * sr), dtype=np.float32)]
        sf.write(out, np.concatenate(parts), sr)
        return out

    long = concatenate(clips[:12], tmp_path / "actor08.wav")
    rc, out, err = run(capsys, ser_main, "timeline", "--model", model, "--file", str(long),
                       "--out", str(tmp_path / "t"), "--no-progress", "--no-plot",
                       "--speaker-from-recording")
    assert rc == 0, err
    doc = json.loads((tmp_path / "t" / "timeline.json").read_text())
    norm = doc["speaker_normalisation"]
    assert norm["kind"] == "recording" and norm["n_segments"] == len(doc["segments"]) >= 10
    assert "with the recording itself" in out and "one speaker assumed" in out
    short = concatenate(clips[:3], tmp_path / "short.wav")
    rc, _, err = run(capsys, ser_main, "timeline", "--model", model, "--file", str(short),
                     "--out", str(tmp_path / "s"), "--no-progress", "--speaker-from-recording")
    assert rc == 2 and not (tmp_path / "s").exists()
    one_line_error(err, "at least 10", "--speaker-clips")


def test_timeline_with_speaker_clips(spk_project, enrolment, capsys, tmp_path):
    _, folder = enrolment
    clip = actor_clips(spk_project, "07")[0]
    rc, out, err = run(capsys, ser_main, "timeline", "--model", str(spk_model(spk_project)),
                       "--file", str(clip), "--out", str(tmp_path / "t"), "--no-progress",
                       "--no-plot", "--speaker-clips", str(folder))
    assert rc == 0, err
    doc = json.loads((tmp_path / "t" / "timeline.json").read_text())
    assert doc["speaker_normalisation"]["kind"] == "clips"
    assert doc["speaker_normalisation"]["n_clips"] == 10


def test_statistics_floor_and_minimum():
    from ser.errors import SerError
    from ser.predict.speaker_profile import stats_from_features

    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    stats = stats_from_features(None, X, representation="summary", feature_params={},
                                source={"kind": "clips", "path": "x"})
    np.testing.assert_allclose(stats.std, [np.std([1, 3, 5]), 1.0])  # constant -> 1
    np.testing.assert_allclose(stats.apply_summary(X)[:, 1], 0.0)
    with pytest.raises(SerError, match="at least 3"):
        stats_from_features(None, X[:1], representation="summary", feature_params={},
                            source={"kind": "clips", "path": "x"})


def test_frame_statistics_match_the_pipelines_speaker_standardise():
    """Sequence models: one speaker's frames normalised as the pipeline normalises them."""
    from ser.features.logmel import speaker_standardise
    from ser.predict.speaker_profile import stats_from_features

    rng = np.random.default_rng(1)
    seqs = [rng.normal(3, 2, size=(n, 4)) for n in (50, 80, 20)]
    seqs[0][:, 3] = seqs[1][:, 3] = seqs[2][:, 3] = 7.0  # a constant coefficient
    stats = stats_from_features(seqs, np.empty((3, 0)), representation="frames",
                                feature_params={"feature_set": "mfcc"},
                                source={"kind": "clips", "path": "x"})
    want = speaker_standardise(seqs, ["s"] * 3)
    for got, ref in zip(stats.apply_frames(seqs), want, strict=True):
        np.testing.assert_allclose(got, ref, atol=1e-6)
    assert stats.std[3] == 1.0


@pytest.fixture(scope="module")
def egemaps_spk_model(tmp_path_factory) -> Path:
    """An SVM on speaker-normalised eGeMAPS functionals of the RAVDESS demo corpus."""
    project = tmp_path_factory.mktemp("egemaps_spk_project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"ravdess": "data/demo/ravdess"}
    params["train"]["protocols"] = ["speaker"]
    params["demo"]["preset"] = "tiny"
    params["egemaps"]["workers"] = 1  # no process pool: openSMILE starts once
    params["svm"]["grid"] = {"C": [1.0]}
    build_demo_project(project, params, extracted="egemaps", feature_sets=("egemaps_spk",),
                       models=("svm",), evaluate=False)
    return project / "models" / "speaker" / "egemaps_spk" / "svm"


def test_egemaps_spk_model_on_real_clips_and_a_real_recording(egemaps_spk_model, shared_data,
                                                              capsys, tmp_path):
    """A summary set other than MFCC: real RAVDESS clips with 10 clips of the same actor,
    and a timeline of 12 concatenated real clips normalised with its own segments."""
    clips = sorted((shared_data / "ravdess" / "Actor_03").glob("*.wav"))
    folder = tmp_path / "enrol"
    folder.mkdir()
    for clip in clips[1:11]:
        shutil.copy(clip, folder / clip.name)
    rc, out, err = run(capsys, predict_main, "--file", str(clips[0]), "--model",
                       str(egemaps_spk_model), "--speaker-clips", str(folder), "--json")
    assert rc == 0, err
    assert json.loads(out)["speaker_normalisation"]["n_clips"] == 10
    parts = []
    for p in clips[20:32]:
        y, sr = sf.read(p, dtype="float32")
        parts += [y, np.zeros(int(0.8 * sr), dtype=np.float32)]
    long = tmp_path / "actor03.wav"
    sf.write(long, np.concatenate(parts), sr)
    rc, out, err = run(capsys, ser_main, "timeline", "--model", str(egemaps_spk_model),
                       "--file", str(long), "--out", str(tmp_path / "t"), "--no-progress",
                       "--no-plot", "--speaker-from-recording")
    assert rc == 0, err
    doc = json.loads((tmp_path / "t" / "timeline.json").read_text())
    assert doc["speaker_normalisation"]["kind"] == "recording"
    assert len(doc["segments"]) >= 10
