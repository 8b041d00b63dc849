"""Load and validate params.yaml (the one schema serves Snakemake too)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ser.errors import ConfigError
from ser.params.checks import CHECKS, check_corpus_roots, check_grid

__all__ = ["SCHEMA_PATH", "check_corpus_roots", "check_grid", "check_yaml_or_exit",
           "load_params", "params_schema", "read_yaml", "validate_or_exit", "validate_params"]

SCHEMA_PATH = Path(str(resources.files("ser") / "schemas" / "params.schema.yaml"))


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read ``params.yaml`` and validate it against the documented schema.

    Parameters
    ----------
    path : str or Path
        The params file (``ser/schemas/params.schema.yaml`` describes every key).

    Returns
    -------
    dict
        The validated mapping.

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
    model and, for every extracted feature set whose section the file does not describe,
    ``workers`` plus the set's own :attr:`~ser.features.sets.FeatureSetSpec.settings`; a
    shard count per corpus under ``shards``.
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
            props.setdefault(spec.section, _feature_section(spec.settings))
    shards = props["shards"]["properties"]
    for name in CORPUS_SPECS:
        shards.setdefault(name, {"$ref": "#/$defs/shard_count"})
    return schema


def _feature_section(settings: Any) -> dict[str, Any]:
    """Schema of an extracted feature set's section: ``workers`` plus its own settings
    (:attr:`ser.features.sets.FeatureSetSpec.settings`, all required)."""
    if not settings:
        return {"$ref": "#/$defs/workers_section"}
    return {"type": "object", "additionalProperties": False,
            "properties": {**{k: dict(v) for k, v in settings.items()},
                           "workers": {"$ref": "#/$defs/workers_section/properties/workers"}},
            "required": list(settings)}


def validate_params(params: Any, *, source: str = "params") -> None:
    """Validate a parameters mapping; raise :class:`ConfigError` naming the bad key.

    First the schema (:func:`params_schema`: types, ranges, known keys and names), then
    what a schema cannot say, one function per concern (:data:`ser.params.checks.CHECKS`).
    """
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
    for check in CHECKS:
        check(params, source=source)


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
