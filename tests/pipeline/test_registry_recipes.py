"""The CONTRIBUTING.md recipes hold: a classical model, a feature set or a corpus is added by
one registry entry (plus its module and its test), nothing else.

Each test registers a toy entry in the test only (``monkeypatch`` on the registry, undone
afterwards) and shows that every list the workflow derives from the registries (the params
schema, the trusted types of saved models, the stage CLIs' choices, the parsers) takes it.
The model recipe runs the toy model through ``train.py`` and ``evaluate.py`` in-process on
the tiny generated RAVDESS-layout demo corpus.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import yaml
from support import ROOT, build_demo_project

from ser.errors import ConfigError

TOY_MODEL = "gaussian_nb"


def gaussian_nb(*, seed: int):
    """The toy model's estimator factory (GaussianNB has no randomness: ``seed`` unused)."""
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


@pytest.fixture
def toy_model(monkeypatch):
    """A classical model registered by this test only: the one entry the recipe adds."""
    from ser.models import MODEL_SPECS, classical_model

    spec = classical_model(TOY_MODEL, "Gaussian naive Bayes", gaussian_nb, scaled=True,
                           types=("sklearn.naive_bayes.GaussianNB",))
    monkeypatch.setitem(MODEL_SPECS, TOY_MODEL, spec)
    return spec


def toy_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"ravdess": "data/demo/ravdess"}
    params["demo"].update(corpora=["ravdess"], preset="tiny")
    params["train"].update(models=[TOY_MODEL], protocols=["speaker"], feature_sets=["mfcc"])
    params[TOY_MODEL] = {"grid": {"var_smoothing": [1e-9, 1e-6]}}
    params["evaluate"]["bootstrap"] = 20
    return params


def test_a_registered_classical_model_is_validated_like_the_shipped_ones(toy_model):
    from ser.models.store import trusted_estimators
    from ser.params.load import params_schema, validate_params

    schema = params_schema()
    assert TOY_MODEL in schema["properties"]["train"]["properties"]["models"]["items"]["enum"]
    assert schema["properties"][TOY_MODEL] == {"$ref": "#/$defs/model_section"}
    assert "sklearn.naive_bayes.GaussianNB" in trusted_estimators()
    params = toy_params()
    validate_params(params, source="params.yaml")
    params[TOY_MODEL]["grid"] = {"var_smoothing": [-1.0]}  # the estimator's own constraint
    with pytest.raises(ConfigError, match=r"gaussian_nb\.grid\.var_smoothing: value -1\.0"):
        validate_params(params, source="params.yaml")
    params[TOY_MODEL] = {"grid": {"n_neighbors": [3]}}
    with pytest.raises(ConfigError, match="GaussianNB has no parameter 'n_neighbors'"):
        validate_params(params, source="params.yaml")


def test_a_registered_classical_model_trains_and_evaluates(toy_model, tmp_path):
    project = build_demo_project(tmp_path, toy_params(), protocol="speaker",
                                 feature_sets=("mfcc",), models=(TOY_MODEL,))
    run = f"speaker/mfcc/{TOY_MODEL}"
    card = json.loads((project / "models" / run / "card.json").read_text())
    assert card["model"] == TOY_MODEL
    # The grid came from its params section, the only home of grids: both candidates ran.
    assert (project / "models" / run / "cv_results.csv").read_text().count("\n") == 3
    metrics = json.loads((project / "metrics" / run / "metrics.json").read_text())
    # Not a constant: the toy model learns the demo corpus' emotions beyond chance.
    assert metrics["uar"] > metrics["chance_uar"]


def test_the_saved_toy_model_is_refused_once_its_entry_is_gone(toy_model, tmp_path,
                                                                monkeypatch):
    """Its saved types are trusted because its spec lists them, and only then."""
    import numpy as np

    from ser.errors import SerError
    from ser.models import MODEL_SPECS
    from ser.models.classical import make_pipeline
    from ser.models.store import load_model, save_model

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.array(["a", "b", "c"] * 10)
    model = make_pipeline(TOY_MODEL, seed=0).fit(X, y)
    card = {"format": "skops", "labels": ["a", "b", "c"], "feature_params": {"n_mfcc": 40},
            "model": TOY_MODEL}
    save_model(tmp_path / "m", model, card)
    load_model(tmp_path / "m")
    monkeypatch.delitem(MODEL_SPECS, TOY_MODEL)
    with pytest.raises(SerError, match="untrusted types.*GaussianNB"):
        load_model(tmp_path / "m")


