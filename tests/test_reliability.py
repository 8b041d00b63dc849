"""Reliability matrix (issue 8): one case per fault a hostile or clumsy user can cause.

Every case checks that the fault is refused or reported with one readable line
(``SerError``; ``ser.cli.run_cli`` prints it and exits 2) and that nothing
outside what the tool wrote is lost. The README's "Reliability" and
"Troubleshooting" sections list the same cases.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.errors import SerError

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

    from ser.models.classical import make_pipeline

    basic = ["svm", "knn", "random_forest", "decision_tree"]
    if kind in basic:
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


MODEL_KINDS = ["svm", "knn", "random_forest", "decision_tree", "hist_gradient_boosting",
               "voting_soft"]


def card_for(model, **extra):
    from ser.config import load_params
    from ser.features import feature_params_fingerprint

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
    import skops.io as sio

    from ser.models.store import TRUSTED_TYPES

    needed = set()
    for kind in MODEL_KINDS:
        sio.dump(fitted(kind), tmp_path / f"{kind}.skops")
        needed |= set(sio.get_untrusted_types(file=tmp_path / f"{kind}.skops"))
    assert needed == set(TRUSTED_TYPES)
    assert not any(t.endswith(".") for t in TRUSTED_TYPES)  # exact names, never a prefix


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
    import skops.io as sio

    from ser.models.store import load_model, save_model

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
