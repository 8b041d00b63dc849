"""Model files never run code: every kind saves and loads; crafted or edited folders are
refused in one line.

Part of the reliability matrix (issue 8): one case per fault a hostile or clumsy user
can cause, refused or reported in one readable line, nothing of the user's lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import (
    MODEL_KINDS,
    card_for,
    edit_card,
    exec_pipeline,
    fitted,
    one_line,
    toy_xy,
)

from ser.errors import SerError

ROOT = Path(__file__).resolve().parents[3]


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
        edit_card(f, lambda c: c.update(labels=c["labels"][::-1]))
    elif fault.endswith("_edited"):
        key = fault.removesuffix("_edited")
        edit_card(f, lambda c: c["feature_params"].update({key: 1}))
    elif fault.startswith("card_bad_json"):
        (f / "card.json").write_text("{not json")
    elif fault == "card_schema_resummed":
        edit_card(f, lambda c: c.update(labels=["a", "a"]))
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
