# Shared by every rule: the interpreter, the params file the scripts read, the
# wildcard values, and the settings each rule depends on.
import sys
from pathlib import Path

import yaml

# Rules run the `python` of the environment Snakemake runs in (so .venv/bin/snakemake
# works without activating the venv).
shell.prefix(f"export PATH='{Path(sys.executable).parent}':\"$PATH\"; ")
ENV = "../../environment.yml"
CORPORA = list(config["corpora"])
FEATURE_SETS = config["train"]["feature_sets"]
MODELS = config["train"]["models"]
PROTOCOLS = config["train"]["protocols"]


def resolved_params_file():
    """The config Snakemake runs with (params.yaml, or --configfile/--config), written where
    every rule's script reads it (--params); rewritten only when it changes."""
    path = Path(".snakemake/ser/params.yaml")
    text = yaml.safe_dump(dict(config), sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(text)
        path.with_suffix(".tmp").replace(path)
    return path.as_posix()


PARAMS = resolved_params_file()
# DVC records Snakemake's builds only when they ran with params.yaml itself.
RAN_WITH_PARAMS_YAML = yaml.safe_load(Path("params.yaml").read_text()) == config


def settings(*keys):
    """The params keys a rule's script reads ('{model}' takes the wildcard): a rerun
    trigger for Snakemake, and the `params:` list of the generated DVC stage."""

    def values(wildcards):
        out = {}
        for key in keys:
            key = key.format(**wildcards)
            node = config
            for part in key.split("."):
                node = node[part]
            out[key] = node
        return out

    return values


def record_in_dvc():
    """After a successful build with params.yaml, record the outputs in dvc.lock."""
    if RAN_WITH_PARAMS_YAML and Path("dvc.yaml").is_file():
        shell("python -m ser.wiring record")


wildcard_constraints:
    corpus="|".join(sorted(set(config["demo"]["corpora"]) | set(CORPORA))),
    feature_set="|".join(FEATURE_SETS),
    model="|".join(MODELS),
    protocol="|".join(PROTOCOLS),
