# Shared by every rule: the interpreter, the params file the scripts read, the
# wildcard values, the settings each rule depends on, and the pieces every rule repeats
# (log, benchmark, resources, the shell command's tail). Every path comes from ser.layout.
import sys
from pathlib import Path

import yaml

from ser import layout
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
RUNS = [dict(protocol=p, feature_set=f, model=m)
        for p in PROTOCOLS for f in FEATURE_SETS for m in MODELS if model_accepts(m, f)]

# train.grid_jobs: models whose grid runs one tune_candidate job per candidate -> count.
GRID_CANDIDATES = split_grids(config)


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
    return [layout.SHARD.format(**wildcards, shard=k, shards=n) for k in range(1, n + 1)]


def feature_threads(wildcards):
    """A feature job's threads: its set's extraction processes (`workers`)."""
    return config[wildcards.feature_set].get("workers", 1)


def train_kind_of(wildcards):
    """The `resources:` entry of a train job: by its model's kind (classical or sequence)."""
    return train_kind(MODEL_SPECS[wildcards.model].kind)


def train_job_priority(wildcards):
    """Longest jobs first: a sequence model's training before the classical grids."""
    return train_priority(MODEL_SPECS[wildcards.model].kind)


def extracted_dir(wildcards):
    """The folder of the files a feature set reads (its base set's for a variant)."""
    extracted = FEATURE_SET_SPECS[wildcards.feature_set].extracted
    return layout.FEATURE_SET_DIR.format(feature_set=extracted)


def extracted_sets(*, with_sequences):
    """Wildcard pattern of the extracted sets that have (or lack) a sequences table:
    the `features` rule makes the former, `summary_features` the latter."""
    return "|".join(n for n, s in FEATURE_SET_SPECS.items()
                    if s.base is None and ("sequences" in s.tables) == with_sequences)


def feature_outputs(*, with_sequences):
    """The files of one feature set of one corpus: summary (+ sequences) and skipped."""
    tables = ["summary", "sequences"] if with_sequences else ["summary"]
    files = {table: layout.feature_file(layout.FEATURES, table) for table in tables}
    return files | {"skipped": f"{layout.FEATURES}/{layout.SKIPPED_FILE}"}


def feature_files(wildcards):
    """The per-corpus tables a run reads: its (base) set's summary (+ sequences)."""
    spec = FEATURE_SET_SPECS[wildcards.feature_set]
    return expand(layout.feature_file(layout.FEATURES, "{table}"), feature_set=spec.extracted,
                  corpus=CORPORA, table=spec.tables)


def evaluate_outputs():
    """The evaluate stage's files in a run's metrics folder (named as dvc.yaml shows them:
    `metrics` as DVC metrics, `predictions` as its confusion plot)."""
    names = {"metrics": layout.METRICS_FILE, "details": layout.DETAILS_FILE,
             "predictions": layout.PREDICTIONS_FILE, "card": layout.MODEL_CARD_FILE}
    return {key: f"{layout.METRICS}/{name}" for key, name in names.items()}


def candidate_scores(wildcards):
    """The score files of a run's grid candidates (none unless train.grid_jobs splits it)."""
    n = GRID_CANDIDATES.get(wildcards.model, 0)
    return expand(layout.GRID_SCORES, **wildcards, candidate=range(n))


def run_options(wildcards, input):
    """The options naming a protocol x feature set run (ser.cli.stage.add_run_options): its
    protocol, the folder of the features it reads, its feature set and its split."""
    return (f"--protocol {wildcards.protocol} --features {extracted_dir(wildcards)}"
            f" --feature-set {wildcards.feature_set} --split {input.split}")


def candidates_option(wildcards, input):
    """train.py's `--candidates FILE...` when the run's grid is split, else nothing."""
    return f" --candidates {' '.join(input.candidates)}" if input.candidates else ""


