"""Reliability matrix (issue 8): one case per fault a hostile or clumsy user can cause.

Every case checks that the fault is refused or reported with one readable line
(``SerError``; ``ser.cli.run_cli`` prints it and exits 2) and that nothing
outside what the tool wrote is lost. The README's "Reliability" and
"Troubleshooting" sections list the same cases.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.errors import SerError
from ser.models import CLASSICAL_MODELS

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------- helpers


def toy_xy(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["angry", "happy", "sad"] * (n // 3))
    X = rng.normal(size=(n, d)) + (np.arange(n) % 3)[:, None]
    return X, y


def fitted(kind: str):
    """A fitted pipeline of every kind the project saves (or other helpers add)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ser.models import CLASSICAL_MODELS
    from ser.models.classical import make_pipeline

    basic = ["svm", "knn", "random_forest", "decision_tree"]
    if kind in CLASSICAL_MODELS:
        model = make_pipeline(kind, seed=0)
    elif kind == "hist_gradient_boosting":
        model = Pipeline([("scale", "passthrough"),
                          ("clf", HistGradientBoostingClassifier(random_state=0, max_iter=20))])
    else:  # soft-voting ensemble of all of them
        members = [(k, make_pipeline(k, seed=0)) for k in basic]
        members.append(("hgb", HistGradientBoostingClassifier(random_state=0, max_iter=20)))
        model = Pipeline([("scale", StandardScaler()),
                          ("clf", VotingClassifier(members, voting="soft"))])
    X, y = toy_xy()
    return model.fit(X, y)


#: Every registered classical model, plus two pipelines other helpers may build.
MODEL_KINDS = [*CLASSICAL_MODELS, "hist_gradient_boosting", "voting_soft"]


def card_for(model, **extra):
    from ser.features import feature_params_fingerprint
    from ser.params.load import load_params

    fp = feature_params_fingerprint(load_params(Path(__file__).parents[1] / "params.yaml")
                                    ["mfcc"])
    return {"format": "skops", "labels": [str(c) for c in model.classes_],
            "feature_params": fp, "model": "svm", **extra}


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# ------------------------------------------------- 1. model files never run code


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_model_kind_saves_and_loads(tmp_path, kind):
    from ser.models.store import load_model, save_model

    model = fitted(kind)
    save_model(tmp_path / "m", model, card_for(model))
    loaded, card = load_model(tmp_path / "m")
    X, _ = toy_xy()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_trusted_types_are_exactly_what_our_pipelines_need(tmp_path):
    """Every model kind saved, then listed by skops in a fresh process that imports it
    the way :func:`ser.models.store.skops_io` does (no scan of all of scikit-learn, so
    the estimators are listed too): exactly the allow-list, and the scan was skipped."""
    import subprocess
    import sys

    from ser.models import MODEL_SPECS
    from ser.models.plain_trees import to_plain
    from ser.models.store import TRUSTED_TYPES, skops_io, trusted_estimators

    for kind in MODEL_KINDS:
        skops_io().dump(to_plain(fitted(kind)), tmp_path / f"{kind}.skops")
    script = (
        "import json, sys\n"
        "from ser.models.store import skops_io\n"
        "sio = skops_io()\n"
        "needed, each = set(), {}\n"
        "for f in sys.argv[1:]:\n"
        "    each[f.rsplit('/', 1)[-1][:-6]] = sorted(sio.get_untrusted_types(file=f))\n"
        "    needed |= set(each[f.rsplit('/', 1)[-1][:-6]])\n"
        "print(json.dumps({'needed': sorted(needed), 'each': each,\n"
        "                  'scanned': 'sklearn.semi_supervised' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", script,
                          *map(str, sorted(tmp_path.glob("*.skops")))],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.stdout)
    assert not result["scanned"]
    assert set(result["needed"]) == set(TRUSTED_TYPES | trusted_estimators())
    assert not any(t.endswith(".") for t in TRUSTED_TYPES | trusted_estimators())  # exact names
    for name, spec in MODEL_SPECS.items():  # each spec names exactly its own file's types
        if spec.kind == "classical":
            assert set(result["each"][name]) == set(spec.saved_types), name


