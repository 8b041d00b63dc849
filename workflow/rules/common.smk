# Shared by every rule: the interpreter, the params file the scripts read, the
# wildcard values, and the settings each rule depends on.
import sys
from pathlib import Path

import yaml

from ser.features.sets import FEATURE_SETS as FEATURE_SET_SPECS
from ser.features.sets import model_accepts
from ser.models import MODEL_SPECS
from ser.models.grid import split_grids
from ser.workflow.engines import LOCK_HELD_ENV
from ser.workflow.resources import feature_shards, rule_resources, train_kind, train_priority

# Rules run the `python` of the environment Snakemake runs in (so .venv/bin/snakemake
# works without activating the venv).
shell.prefix(f"export PATH='{Path(sys.executable).parent}':\"$PATH\"; ")
ENV = "../../environment.yml"
CORPORA = list(config["corpora"])
FEATURE_SETS = config["train"]["feature_sets"]
MODELS = config["train"]["models"]
PROTOCOLS = config["train"]["protocols"]
# Extracted sets: a variant (egemaps_spk) reads its base set's files, extracted once.
EXTRACTED = sorted({FEATURE_SET_SPECS[f].extracted for f in FEATURE_SETS})
# Every protocol x feature set x model run whose model can read the feature set
# (classical models: summary features; crnn: logmel sequences; lstm_seed: mfcc ones).
RUNS = [f"{p}/{f}/{m}" for p in PROTOCOLS for f in FEATURE_SETS for m in MODELS
        if model_accepts(m, f)]

# train.grid_jobs: models whose grid runs one tune_candidate job per candidate -> count.
GRID_CANDIDATES = split_grids(config)
GRID_SCORES = "data/grid/{protocol}/{feature_set}/{model}/{candidate}.json"


# Feature extraction jobs per corpus (shards: in params.yaml). A corpus with 1 is
# extracted by one job (features / summary_features); with S > 1 by S feature_shard jobs
# whose merge (merge_features / merge_summary_features) writes the same files.
SHARDS = {corpus: feature_shards(config, corpus) for corpus in CORPORA}
# What each job asks a scheduler for (resources: in params.yaml; profiles/slurm passes
# threads, mem_mb and runtime to sbatch). Feature jobs' threads are the set's workers.
RESOURCES = rule_resources(config)


def corpora_pattern(*, sharded):
    """Wildcard pattern of the corpora extracted in shards (or in one job)."""
    names = [c for c, n in SHARDS.items() if (n > 1) == sharded]
    return "|".join(names) if names else "(?!)"  # (?!) matches nothing


def shard_dirs(wildcards):
    """The shard folders of one feature set of one corpus, in order."""
    n = SHARDS[wildcards.corpus]
    return [f"data/shards/{wildcards.feature_set}/{wildcards.corpus}/{k}-of-{n}"
            for k in range(1, n + 1)]


def feature_threads(wildcards):
    """A feature job's threads: its set's extraction processes (`workers`)."""
    return config[wildcards.feature_set].get("workers", 1)


def train_resource(name):
    """A train job's resource `name`, by its model's kind (classical or sequence)."""
    return lambda wildcards: RESOURCES[train_kind(MODEL_SPECS[wildcards.model].kind)][name]


def train_job_priority(wildcards):
    """Longest jobs first: a sequence model's training before the classical grids."""
    return train_priority(MODEL_SPECS[wildcards.model].kind)


def extracted_dir(wildcards):
    """The folder of the files a feature set reads (its base set's for a variant)."""
    return f"data/features/{FEATURE_SET_SPECS[wildcards.feature_set].extracted}"


def extracted_sets(*, with_sequences):
    """Wildcard pattern of the extracted sets that have (or lack) a sequences table:
    the `features` rule makes the former, `summary_features` the latter."""
    return "|".join(n for n, s in FEATURE_SET_SPECS.items()
                    if s.base is None and ("sequences" in s.tables) == with_sequences)


def feature_files(wildcards):
    """The per-corpus tables a run reads: its (base) set's summary (+ sequences)."""
    spec = FEATURE_SET_SPECS[wildcards.feature_set]
    return expand("{folder}/{corpus}/{table}.parquet", folder=extracted_dir(wildcards),
                  corpus=CORPORA, table=spec.tables)


def candidate_scores(wildcards):
    """The score files of a run's grid candidates (none unless train.grid_jobs splits it)."""
    n = GRID_CANDIDATES.get(wildcards.model, 0)
    return expand(GRID_SCORES, **wildcards, candidate=range(n))


def candidates_option(wildcards, input):
    """train.py's `--candidates FILE...` when the run's grid is split, else nothing."""
    return f" --candidates {' '.join(input.candidates)}" if input.candidates else ""


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


def print_report_path():
    """The last line of a successful run: where the report is. Printed at exit, after
    Snakemake's own closing lines ("Complete log(s): ...", "Elapsed time: ...")."""
    import atexit

    html = Path("reports/report.html")  # (`report` is a Snakemake keyword)
    if html.is_file():
        atexit.register(lambda: print(f"Report: {html.resolve()}", flush=True))


def record_in_dvc():
    """After a successful build with params.yaml, record the outputs in dvc.lock."""
    if RAN_WITH_PARAMS_YAML and Path("dvc.yaml").is_file():
        # This run still holds DVC's lock (ser/workflow/engines.py), so no `dvc repro` can start
        # in between; the recording process commits under it.
        shell(f"{LOCK_HELD_ENV}=1 python -m ser.workflow.wiring record")


wildcard_constraints:
    corpus="|".join(sorted(set(config["demo"]["corpora"]) | set(CORPORA))),
    feature_set="|".join(sorted(set(FEATURE_SETS) | set(EXTRACTED))),
    model="|".join(MODELS),
    protocol="|".join(PROTOCOLS),
    candidate=r"\d+",


# The real-data benchmark's results the report quotes (committed; a checkout without them
# gets a report that says no real-data measurement is available).
REAL_RESULTS = "benchmarks/results/real_ravdess_speaker_cv.json"


def real_results(wildcards):
    """The committed real-data results the report quotes, if this checkout has them."""
    return [REAL_RESULTS] if Path(REAL_RESULTS).is_file() else []
