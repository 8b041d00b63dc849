"""What the params schema cannot say, one check per concern (run by
:func:`ser.params.load.validate_params` after the schema, in :data:`CHECKS` order).

Each check takes the whole (schema-valid) parameters mapping and ``source`` (the file
name that starts the message) and raises one :class:`~ser.errors.ConfigError` line naming
the key and what to do. Checks that need data, not only params, run where the data is:
the corpus roots (:func:`check_corpus_roots`, before any job) and a model's
:attr:`~ser.models.ModelSpec.fold_check` (before its grid search).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ser.errors import ConfigError


def check_sections(params: dict[str, Any], *, source: str) -> None:
    """Every listed model and feature set has its params section."""
    from ser.features.sets import FEATURE_SETS
    from ser.models import MODEL_SPECS

    train = params["train"]
    for model in train["models"]:
        section = MODEL_SPECS[model].section
        if section not in params:
            raise ConfigError(f"{source}: model {model!r} is listed in train.models "
                              f"but has no '{section}:' section")
    for feature_set in train["feature_sets"]:
        section = FEATURE_SETS[feature_set].section  # a variant's: its base set's
        if section not in params:
            raise ConfigError(f"{source}: feature set {feature_set!r} is listed in "
                              f"train.feature_sets but has no '{section}:' section")


def check_grids(params: dict[str, Any], *, source: str) -> None:
    """Every classical model's grid, listed or not: a typo in a section that is one switch
    away is caught now, not when the model is switched on (:func:`check_grid`)."""
    from ser.models import MODEL_SPECS

    for name, spec in MODEL_SPECS.items():
        if spec.kind == "classical" and isinstance(params.get(spec.section), dict):
            check_grid(name, params[spec.section].get("grid", {}), source=source)


def check_model_inputs(params: dict[str, Any], *, source: str) -> None:
    """Some listed model can read some listed feature set."""
    from ser.features.sets import model_accepts

    train = params["train"]
    if not any(model_accepts(m, f) for m in train["models"] for f in train["feature_sets"]):
        raise ConfigError(f"{source}: no model of train.models can read a feature set of "
                          f"train.feature_sets ({_model_inputs()})")


def _model_inputs() -> str:
    """``classical models need summary sets, crnn logmel, ...``: what each model reads,
    from the model and feature-set registries."""
    from ser.features.sets import FEATURE_SETS
    from ser.models import MODEL_SPECS

    needs = []
    for name, spec in MODEL_SPECS.items():
        if spec.kind == "sequence":
            sets = [f.name for f in FEATURE_SETS.values()
                    if f.base is None and f.sequences == spec.sequences]
            needs.append(f"{name} {', '.join(sets)}")
    return ", ".join(["classical models need summary sets", *needs])


def check_signal_settings(params: dict[str, Any], *, source: str) -> None:
    """fmin/fmax against the sample rate, and every mel band count (mfcc.n_mels, logmel's
    n_mels) against n_fft: each band must hold an FFT bin (as stages would find later)."""
    from ser.features.mfcc import FeatureParams, empty_mel_band

    try:
        fp = FeatureParams.from_mapping(params["mfcc"])
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    counts = {"mfcc.n_mels": fp.n_mels}
    for name, section in params.items():
        if isinstance(section, dict) and name != "mfcc" and "n_mels" in section and \
                name in _feature_sections():
            counts[f"{name}.n_mels"] = int(section["n_mels"])
    for key, n_mels in counts.items():
        band = empty_mel_band(fp, n_mels)
        if band is not None:
            fits = next(n for n in range(n_mels - 1, 0, -1) if empty_mel_band(fp, n) is None)
            raise ConfigError(f"{source}: {key} {n_mels} is too many mel bands for mfcc.n_fft "
                              f"{fp.n_fft} at {fp.sample_rate} Hz (band {band} holds no FFT "
                              f"bin); use at most {fits} or raise n_fft")


def _feature_sections() -> set[str]:
    from ser.features.sets import FEATURE_SETS

    return {s.section for s in FEATURE_SETS.values() if s.base is None}


def check_scoring(params: dict[str, Any], *, source: str) -> None:
    """``train.scoring`` is a scikit-learn scorer name."""
    scoring = params["train"]["scoring"]
    from sklearn.metrics import get_scorer_names

    names = get_scorer_names()
    if scoring not in names:
        close = [n for n in names if scoring.lower() in n or n in scoring.lower()][:5]
        raise ConfigError(f"{source}: train.scoring {scoring!r} is not a scikit-learn scorer"
                          f"{' (did you mean ' + ', '.join(close) + '?)' if close else ''}; "
                          "e.g. f1_macro, balanced_accuracy, accuracy")


def check_grid(model: str, grid: dict[str, list[Any]], *, source: str = "params") -> None:
    """Refuse a grid key the estimator does not have, or a value it would refuse.

    Uses the estimator's own ``get_params()`` and scikit-learn's parameter
    constraints (``_validate_params``), so ``svm C: [-1]`` or ``knn weights:
    [heavy]`` is one line naming the key before any work starts, not a
    traceback from inside GridSearchCV.
    """
    from sklearn.base import clone

    from ser.models.classical import make_pipeline, param_grid

    try:
        pipeline = make_pipeline(model, seed=0)
    except ConfigError:
        return  # a model this module does not build is checked where it is built
    known = pipeline.get_params()
    for key, values in param_grid(model, grid).items():
        shown = key.split("__", 1)[-1]
        if key not in known:
            clf = pipeline.steps[-1][1]
            raise ConfigError(f"{source}: bad parameter {model}.grid.{shown}: "
                              f"{type(clf).__name__} has no parameter {shown!r}")
        for value in values:
            candidate = clone(pipeline).set_params(**{key: value})
            estimator = candidate.steps[-1][1]
            try:
                estimator._validate_params()
            except (ValueError, TypeError) as exc:
                reason = str(exc).splitlines()[0]
                raise ConfigError(f"{source}: bad parameter {model}.grid.{shown}: value "
                                  f"{value!r} is refused ({reason})") from None


def check_corpus_roots(params: dict[str, Any], *, source: str = "params") -> None:
    """Refuse a ``corpora:`` root that is missing, empty or holds no audio file.

    Run before any job (by the Snakefile and ``python -m ser.workflow.wiring repro``): without
    it a missing root leaves the previous manifest in place and every later job runs
    on the previous corpus. A demo root (``data/demo/<corpus>``) may be missing: the
    workflow generates it.
    """
    from ser.corpora import check_root
    from ser.corpora.demo import CORPORA as DEMO_CORPORA
    from ser.layout import demo_root

    demo_roots = {demo_root(c) for c in DEMO_CORPORA}
    for name, root in (params.get("corpora") or {}).items():
        if Path(root) in demo_roots and not Path(root).exists():
            continue
        try:
            check_root(name, root)
        except ConfigError as exc:
            raise ConfigError(f"{source}: corpora.{name}: {exc}") from None




def check_resources(params: dict[str, Any], *, source: str) -> None:
    """The ``resources:`` section (:func:`ser.workflow.resources.check_resources`)."""
    from ser.workflow.resources import check_resources as check

    check(params.get("resources") or {}, source=source)


def check_cross_corpus(params: dict[str, Any], *, source: str) -> None:
    """The cross-corpus protocol has two corpora and tests on an enabled one."""
    if "cross_corpus" not in params["train"]["protocols"]:
        return
    corpora = params["corpora"]
    test = params["splits"]["cross_corpus_test"]
    if len(corpora) < 2:
        raise ConfigError(f"{source}: protocol cross_corpus needs at least two corpora "
                          "in 'corpora:'; enable another or drop it from train.protocols")
    if test not in corpora:
        raise ConfigError(f"{source}: splits.cross_corpus_test is {test!r}, "
                          f"which is not an enabled corpus ({', '.join(corpora)})")


#: The checks :func:`ser.params.load.validate_params` runs after the schema, in order.
CHECKS: tuple[Callable[..., None], ...] = (
    check_sections, check_grids, check_model_inputs, check_signal_settings, check_scoring,
    check_resources, check_cross_corpus)