def test_a_registered_feature_set_reaches_the_schema_and_the_models(monkeypatch):
    """A feature set is its extractor module plus one FeatureSetSpec entry; its params section
    (only ``workers``) comes from the schema's workers_section."""
    from ser.features.sets import FEATURE_SETS, FeatureSetSpec, model_accepts
    from ser.params.load import params_schema, validate_params

    spec = FeatureSetSpec("toy_stats", "ser.features.corpus_sets:extract_mfcc_stats", "summary")
    monkeypatch.setitem(FEATURE_SETS, "toy_stats", spec)
    schema = params_schema()
    assert "toy_stats" in schema["properties"]["train"]["properties"]["feature_sets"][
        "items"]["enum"]
    assert schema["properties"]["toy_stats"] == {"$ref": "#/$defs/workers_section"}
    assert model_accepts("svm", "toy_stats") and not model_accepts("lstm_seed", "toy_stats")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["feature_sets"] = ["toy_stats"]
    params["toy_stats"] = {"workers": 1}
    validate_params(params, source="params.yaml")


def test_a_feature_set_with_settings_of_its_own_needs_no_schema_edit(monkeypatch):
    """Its settings' schema travels in its registry entry: the section is checked (types,
    typos, missing keys) without touching ser/schemas/params.schema.yaml."""
    from ser.features.sets import FEATURE_SETS, FeatureSetSpec
    from ser.params.load import SCHEMA_PATH, validate_params

    spec = FeatureSetSpec("toy_bands", "ser.features.corpus_sets:extract_logmel", "summary",
                          settings={"bands": {"type": "integer", "minimum": 1}})
    monkeypatch.setitem(FEATURE_SETS, "toy_bands", spec)
    assert "toy_bands" not in SCHEMA_PATH.read_text()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["feature_sets"] = ["toy_bands"]
    params["toy_bands"] = {"bands": 8, "workers": 2}
    validate_params(params, source="params.yaml")
    for section, message in (({"bands": 0}, "bad parameter toy_bands.bands"),
                             ({"bands": 8, "bnds": 1}, "unknown parameter toy_bands.bnds"),
                             ({"workers": 1}, "'bands' is a required property"),
                             ({"bands": 8, "workers": 0}, "bad parameter toy_bands.workers")):
        params["toy_bands"] = section
        with pytest.raises(ConfigError, match=message):
            validate_params(params, source="params.yaml")


def _toy_corpus_module() -> types.ModuleType:
    """What ``ser/corpora/<name>.py`` holds: NAME, DISPLAY, CODES, EXTRA_COLUMNS, parse."""
    from ser.corpora.base import ParseResult, Reject, parse_files, unified_emotion

    module = types.ModuleType("toycorpus")
    module.NAME, module.DISPLAY = "toycorpus", "Toy corpus"
    module.CODES = {"ang": "angry", "hap": "happy"}
    module.EXTRA_COLUMNS = ()

    def _parse_file(path: Path, rel: Path):
        speaker, _, code = path.stem.partition("-")
        if not speaker or not code:
            raise Reject("file name is not <speaker>-<code>.wav")
        row = {"speaker": speaker, "gender": "unknown",
               "emotion": unified_emotion(module.CODES, code), "label_code": code}
        return (speaker, code), row

    def parse(root: Path) -> ParseResult:
        """``<root>/<speaker>-<code>.wav``."""
        return parse_files(module.NAME, root, module.EXTRA_COLUMNS, _parse_file)

    module.parse = parse
    return module


def test_a_registered_corpus_parses_and_validates(monkeypatch, tmp_path):
    import numpy as np
    import soundfile as sf

    from ser.corpora import CORPUS_SPECS, CorpusSpec, parse_corpus
    from ser.params.load import params_schema, validate_params
    from ser.report.facts import corpus_name

    module = _toy_corpus_module()
    monkeypatch.setitem(CORPUS_SPECS, module.NAME, CorpusSpec(module.NAME, module))
    for name in ("s1-ang", "s1-hap", "s2-ang", "s2-xyz"):
        sf.write(tmp_path / f"{name}.wav", np.zeros(1600, np.float32) + 0.01, 16000)
    result = parse_corpus("toycorpus", tmp_path)
    assert sorted(r["emotion"] for r in result.rows) == ["angry", "angry", "happy"]
    assert [reason for _, reason in result.rejected] == ["unknown emotion code 'xyz' (ang hap)"]
    schema = params_schema()
    assert "toycorpus" in schema["properties"]["corpora"]["propertyNames"]["enum"]
    assert "toycorpus" in schema["properties"]["shards"]["properties"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"]["toycorpus"] = str(tmp_path)
    validate_params(params, source="params.yaml")
    spec = CORPUS_SPECS["toycorpus"]
    assert spec.acquisition is None and spec.demo_layout is None  # both optional
    assert corpus_name("toycorpus") == "Toy corpus"  # the report's names: the modules'
    assert corpus_name("tess") == "TESS"
