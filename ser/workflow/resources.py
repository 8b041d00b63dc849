"""How the workflow is cut into jobs and what each job asks a scheduler for.

Two optional ``params.yaml`` sections (schema: ``ser/schemas/params.schema.yaml``):

``shards:``
    ``default`` (1) and optional per-corpus counts: each extracted feature set of a
    corpus is split into that many shard jobs (contiguous slices of the manifest rows,
    :func:`ser.features.shards.shard_bounds`), then one merge job writes the files an
    unsharded extraction writes, byte for byte. With 1 the corpus is extracted by one
    job and there is no merge.
``resources:``
    Per rule kind (:data:`RULE_KINDS`): ``threads``, ``mem_mb`` (MB) and ``runtime``
    (minutes), the Snakemake resources every rule declares. Locally they bound what runs
    at once (``--cores``, ``--resources mem_mb=...``); ``profiles/slurm`` passes them
    to ``sbatch`` as ``--cpus-per-task``, ``--mem`` and ``--time``. A kind or key left
    out takes its built-in value (:data:`DEFAULT_RESOURCES`).
    Feature jobs take their threads from the feature set's ``workers`` (the extraction
    processes), never from here.

The Snakefile reads both through :func:`feature_shards` and :func:`rule_resources`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ser.errors import ConfigError

#: The resources every rule declares.
RESOURCE_KEYS = ("threads", "mem_mb", "runtime")

#: Rule kinds of ``resources:``: ``default`` covers generate_demo, manifest and any rule
#: without its own kind; ``features`` the extraction jobs (whole corpus or one shard);
#: ``merge`` the shard merges; ``train_classical`` / ``train_sequence`` the train jobs
#: of classical / sequence models.
RULE_KINDS = ("default", "features", "merge", "splits", "train_classical", "train_sequence",
              "evaluate", "report")

#: Built-in values (params.yaml lists the same; a test keeps them equal). Measured bases
#: in docs/scaling.md: an MFCC job with 2 workers peaks near 1.1 GB for its process tree.
DEFAULT_RESOURCES: dict[str, dict[str, int]] = {
    "default": {"threads": 1, "mem_mb": 1000, "runtime": 30},
    "features": {"mem_mb": 2000, "runtime": 60},
    "merge": {"threads": 1, "mem_mb": 1000, "runtime": 30},
    "splits": {"threads": 1, "mem_mb": 1000, "runtime": 15},
    "train_classical": {"threads": 1, "mem_mb": 4000, "runtime": 180},
    "train_sequence": {"threads": 1, "mem_mb": 4000, "runtime": 240},
    "evaluate": {"threads": 1, "mem_mb": 2000, "runtime": 30},
    "report": {"threads": 1, "mem_mb": 2000, "runtime": 30},
}


def feature_shards(params: Mapping[str, Any], corpus: str) -> int:
    """Shard jobs per feature set of ``corpus``: ``shards.<corpus>``, else
    ``shards.default``, else 1.

    Parameters
    ----------
    params : Mapping
        The whole params mapping.
    corpus : str
        Corpus name.
    """
    section = params.get("shards") or {}
    value = section.get(corpus, section.get("default", 1))
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        key = f"shards.{corpus}" if corpus in section else "shards.default"
        raise ConfigError(f"params: bad parameter {key}: {value!r} is not a whole number "
                          ">= 1 (1 = one job per corpus, no merge)")
    return value


def rule_resources(params: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """``{kind: {"threads", "mem_mb", "runtime"}}`` for every kind of :data:`RULE_KINDS`
    (``features`` has no ``threads``: the feature set's ``workers`` set them).

    Parameters
    ----------
    params : Mapping
        The whole params mapping (its ``resources:`` section).
    """
    section = params.get("resources") or {}
    check_resources(section)
    out = {}
    for kind in RULE_KINDS:
        values = (DEFAULT_RESOURCES["default"] | DEFAULT_RESOURCES[kind]
                  | dict(section.get(kind) or {}))
        if kind == "features":
            values.pop("threads", None)
        out[kind] = values
    return out


def check_resources(section: Mapping[str, Any], *, source: str = "params") -> None:
    """Refuse what the schema cannot say: threads for feature jobs (set by ``workers``).

    Parameters
    ----------
    section : Mapping
        The ``resources:`` section.
    source : str
        The file named in the message.
    """
    if "threads" in (section.get("features") or {}):
        raise ConfigError(f"{source}: bad parameter resources.features.threads: a feature "
                          "job's threads are its feature set's workers (e.g. mfcc.workers); "
                          "set those instead")


def train_kind(model_kind: str) -> str:
    """The ``resources:`` kind of a train job of a model of kind ``classical``/``sequence``.

    Parameters
    ----------
    model_kind : str
        :attr:`ser.models.ModelSpec.kind`.
    """
    return f"train_{model_kind}"


#: Scheduling priority of train jobs by model kind: sequence models' training is the
#: longest job of a run (measured: the LSTM is the critical path of the full preset), so
#: starting it first leaves no long job alone at the end (longest job first).
TRAIN_PRIORITY: dict[str, int] = {"sequence": 1, "classical": 0}


def train_priority(model_kind: str) -> int:
    """Snakemake ``priority:`` of a train job of a model of kind ``model_kind``.

    Parameters
    ----------
    model_kind : str
        :attr:`ser.models.ModelSpec.kind`.
    """
    return TRAIN_PRIORITY[model_kind]
