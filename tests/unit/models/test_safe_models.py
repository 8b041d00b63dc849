"""Issue 17, items 2, 6 and 12: model folders that cannot crash the process or lie.

* Tree models hold no native tree type (skops leaves them untrusted: their node indices
  are used without bounds checks); crafted node arrays are refused in one line.
* Every file of a model folder is listed in SHA256SUMS and verified before it is read.
* The card's model-deciding fields (labels, feature parameters, sample rate) are checked
  against the copy inside the model file, so a consistently edited card is refused.
* predict's feature prefetch never uses an unverified card.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.errors import SerError

ROOT = Path(__file__).resolve().parents[3]

from support import MODEL_KINDS, card_for, fitted, one_line, toy_xy  # noqa: E402


def saved(tmp_path: Path, kind: str, **card_extra) -> Path:
    from ser.models.store import save_model

    model = fitted(kind)
    folder = tmp_path / kind
    save_model(folder, model, card_for(model, **card_extra))
    return folder


def plain_structures(model, kind: str) -> list[dict]:
    """The plain-array tree dicts of ``kind`` inside a model loaded without rebuilding."""
    from ser.models.plain_trees import MARK, _walk

    found: list[dict] = []

    def collect(value, _width, _owner):
        if isinstance(value, dict) and value.get(MARK) == kind:
            found.append(value)

    _walk(model, collect, set())
    return found


def craft(folder: Path, edit) -> None:
    """Load the folder's model file without the checks, ``edit`` it, save it back with a
    matching embedded card and SHA256SUMS (the attacker controls the whole folder)."""
    from ser.models.store import embed_card, skops_io, write_checksums

    sio = skops_io()
    path = folder / "model.skops"
    raw = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    edit(raw)
    sio.dump(raw, path)
    embed_card(path, json.loads((folder / "card.json").read_text()))
    write_checksums(folder)


def _first(kind):
    def pick(model):
        return plain_structures(model, kind)[0]
    return pick


TREE_FAULTS = {
    "child_out_of_range": lambda t: t["left_child"].__setitem__(0, len(t["left_child"]) + 5),
    "negative_child": lambda t: t["right_child"].__setitem__(0, -7),
    "cycle": lambda t: t["left_child"].__setitem__(int(np.flatnonzero(
        t["left_child"] != -1)[1]), 0),
    "feature_out_of_range": lambda t: t["feature"].__setitem__(0, 6),
    "one_child": lambda t: t["left_child"].__setitem__(0, -1),
    "value_shape": lambda t: t.__setitem__("values", t["values"][:-1]),
}


@pytest.mark.parametrize("kind", ["decision_tree", "random_forest"])
@pytest.mark.parametrize("fault", sorted(TREE_FAULTS))
def test_crafted_decision_trees_are_refused_in_one_line(tmp_path, kind, fault):
    from ser.models.store import load_model

    folder = saved(tmp_path, kind)

    def edit(model):
        trees = plain_structures(model, "tree")
        TREE_FAULTS[fault](trees[len(trees) // 2])

    craft(folder, edit)
    with pytest.raises(SerError) as exc:
        load_model(folder)
    msg = one_line(exc)
    assert "model.skops: inconsistent tree structure" in msg, msg


HIST_FAULTS = {
    "child_out_of_range": lambda t: t["left"].__setitem__(0, 10_000),
    "cycle": lambda t: t["right"].__setitem__(0, 0),
    "feature_out_of_range": lambda t: t["feature_idx"].__setitem__(0, 99),
    "categorical": lambda t: t["is_categorical"].__setitem__(0, 1),
}


@pytest.mark.parametrize("fault", sorted(HIST_FAULTS))
def test_crafted_gradient_boosting_trees_are_refused(tmp_path, fault):
    from ser.models.store import load_model

    folder = saved(tmp_path, "hist_gb")
    craft(folder, lambda m: HIST_FAULTS[fault](plain_structures(m, "hist_tree")[3]))
    with pytest.raises(SerError) as exc:
        load_model(folder)
    assert "inconsistent tree structure" in one_line(exc)


def test_knn_tree_is_rebuilt_from_checked_training_points(tmp_path):
    from ser.models.store import load_model

    folder = saved(tmp_path, "knn")
    model, _ = load_model(folder)
    X, _ = toy_xy()
    np.testing.assert_array_equal(model.predict_proba(X), fitted("knn").predict_proba(X))

    def narrow(m):
        knn = m.steps[-1][1]
        knn._fit_X = knn._fit_X[:, :2].copy()

    craft(folder, narrow)
    with pytest.raises(SerError) as exc:
        load_model(folder)
    assert "inconsistent tree structure" in one_line(exc)


def test_a_native_tree_in_a_model_file_is_refused_as_untrusted(tmp_path):
    """The issue's file: a skops dump holding sklearn's own Tree is never loaded."""
    from ser.models.store import load_model, skops_io, write_checksums

    folder = saved(tmp_path, "decision_tree")
    skops_io().dump(fitted("decision_tree"), folder / "model.skops")  # native Tree inside
    from ser.models.store import embed_card

    embed_card(folder / "model.skops", json.loads((folder / "card.json").read_text()))
    write_checksums(folder)
    with pytest.raises(SerError) as exc:
        load_model(folder)
    msg = one_line(exc)
    assert "untrusted types" in msg and "sklearn.tree._tree.Tree" in msg


def test_skops_itself_leaves_no_type_of_our_models_untrusted(tmp_path):
    """With skops imported normally (its full trust list), every saved kind is trusted."""
    from ser.models.plain_trees import to_plain
    from ser.models.store import skops_io

    for kind in MODEL_KINDS:
        skops_io().dump(to_plain(fitted(kind)), tmp_path / f"{kind}.skops")
    script = ("import json, sys\nimport skops.io as sio\n"
              "print(json.dumps(sorted({t for f in sys.argv[1:] "
              "for t in sio.get_untrusted_types(file=f)})))\n")
    out = subprocess.run([sys.executable, "-c", script,
                          *map(str, sorted(tmp_path.glob("*.skops")))],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


def test_predict_on_a_crafted_tree_model_is_one_line_not_a_crash(tmp_path):
    """The probe as written: predict.py on a crafted decision tree (was rc 139)."""
    folder = saved(tmp_path, "decision_tree")
    craft(folder, lambda m: plain_structures(m, "tree")[0]["left_child"].__setitem__(0, 10**9))
    clip = tmp_path / "c.wav"
    sf.write(clip, 0.3 * np.sin(np.linspace(0, 2000, 32000)).astype(np.float32), 16000)
    env = os.environ | {"KERAS_BACKEND": "jax"}
    python, ser = sys.executable, str(Path(sys.executable).parent / "ser")
    for cmd in ([python, str(ROOT / "predict.py"), "--file", str(clip), "--model", str(folder)],
                [python, str(ROOT / "predict.py"), "--file", str(clip), "--model", str(folder),
                 "--segments", "--out", str(tmp_path / "tl")],
                [ser, "timeline", "--file", str(clip), "--model", str(folder),
                 "--out", str(tmp_path / "tl2")]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "inconsistent tree structure" in proc.stderr
        assert not (tmp_path / "tl").exists()


# ----------------------------------------------------------------- SHA256SUMS


@pytest.mark.parametrize("fault", ["unlisted_file", "listed_missing", "symlink", "fifo",
                                   "folder_link", "model_unlisted"])
def test_every_file_of_the_folder_is_listed_and_verified(tmp_path, fault):
    from ser.models.store import CHECKSUMS, load_model, read_card

    folder = saved(tmp_path, "svm")
    sums = folder / CHECKSUMS
    if fault == "unlisted_file":
        (folder / "extra.py").write_text("print('hi')\n")
        expect = "extra.py: not listed in SHA256SUMS"
    elif fault == "listed_missing":
        (folder / "card.md").unlink()
        expect = "card.md: listed in SHA256SUMS but missing"
    elif fault == "symlink":
        (folder / "link").symlink_to("/etc/passwd")
        expect = "link: not listed in SHA256SUMS"
    elif fault == "fifo":
        os.mkfifo(folder / "pipe")
        expect = "pipe: a folder link or special file"
    elif fault == "folder_link":
        (folder / "sub").symlink_to("/etc")
        expect = "sub: a folder link or special file"
    else:
        sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines()
                                if not line.endswith("model.skops")))
        expect = "model.skops: not listed in SHA256SUMS"
    for check in (read_card, load_model):
        with pytest.raises(SerError) as exc:
            check(folder)
        assert expect in one_line(exc)


def test_snakemakes_folder_stamp_is_allowed_but_not_a_link_named_like_it(tmp_path):
    """Snakemake writes .snakemake_timestamp into folder outputs after training; the
    model still loads (the stamp is never read), but a link under that name is refused."""
    from ser.models.store import load_model

    folder = saved(tmp_path, "svm")
    (folder / ".snakemake_timestamp").write_text("")
    load_model(folder)
    (folder / ".snakemake_timestamp").unlink()
    (folder / ".snakemake_timestamp").symlink_to("/etc/passwd")
    with pytest.raises(SerError) as exc:
        load_model(folder)
    assert ".snakemake_timestamp: not listed in SHA256SUMS" in one_line(exc)


def test_a_link_to_a_listed_file_is_verified_like_the_file(tmp_path):
    """DVC's cache.type symlink checks outputs out as links: still loads, still verified."""
    from ser.models.store import load_model

    folder = saved(tmp_path, "svm")
    store = tmp_path / "cache"
    store.mkdir()
    (folder / "card.md").rename(store / "card.md")
    (folder / "card.md").symlink_to(store / "card.md")
    load_model(folder)
    (store / "card.md").write_text("edited\n")
    with pytest.raises(SerError) as exc:
        load_model(folder)
    assert "card.md: checksum differs" in one_line(exc)