def exec_pipeline(marker: Path):
    """The issue's attack: FunctionTransformers full_like -> ravel -> min -> exec."""
    import builtins

    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return Pipeline([
        ("fill", FunctionTransformer(np.full_like, validate=False,
                                     kw_args={"fill_value": code, "dtype": object})),
        ("flat", FunctionTransformer(np.ravel, validate=False)),
        ("pick", FunctionTransformer(builtins.min, validate=False)),
        ("run", FunctionTransformer(builtins.exec, validate=False)),
    ])


def test_crafted_exec_pipeline_is_refused_with_one_line(tmp_path):
    from ser.models.store import load_model, save_model, skops_io

    sio = skops_io()
    marker = tmp_path / "pwned"
    evil = exec_pipeline(marker)
    # The attack is real: trusting every type it names runs the attacker's code.
    sio.dump(evil, tmp_path / "e.skops")
    sio.load(tmp_path / "e.skops",
             trusted=sio.get_untrusted_types(file=tmp_path / "e.skops")).transform(np.zeros(2))
    assert marker.read_text() == "pwned"
    marker.unlink()
    save_model(tmp_path / "m", evil, {"format": "skops", "labels": ["a"], "feature_params": {}})
    with pytest.raises(SerError) as exc:
        load_model(tmp_path / "m")
    msg = one_line(exc)
    assert "model.skops" in msg and "builtins.exec" in msg and "untrusted" in msg
    assert not marker.exists()


@pytest.fixture()
def svm_folder(tmp_path):
    from ser.models.store import save_model

    model = fitted("svm")
    save_model(tmp_path / "m", model, card_for(model))
    return tmp_path / "m"


def _edit_card(folder: Path, edit) -> None:
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize("fault, expect", [
    ("labels_reordered", "card.json: checksum differs"),
    ("sample_rate_edited", "card.json: checksum differs"),
    ("n_fft_edited", "card.json: checksum differs"),
    ("trim_db_edited", "card.json: checksum differs"),
    ("max_seconds_edited", "card.json: checksum differs"),
    ("card_bad_json", "card.json: checksum differs"),
    ("model_corrupt", "model.skops: checksum differs"),
    ("no_checksums", "SHA256SUMS: missing"),
    ("card_bad_json_resummed", "card.json: not valid JSON"),
    ("card_schema_resummed", "invalid model card at labels"),
    ("labels_reordered_resummed", "do not match the model's classes"),
    ("model_corrupt_resummed", "model.skops: not a readable skops model"),
])
def test_edited_or_corrupt_model_folder_is_refused(svm_folder, fault, expect):
    from ser.models.store import CHECKSUMS, load_model, write_checksums

    f = svm_folder
    if fault.startswith("labels_reordered"):
        _edit_card(f, lambda c: c.update(labels=c["labels"][::-1]))
    elif fault.endswith("_edited"):
        key = fault.removesuffix("_edited")
        _edit_card(f, lambda c: c["feature_params"].update({key: 1}))
    elif fault.startswith("card_bad_json"):
        (f / "card.json").write_text("{not json")
    elif fault == "card_schema_resummed":
        _edit_card(f, lambda c: c.update(labels=["a", "a"]))
    elif fault.startswith("model_corrupt"):
        (f / "model.skops").write_bytes(b"PK\x03\x04 truncated")
    elif fault == "no_checksums":
        (f / CHECKSUMS).unlink()
    if fault.endswith("_resummed"):  # a consistent folder: the deeper check must catch it
        write_checksums(f)
    with pytest.raises(SerError) as exc:
        load_model(f)
    assert expect in one_line(exc)


def test_keras_lambda_layer_and_size_mismatch_are_one_line(tmp_path):
    import keras

    from ser.models.store import load_model, save_model

    inp = keras.Input((5, 3))
    x = keras.layers.Lambda(lambda t: t * 2)(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    save_model(tmp_path / "lam", keras.Model(inp, out),
               {"format": "keras", "labels": ["a", "b", "c"], "feature_params": {}})
    with pytest.raises(SerError) as exc:
        load_model(tmp_path / "lam")
    assert "model.keras: contains a Lambda layer" in one_line(exc)

    inp = keras.Input((5, 3))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    save_model(tmp_path / "k", keras.Model(inp, out),
               {"format": "keras", "labels": ["a", "b"], "feature_params": {}})
    with pytest.raises(SerError) as exc:
        load_model(tmp_path / "k")
    assert "lists 2 labels but the model has 3 outputs" in one_line(exc)
    (tmp_path / "k" / "model.keras").write_bytes(b"garbage")
    from ser.models.store import write_checksums

    write_checksums(tmp_path / "k")
    with pytest.raises(SerError) as exc:
        load_model(tmp_path / "k")
    assert "model.keras: not a loadable Keras model" in one_line(exc)


# ------------------------------------------------- 3. the corpus scan stays in its root


RAV = "03-01-{e:02d}-01-01-01-{a:02d}"


def tone(seconds=1.0, sr=16000, amp=0.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.size)).astype("f4")


