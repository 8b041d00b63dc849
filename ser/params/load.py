"""Load and validate params.yaml (the one schema serves Snakemake too)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ser.errors import ConfigError

SCHEMA_PATH = Path(str(resources.files("ser") / "schemas" / "params.schema.yaml"))


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read ``params.yaml`` and validate it against the documented schema.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or breaks the schema; the message
        names the offending key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameters file not found; run from the project root")
    params = read_yaml(path)
    validate_params(params, source=str(path))
    return params


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error is one :class:`ConfigError` line with its place.

    ``params.yaml: not valid YAML at line 56, column 9: expected ',' or ']', but got ':'
    (while parsing a flow sequence)``: the line where the faulty construct starts.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        why = f"{problem} ({context})" if context else problem
        raise ConfigError(f"{path}: not valid YAML{where}: {why}") from None


def check_yaml_or_exit(path: str | Path = "params.yaml") -> None:
    """For the Snakefile, before ``configfile:``: a YAML syntax error in ``path`` is one
    line with its line number and exit code 2 (Snakemake's own message has neither)."""
    import sys

    if not Path(path).is_file():
        return  # Snakemake says the file is missing
    try:
        read_yaml(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def params_schema() -> dict[str, Any]:
    """The params schema: ``ser/schemas/params.schema.yaml`` completed from the registries.

    The file spells no model, feature set, protocol or corpus name; they are filled in here
    from the tables that own them, read now (so an entry registered later, e.g. by a test,
    counts): the enums of ``train.models``, ``train.feature_sets``, ``train.protocols``,
    ``corpora`` and ``demo.corpora``; a ``model_section`` (a grid) for every classical
    model and a ``workers_section`` for every extracted feature set whose section the
    file does not describe; a shard count per corpus under ``shards``.
    """
    from ser.corpora import CORPUS_SPECS
    from ser.corpora.demo import LAYOUTS
    from ser.features.sets import FEATURE_SETS
    from ser.models import MODEL_SPECS
    from ser.splits.protocols import PROTOCOL_SPECS

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    props = schema["properties"]
    train = props["train"]["properties"]
    for key, names in (("models", MODEL_SPECS), ("feature_sets", FEATURE_SETS),
                       ("protocols", PROTOCOL_SPECS)):
        train[key]["items"] = train[key]["items"] | {"enum": list(names)}
    props["corpora"]["propertyNames"] |= {"enum": list(CORPUS_SPECS)}
    demo_items = props["demo"]["properties"]["corpora"]["items"]
    demo_items["enum"] = list(LAYOUTS)
    for spec in MODEL_SPECS.values():
        if spec.kind == "classical":
            props.setdefault(spec.section, {"$ref": "#/$defs/model_section"})
    for spec in FEATURE_SETS.values():
        if spec.base is None:  # an extracted set: its own section
            props.setdefault(spec.section, {"$ref": "#/$defs/workers_section"})
    shards = props["shards"]["properties"]
    for name in CORPUS_SPECS:
        shards.setdefault(name, {"$ref": "#/$defs/shard_count"})
    return schema


def validate_params(params: Any, *, source: str = "params") -> None:
    """Validate a parameters mapping; raise :class:`ConfigError` naming the bad key."""
    import jsonschema

    schema = params_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        path = [str(p) for p in err.path]
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            extra = sorted(str(k) for k in err.instance if k not in allowed)
            where = ".".join([*path, extra[0]]) if extra else ".".join(path)
            hint = f"; known keys: {', '.join(sorted(allowed))}" if allowed else ""
            raise ConfigError(f"{source}: unknown parameter {where} (a typo?){hint}")
        where = ".".join(path) or "(top level)"
        raise ConfigError(f"{source}: bad parameter {where}: {err.message}")
    train = params["train"]
    from ser.models import MODEL_SPECS

    for model in train["models"]:
        section = MODEL_SPECS[model].section
        if section not in params:
            raise ConfigError(f"{source}: model {model!r} is listed in train.models "
                              f"but has no '{section}:' section")
    # Every classical model's grid is checked, listed or not: a typo in a section that is
    # one switch away is caught now, not when the model is switched on.
    for name, spec in MODEL_SPECS.items():
        if spec.kind == "classical" and isinstance(params.get(spec.section), dict):
            check_grid(name, params[spec.section].get("grid", {}), source=source)
    from ser.features.sets import FEATURE_SETS, model_accepts

    for feature_set in train["feature_sets"]:
        section = FEATURE_SETS[feature_set].section  # a variant's: its base set's
        if section not in params:
            raise ConfigError(f"{source}: feature set {feature_set!r} is listed in "
                              f"train.feature_sets but has no '{section}:' section")
    if not any(model_accepts(m, f) for m in train["models"] for f in train["feature_sets"]):
        raise ConfigError(f"{source}: no model of train.models can read a feature set of "
                          f"train.feature_sets ({_model_inputs()})")
    _check_signal_settings(params, source=source)
    _check_scoring(train["scoring"], source=source)
    from ser.workflow.resources import check_resources

    check_resources(params.get("resources") or {}, source=source)
    if "cross_corpus" in train["protocols"]:
        corpora = params["corpora"]
        test = params["splits"]["cross_corpus_test"]
        if len(corpora) < 2:
            raise ConfigError(f"{source}: protocol cross_corpus needs at least two corpora "
                              "in 'corpora:'; enable another or drop it from train.protocols")
        if test not in corpora:
            raise ConfigError(f"{source}: splits.cross_corpus_test is {test!r}, "
                              f"which is not an enabled corpus ({', '.join(corpora)})")


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


def _check_signal_settings(params: dict[str, Any], *, source: str) -> None:
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


def _check_scoring(scoring: str, *, source: str) -> None:
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


def validate_or_exit(config: Any, source: str = "params.yaml") -> None:
    """Validate a config for the Snakefile: on a fault print the one-line message and exit 2.

    The Snakefile calls this instead of ``snakemake.utils.validate``, so the
    workflow engines report a bad parameter with the same line the stage
    scripts print (``error: params.yaml: bad parameter splits.test_sise: ...``).
    It also checks every corpus root (:func:`check_corpus_roots`): a missing or
    empty one stops the run before any job.
    """
    import sys

    try:
        validate_params(config, source=source)
        check_corpus_roots(config, source=source)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