def resolved_params_file():
    """The config Snakemake runs with (params.yaml, or --configfile/--config), written where
    every rule's script reads it (--params); rewritten only when it changes."""
    path = Path(layout.RESOLVED_PARAMS)
    text = yaml.safe_dump(dict(config), sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_text(text)
        path.with_suffix(".tmp").replace(path)
    return path.as_posix()


PARAMS = resolved_params_file()
# DVC records Snakemake's builds only when they ran with params.yaml itself.
RAN_WITH_PARAMS_YAML = yaml.safe_load(Path("params.yaml").read_text()) == config


# ------------------------------------------------------------------------------------------
# The pieces each job definition shares, written once: its log and benchmark files, its
# scheduler resources, its params (the settings it depends on + the params file its script
# reads) and the tail of its command (--params, output to the log).


def job_log(rule, job=None):
    """logs/<rule>/<job>.log (logs/<rule>.log for a rule with one job)."""
    return layout.log_file(rule, job)


def job_benchmark(rule, job=None):
    """logs/benchmarks/<rule>/<job>.tsv: Snakemake's time and memory record of the job."""
    return layout.benchmark_file(rule, job)


def job_threads(kind):
    """A job's threads: the `resources:` entry `kind` of params.yaml (a function of the
    wildcards naming the entry: chosen per job)."""
    if callable(kind):
        return lambda wildcards: RESOURCES[kind(wildcards)]["threads"]
    return RESOURCES[kind]["threads"]


def job_resources(kind):
    """mem_mb and runtime of the `resources:` entry `kind` (see job_threads), which
    profiles/slurm passes to sbatch."""
    if callable(kind):
        return {name: (lambda wildcards, name=name: RESOURCES[kind(wildcards)][name])
                for name in ("mem_mb", "runtime")}
    return {name: RESOURCES[kind][name] for name in ("mem_mb", "runtime")}


def stage_params(*keys):
    """A rule's `params:` shared part: `settings` (the params keys its script reads, see
    settings()) and `config` (the params file passed as --params)."""
    return {"settings": settings(*keys), "config": PARAMS}


def stage_shell(command, *, params=True):
    """The rule's command with the common tail: `--params FILE` (a script that reads
    settings) and everything it prints to the job's log."""
    return command + (" --params {params.config}" if params else "") + " > {log} 2>&1"


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

    html = Path(layout.REPORT_HTML_PATH)  # (`report` is a Snakemake keyword)
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
    shard=r"\d+",
    shards=r"\d+",


def report_roots(wildcards, output):
    """report.py's input folders (it reads the runs params.yaml lists in them: the rule's
    inputs) and its output folder."""
    return (f"--manifests {layout.MANIFESTS_ROOT} --metrics {layout.METRICS_ROOT}"
            f" --models {layout.MODELS_ROOT} --features {layout.FEATURES_ROOT}"
            f" --out {Path(output.html).parent.as_posix()}")


def report_inputs():
    """Every pipeline output the report reads: per run its metrics and model, per corpus its
    manifest and the clips left unused (files the manifest stage rejected, clips each
    extracted set skipped)."""
    return {
        "metrics": [evaluate_outputs()["metrics"].format(**run) for run in RUNS],
        "models": [layout.MODEL.format(**run) for run in RUNS],
        "manifests": expand(layout.MANIFEST, corpus=CORPORA),
        "rejected": expand(layout.REJECTED, corpus=CORPORA),
        "skipped": expand(feature_outputs(with_sequences=False)["skipped"],
                          feature_set=EXTRACTED, corpus=CORPORA),
    }


def real_results_option(wildcards, input):
    """report.py's `--real-results FILE` when the checkout has the file, else nothing."""
    return f" --real-results {input.real_results}" if input.real_results else ""


def real_results(wildcards):
    """The committed real-data results the report quotes, if this checkout has them (without
    them the report says no real-data measurement is available)."""
    return [layout.REAL_RESULTS] if Path(layout.REAL_RESULTS).is_file() else []