# ----------------------------------------------------------------- card vs model file


def _edit_consistently(folder: Path, **changes) -> None:
    from ser.models.store import CARD, write_checksums

    card = json.loads((folder / CARD).read_text())
    for key, value in changes.items():
        if key in ("sample_rate", "max_seconds"):
            card["feature_params"][key] = value
            if key == "sample_rate" and "sample_rate" in card:
                card["sample_rate"] = value
        else:
            card[key] = value
    (folder / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    write_checksums(folder)


@pytest.mark.parametrize("edit", ["sample_rate", "max_seconds", "all"])
def test_consistently_edited_card_is_refused(tmp_path, edit):
    from ser.models.store import load_model

    folder = saved(tmp_path, "svm", sample_rate=16000)
    changes = {"sample_rate": {"sample_rate": 8000}, "max_seconds": {"max_seconds": None},
               "all": {"sample_rate": 8000, "max_seconds": None}}[edit]
    _edit_consistently(folder, **changes)
    with pytest.raises(SerError) as exc:
        load_model(folder)
    msg = one_line(exc)
    assert "card.json" in msg and "feature_params" in msg and "card was edited" in msg


def _keras_folder(tmp_path: Path) -> Path:
    import keras

    from ser.models.store import save_model

    inp = keras.Input((5, 3))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    card = card_for(fitted("svm")) | {"format": "keras", "labels": ["angry", "happy", "sad"]}
    save_model(tmp_path / "k", model, card)
    return tmp_path / "k"


def test_reversed_labels_on_a_keras_model_are_refused(tmp_path):
    from ser.models.store import load_model

    folder = _keras_folder(tmp_path)
    load_model(folder)  # the untouched folder loads
    _edit_consistently(folder, labels=["sad", "happy", "angry"], sample_rate=8000,
                       max_seconds=None)
    with pytest.raises(SerError) as exc:
        load_model(folder)
    msg = one_line(exc)
    assert "labels" in msg and "card was edited" in msg


def test_reversed_labels_on_a_skops_model_are_refused(tmp_path):
    from ser.models.store import load_model

    folder = saved(tmp_path, "svm")
    _edit_consistently(folder, labels=["sad", "happy", "angry"])
    with pytest.raises(SerError) as exc:
        load_model(folder)
    assert "do not match the model's classes" in one_line(exc)


def test_a_model_file_without_its_card_copy_is_refused(tmp_path):
    from ser.models.plain_trees import to_plain
    from ser.models.store import load_model, skops_io, write_checksums

    folder = saved(tmp_path, "svm")
    skops_io().dump(to_plain(fitted("svm")), folder / "model.skops")  # as an old version did
    write_checksums(folder)
    with pytest.raises(SerError) as exc:
        load_model(folder)
    assert "holds no copy of its card" in one_line(exc)


# ----------------------------------------------------------------- prefetch (item 6)


@pytest.mark.parametrize("resummed", [False, True])
def test_prefetch_never_extracts_with_an_unverified_card(tmp_path, monkeypatch, resummed):
    """An edited card (max_seconds: null) is refused before any feature is extracted."""
    import ser.predict.inference as inference

    folder = saved(tmp_path, "svm")
    card = json.loads((folder / "card.json").read_text())
    card["feature_params"]["max_seconds"] = None
    (folder / "card.json").write_text(json.dumps(card))
    if resummed:
        from ser.models.store import write_checksums

        write_checksums(folder)
    submitted = []
    monkeypatch.setattr(inference, "_threaded", lambda: False)
    monkeypatch.setattr(inference, "features_for_files",
                        lambda *a, **k: submitted.append(a))
    prefetch = inference.FeaturePrefetch(folder, [tmp_path / "long.wav"])
    assert prefetch._future is None and prefetch._pool is None and not submitted


def test_loading_a_keras_model_leaves_kerass_unused_integrations_out(tmp_path):
    """predict.py with a Keras model: scikit-learn, matplotlib, PIL and requests (which
    Keras imports when installed) stay out of the process, and stay importable."""
    folder = _keras_folder(tmp_path)
    code = ("import sys; from ser.models.store import load_model;"
            "from ser.models.keras_import import KERAS_UNUSED_INTEGRATIONS;"
            f"model, card = load_model({str(folder)!r});"
            "print(sorted(n for n in KERAS_UNUSED_INTEGRATIONS if n in sys.modules));"
            "import sklearn, matplotlib; print('importable')")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "importable"]