def run_with_timeout(fn, seconds=30):
    """Run ``fn`` in a thread; fail (instead of hanging CI) if it blocks."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"blocked for more than {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture()
def hostile_root(tmp_path):
    root = tmp_path / "corpus"
    (root / "Actor_01").mkdir(parents=True)
    sf.write(root / "Actor_01" / f"{RAV.format(e=1, a=1)}.wav", tone(), 16000)
    (root / "up").symlink_to("..")                          # -> .. (the corpus' parent)
    (root / "slash").symlink_to("/")                        # -> /
    (root / "Actor_01" / "loop").symlink_to("..")           # -> the root itself: no loop
    os.mkfifo(root / "Actor_01" / f"{RAV.format(e=2, a=1)}.wav")  # FIFO named .wav
    (root / "Actor_01" / f"{RAV.format(e=3, a=1)}.wav").symlink_to(tmp_path / "gone.wav")
    outside = tmp_path / f"{RAV.format(e=4, a=1)}.wav"
    sf.write(outside, tone(), 16000)
    (root / "Actor_01" / outside.name).symlink_to(outside)  # file link outside the root
    return root


@pytest.mark.parametrize("case, reason", [
    ("up", "symbolic link to a folder outside the corpus root"),
    ("slash", "symbolic link to a folder outside the corpus root"),
    (f"Actor_01/{RAV.format(e=2, a=1)}.wav", "a FIFO (named pipe)"),
    (f"Actor_01/{RAV.format(e=3, a=1)}.wav", "dangling symbolic link"),
    (f"Actor_01/{RAV.format(e=4, a=1)}.wav", "symbolic link pointing outside the corpus root"),
])
def test_corpus_scan_never_leaves_its_root_nor_blocks(hostile_root, case, reason):
    from ser.corpora.ravdess import parse

    result = run_with_timeout(lambda: parse(hostile_root))
    assert [Path(r["path"]).name for r in result.rows] == [f"{RAV.format(e=1, a=1)}.wav"]
    rejected = dict(result.rejected)
    assert reason in rejected[str(hostile_root / case)]


def test_other_soundfile_extensions_are_scanned(tmp_path):
    from ser.corpora.ravdess import parse

    actor = tmp_path / "Actor_02"
    actor.mkdir()
    for ext, emotion in (("flac", 1), ("ogg", 2), ("aiff", 3), ("WAV", 4)):
        sf.write(actor / f"{RAV.format(e=emotion, a=2)}.{ext}", tone(), 16000)
    result = parse(tmp_path)
    assert sorted(Path(r["path"]).suffix for r in result.rows) == [".WAV", ".aiff", ".flac",
                                                                    ".ogg"]


def truncated_wav(path: Path) -> Path:
    sf.write(path, tone(2.0), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header still claims 2 s
    return path


def test_truncated_wav_is_rejected_by_the_scan_and_loads_what_is_there(tmp_path):
    from ser.audio import load_audio
    from ser.corpora.ravdess import parse

    (tmp_path / "Actor_03").mkdir()
    bad = truncated_wav(tmp_path / "Actor_03" / f"{RAV.format(e=1, a=3)}.wav")
    result = parse(tmp_path)
    assert not result.rows
    assert dict(result.rejected)[str(bad)].startswith("truncated: the header promises")
    y, sr = load_audio(bad)
    assert sr == 16000 and 0.9 * 16000 < y.size < 1.1 * 16000


def test_non_utf8_folder_name_does_not_crash_the_manifest(tmp_path):
    import pandas as pd

    from ser.corpora.ravdess import parse

    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xff"))
    (root / "Actor_01").mkdir(parents=True)
    sf.write(os.fsencode(root / "Actor_01" / f"{RAV.format(e=1, a=1)}.wav"), tone(), 16000)
    result = parse(root)
    assert not result.rows
    reason = result.rejected[0][1]
    assert "not valid UTF-8" in reason and "\\xff" in result.rejected[0][0]
    result.rejected_frame().to_csv(tmp_path / "rejected.csv", index=False)
    result.to_frame().to_parquet(tmp_path / "m.parquet")
    assert "\\xff" in pd.read_csv(tmp_path / "rejected.csv")["path"][0]


# ------------------------------------------------- 4. audio checks at feature time


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
    mfcc = load_params(Path(__file__).parents[1] / "params.yaml")["mfcc"]
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

    mfcc = load_params(Path(__file__).parents[1] / "params.yaml")["mfcc"]
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(tone(1.0, sr=8000), 60), 8000)  # 60 s
    y, _ = load_audio(long, max_seconds=read_seconds(mfcc))
    assert y.size == int((mfcc["max_seconds"] + READ_MARGIN_SECONDS) * 8000)
    seq, _, duration = file_features(long, params=mfcc)
    assert duration == pytest.approx(60.0)  # the true length, from the header
    assert seq.shape[0] <= mfcc["max_seconds"] * mfcc["sample_rate"] / mfcc["hop_length"] + 1


# ------------------------------------------------- 6. predict.py notes and model faults


@pytest.fixture()
def flat_model(tmp_path):
    """A saved model that answers the class prior (1/3 each): always low confidence."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ser.features import feature_params_fingerprint
    from ser.features.mfcc import FeatureParams, summary_names
    from ser.models.store import save_model
    from ser.params.load import load_params

    mfcc = load_params(Path(__file__).parents[1] / "params.yaml")["mfcc"]
    fp = FeatureParams.from_mapping(mfcc)
    names = summary_names(fp.n_coeffs, deltas=fp.deltas)
    rng = np.random.default_rng(0)
    y = np.array(["angry", "happy", "sad"] * 10)
    model = Pipeline([("scale", StandardScaler()),
                      # so regularised that it answers the class priors (1/3 each)
                      ("clf", LogisticRegression(C=1e-9))]).fit(
        rng.normal(size=(30, len(names))), y)
    card = {"format": "skops", "labels": ["angry", "happy", "sad"], "model": "dummy",
            "feature_params": feature_params_fingerprint(mfcc), "feature_columns": names}
    save_model(tmp_path / "models" / "speaker" / "dummy", model, card)
    return tmp_path / "models" / "speaker" / "dummy"


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
        _edit_card(model, lambda c: c.update(labels=["sad", "happy", "angry"]))
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


