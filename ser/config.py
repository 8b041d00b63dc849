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
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    validate_params(params, source=str(path))
    return params


def validate_params(params: Any, *, source: str = "params") -> None:
    """Validate a parameters mapping; raise :class:`ConfigError` naming the bad key."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or "(top level)"
        raise ConfigError(f"{source}: bad parameter {where}: {err.message}")
    train = params["train"]
    from ser.models import MODEL_SPECS

    for model in train["models"]:
        section = MODEL_SPECS[model].section
        if section not in params:
            raise ConfigError(f"{source}: model {model!r} is listed in train.models "
                              f"but has no '{section}:' section")
    for feature_set in train["feature_sets"]:
        if feature_set not in params:
            raise ConfigError(f"{source}: feature set {feature_set!r} is listed in "
                              f"train.feature_sets but has no '{feature_set}:' section")
    if "cross_corpus" in train["protocols"]:
        corpora = params["corpora"]
        test = params["splits"]["cross_corpus_test"]
        if len(corpora) < 2:
            raise ConfigError(f"{source}: protocol cross_corpus needs at least two corpora "
                              "in 'corpora:'; enable another or drop it from train.protocols")
        if test not in corpora:
            raise ConfigError(f"{source}: splits.cross_corpus_test is {test!r}, "
                              f"which is not an enabled corpus ({', '.join(corpora)})")