# ------------------------------------------------- 2. writes never delete foreign files


def small_ravdess(root: Path) -> Path:
    for a in (1, 2):
        (root / f"Actor_{a:02d}").mkdir(parents=True)
        for e in (5, 3, 4):  # angry, happy, sad
            sf.write(root / f"Actor_{a:02d}" / f"{RAV.format(e=e, a=a)}.wav",
                     tone(seed=e + a), 16000)
    return root


def test_import_dest_next_to_an_existing_corpus_keeps_it(tmp_path, monkeypatch):
    from ser.corpora.acquire import IMPORT_RECORD, import_corpus

    monkeypatch.chdir(tmp_path)
    src = small_ravdess(tmp_path / "src")
    data = tmp_path / "data"
    (data / "raw" / "tess").mkdir(parents=True)
    (data / "raw" / "tess" / "keep.wav").write_bytes(b"user audio")
    (data / "notes.txt").write_text("mine")
    with pytest.raises(SerError) as exc:
        import_corpus("ravdess", src, dest=data, dvc_add=False)
    assert "exists and is not empty" in one_line(exc) and "--force" in str(exc.value)
    import_corpus("ravdess", src, dest=data, dvc_add=False, force=True)
    assert (data / "raw" / "tess" / "keep.wav").read_bytes() == b"user audio"
    assert (data / "notes.txt").read_text() == "mine"
    assert (data / "Actor_01" / f"{RAV.format(e=5, a=1)}.wav").is_file()
    # A second forced import replaces only what the first one wrote.
    (src / "Actor_02" / f"{RAV.format(e=4, a=2)}.wav").unlink()
    import_corpus("ravdess", src, dest=data, dvc_add=False, force=True)
    assert not (data / "Actor_02" / f"{RAV.format(e=4, a=2)}.wav").exists()
    assert (data / "notes.txt").read_text() == "mine"
    assert "Actor_01/" in (data / IMPORT_RECORD).read_text()
    assert not list(tmp_path.glob("**/*.partial"))


def test_import_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    from ser.corpora.acquire import import_corpus

    src = small_ravdess(tmp_path / "src")
    dest = tmp_path / "dest"
    (dest / "Actor_01").mkdir(parents=True)
    clash = dest / "Actor_01" / f"{RAV.format(e=5, a=1)}.wav"
    clash.write_bytes(b"user take")
    with pytest.raises(SerError) as exc:
        import_corpus("ravdess", src, dest=dest, dvc_add=False, force=True)
    assert "were not written by an import" in one_line(exc)
    assert clash.read_bytes() == b"user take"


def test_import_dest_dot_is_a_clear_message(tmp_path, monkeypatch, capsys):
    from ser import cli

    monkeypatch.chdir(tmp_path)
    src = small_ravdess(tmp_path / "src")
    assert cli.main(["data", "import", "ravdess", str(src), "--dest", ".", "--no-dvc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the current folder" in err


def test_import_from_a_folder_with_a_fifo_does_not_hang(tmp_path):
    from ser.corpora.acquire import import_corpus

    src = small_ravdess(tmp_path / "src")
    os.mkfifo(src / "Actor_01" / f"{RAV.format(e=6, a=1)}.wav")
    run_with_timeout(lambda: import_corpus("ravdess", src, dest=tmp_path / "out" / "ravdess",
                                           dvc_add=False))
    assert not list((tmp_path / "out").glob("*.partial"))
    assert len(list((tmp_path / "out" / "ravdess").rglob("*.wav"))) == 6


def test_zip_bomb_is_refused_naming_the_limit(tmp_path):
    from ser.corpora.acquire import import_corpus

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("OAF_back_angry.wav", b"\0" * (40 << 20))  # 40 MB of zeros
    assert bomb.stat().st_size < 100_000
    with pytest.raises(SerError) as exc:
        import_corpus("tess", bomb, dest=tmp_path / "tess", dvc_add=False)
    msg = one_line(exc)
    assert "bomb.zip: expands" in msg and "limit of 20x" in msg and "--max-ratio" in msg
    with pytest.raises(SerError) as exc:
        import_corpus("tess", bomb, dest=tmp_path / "tess", dvc_add=False, max_ratio=1e6,
                      max_unpacked_gb=0.01)
    assert "above the limit of 0.01 GB" in one_line(exc) and "--max-unpacked-gb" in msg + str(
        exc.value)
    assert not (tmp_path / "tess").exists()


def test_evaluate_out_refuses_a_non_empty_folder_and_keeps_foreign_files(
        flat_model, tmp_path, monkeypatch, capsys):
    from ser import cli

    monkeypatch.chdir(tmp_path)
    root = small_ravdess(tmp_path / "rav")
    out = tmp_path / "results"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    args = ["evaluate", "--model", str(flat_model), "--corpus", "ravdess", "--root", str(root),
            "--out", str(out), "--bootstrap", "10"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "holds 1 file(s) this tool did not write (e.g. mine.txt)" in err and "--force" in err
    assert cli.main([*args, "--force"]) == 0
    assert (out / "mine.txt").read_text() == "keep"
    assert json.loads((out / "metrics.json").read_text())["n_test"] == 6
    assert not list(tmp_path.glob("*.partial"))


def test_evaluate_default_out_is_unique_per_model_folder():
    from ser.evaluation.external import default_external_out

    a = default_external_out(Path("models/speaker/svm"), "ravdess")
    b = default_external_out(Path("models/random/svm"), "ravdess")
    assert a != b and a == Path("metrics/external/ravdess--models-speaker-svm")


# ------------------------------------------------- 5. params: unknown keys and bad ranges


@pytest.mark.parametrize("edit, expect", [
    (lambda p: p["splits"].update(test_sise=0.2), "unknown parameter splits.test_sise"),
    (lambda p: p.update(spilts={}), "unknown parameter spilts"),
    (lambda p: p["mfcc"].update(nfft=512), "unknown parameter mfcc.nfft"),
    (lambda p: p["lstm_seed"].update(unit=3), "unknown parameter lstm_seed.unit"),
    (lambda p: p["svm"].update(grids={}), "unknown parameter svm.grids"),
    (lambda p: p["svm"]["grid"].update(C=[-1]), "bad parameter svm.grid.C: value -1"),
    (lambda p: p["svm"]["grid"].update(gama=[1]), "SVC has no parameter 'gama'"),
    (lambda p: p["knn"]["grid"].update(n_neighbors=[0]), "bad parameter knn.grid.n_neighbors"),
    (lambda p: p["random_forest"]["grid"].update(n_estimators=[0]),
     "bad parameter random_forest.grid.n_estimators"),
    (lambda p: p["splits"].update(test_size=0.99), "splits.test_size: 0.99 is greater"),
    (lambda p: p["mfcc"].update(min_rms_db=3), "mfcc.min_rms_db"),
    (lambda p: p["crnn"].update(chanels=8), "unknown parameter crnn.chanels"),
    (lambda p: p["logmel"].update(deltas=3), "logmel.deltas"),
    (lambda p: p["splits"].update(speaker_cv_folds=-1), "splits.speaker_cv_folds"),
    (lambda p: p["hist_gb"]["grid"].update(learning_rat=[0.1]),
     "HistGradientBoostingClassifier has no parameter 'learning_rat'"),
    (lambda p: p["train"].update(models=["crnn"], feature_sets=["egemaps"]),
     "no model of train.models can read a feature set"),
])
def test_params_faults_are_one_line_naming_the_key(edit, expect):
    import copy

    from ser.params.load import ConfigError, load_params, validate_params

    params = copy.deepcopy(load_params(Path(__file__).parents[1] / "params.yaml"))
    edit(params)
    with pytest.raises(ConfigError) as exc:
        validate_params(params, source="params.yaml")
    assert expect in one_line(exc)


def test_knn_neighbors_above_the_smallest_fold_is_caught_before_fitting():
    from ser.errors import ConfigError
    from ser.models.classical import check_neighbors

    check_neighbors({"n_neighbors": [3, 7]}, 40)
    with pytest.raises(ConfigError) as exc:
        check_neighbors({"n_neighbors": [3, 5000]}, 40)
    assert "knn.grid.n_neighbors: [5000] exceed the 40 clips" in one_line(exc)


def test_tune_refuses_too_many_neighbours_before_any_fit(monkeypatch):
    import numpy as np
    from sklearn.model_selection import GridSearchCV

    from ser.models.classical import tune
    from ser.params.load import ConfigError

    def never(*args, **kwargs):
        raise AssertionError("GridSearchCV.fit must not run")

    monkeypatch.setattr(GridSearchCV, "fit", never)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.repeat(["a", "b", "c"], 20)
    groups = np.tile([f"s{i}" for i in range(6)], 10)
    with pytest.raises(ConfigError) as exc:
        tune("knn", X, y, groups=groups, protocol="speaker", grid={"n_neighbors": [3, 500]},
             scoring="f1_macro", cv_folds=3, seed=0)
    assert "knn.grid.n_neighbors: [500] exceed the 40 clips" in one_line(exc)


def test_validate_or_exit_prints_the_scripts_line_for_snakemake(capsys):
    import copy

    from ser.params.load import load_params, validate_or_exit

    params = copy.deepcopy(load_params(Path(__file__).parents[1] / "params.yaml"))
    validate_or_exit(params)
    params["splits"]["test_sise"] = 1
    with pytest.raises(SystemExit) as exc:
        validate_or_exit(params, "params.yaml")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: params.yaml: unknown parameter splits.test_sise")


def test_atomic_path_never_replaces_the_working_tree(tmp_path, monkeypatch):
    from ser.outputs import atomic_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep")
    for target in (".", str(tmp_path), str(tmp_path.parent)):
        with pytest.raises(SerError) as exc, atomic_path(target) as tmp:
            tmp.mkdir()
        assert "current folder or one above it" in one_line(exc)
    assert (tmp_path / "mine.txt").read_text() == "keep"
