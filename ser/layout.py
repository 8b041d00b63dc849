"""The run layout: every path pattern and file name of a pipeline run, in one module.

The Snakefile's rules (``workflow/rules/*.smk``) import the patterns below, so the
generated ``dvc.yaml`` follows; the stages are given explicit paths by the rules and
take the names of the files inside their output folders from here. Nothing else in
``ser/``, ``scripts/`` or ``workflow/`` spells a run's folder pattern (a test greps).

Patterns use Snakemake's ``{wildcard}`` syntax (``str.format`` fills them)::

    data/demo/<corpus>/                          generate_demo (synthetic corpora)
    data/manifests/<corpus>.parquet              manifest (+ <corpus>_rejected.csv)
    data/features/<feature_set>/<corpus>/        features: summary.parquet, sequences.parquet,
                                                 skipped.csv
    data/shards/<feature_set>/<corpus>/<k>-of-<n>/  feature_shard (merged by merge_features)
    data/splits/<protocol>.parquet               splits
    data/grid/<protocol>/<feature_set>/<model>/<candidate>.json   tune_candidate
    models/<protocol>/<feature_set>/<model>/     train
    metrics/<protocol>/<feature_set>/<model>/    evaluate: metrics.json, details.json,
                                                 predictions.csv, model_card.md
    reports/report.html, reports/report.md       report
    logs/<rule>/<job>.log, logs/benchmarks/<rule>/<job>.tsv
"""

from __future__ import annotations

from pathlib import Path

# ---------------------------------------------------------------------------- run folders

#: One protocol x feature set x model run, below ``models/``, ``metrics/`` and ``data/grid/``.
RUN = "{protocol}/{feature_set}/{model}"
#: How many folder levels :data:`RUN` has (``run_key`` reads them back).
RUN_DEPTH = RUN.count("/") + 1

DATA_ROOT = "data"
DEMO_ROOT = f"{DATA_ROOT}/demo"
RAW_ROOT = f"{DATA_ROOT}/raw"
MANIFESTS_ROOT = f"{DATA_ROOT}/manifests"
FEATURES_ROOT = f"{DATA_ROOT}/features"
SHARDS_ROOT = f"{DATA_ROOT}/shards"
SPLITS_ROOT = f"{DATA_ROOT}/splits"
GRID_ROOT = f"{DATA_ROOT}/grid"
MODELS_ROOT = "models"
METRICS_ROOT = "metrics"
REPORTS_ROOT = "reports"
LOGS_ROOT = "logs"

# ------------------------------------------------------------------------------ file names

#: Feature folder files (:mod:`ser.features.extract`).
SUMMARY_FILE = "summary.parquet"
SEQUENCES_FILE = "sequences.parquet"
SKIPPED_FILE = "skipped.csv"
#: Evaluate stage files (:mod:`ser.evaluation.metrics`).
METRICS_FILE = "metrics.json"
DETAILS_FILE = "details.json"
PREDICTIONS_FILE = "predictions.csv"
MODEL_CARD_FILE = "model_card.md"
#: Report stage files (:mod:`ser.report.build`).
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
#: The manifest stage's list of left-out files, beside the manifest.
REJECTED_SUFFIX = "_rejected.csv"

# ------------------------------------------------------------------- Snakemake patterns

DEMO = f"{DEMO_ROOT}/{{corpus}}"
MANIFEST = f"{MANIFESTS_ROOT}/{{corpus}}.parquet"
REJECTED = f"{MANIFESTS_ROOT}/{{corpus}}{REJECTED_SUFFIX}"
#: One feature set's folder (what the train/evaluate stages are given: a corpus per subfolder).
FEATURE_SET_DIR = f"{FEATURES_ROOT}/{{feature_set}}"
FEATURES = f"{FEATURE_SET_DIR}/{{corpus}}"
SHARD = f"{SHARDS_ROOT}/{{feature_set}}/{{corpus}}/{{shard}}-of-{{shards}}"
SPLIT = f"{SPLITS_ROOT}/{{protocol}}.parquet"
GRID_SCORES = f"{GRID_ROOT}/{RUN}/{{candidate}}.json"
MODEL = f"{MODELS_ROOT}/{RUN}"
METRICS = f"{METRICS_ROOT}/{RUN}"
REPORT_HTML_PATH = f"{REPORTS_ROOT}/{REPORT_HTML}"
REPORT_MARKDOWN_PATH = f"{REPORTS_ROOT}/{REPORT_MARKDOWN}"
#: The config a Snakemake run resolved (params.yaml or --configfile), which its scripts read.
RESOLVED_PARAMS = ".snakemake/ser/params.yaml"
#: The real-data benchmark's committed results the report quotes.
REAL_RESULTS = "benchmarks/results/real_ravdess_speaker_cv.json"


def feature_file(folder: str, name: str) -> str:
    """``<folder>/<name>.parquet`` for a feature table name (``summary``, ``sequences``)."""
    return f"{folder}/{name}.parquet"


def log_file(rule: str, job: str | None = None) -> str:
    """Where job ``job`` (a wildcard pattern such as ``{corpus}``) of ``rule`` logs
    (``logs/<rule>.log`` for a rule with a single job)."""
    return f"{LOGS_ROOT}/{rule}.log" if job is None else f"{LOGS_ROOT}/{rule}/{job}.log"


def benchmark_file(rule: str, job: str | None = None) -> str:
    """Where Snakemake writes the run time and memory of job ``job`` of ``rule``."""
    folder = f"{LOGS_ROOT}/benchmarks"
    return f"{folder}/{rule}.tsv" if job is None else f"{folder}/{rule}/{job}.tsv"


# -------------------------------------------------------------------------- path helpers


def run_dir(root: str | Path, protocol: str, feature_set: str, model: str) -> Path:
    """Folder of one protocol x feature set x model under ``root`` (``models`` or ``metrics``)."""
    return Path(root) / RUN.format(protocol=protocol, feature_set=feature_set, model=model)


def run_key(path: str | Path, root: str | Path) -> tuple[str, str, str]:
    """``(protocol, feature_set, model)`` of a run folder under ``root`` (inverse of run_dir)."""
    parts = Path(path).relative_to(root).parts
    if len(parts) < RUN_DEPTH:
        raise ValueError(f"{path} is not {RUN} under {root}")
    return parts[0], parts[1], parts[2]


def run_metrics_files(root: str | Path, protocol: str) -> list[Path]:
    """Every ``metrics.json`` of a run of ``protocol`` under ``root``, sorted."""
    pattern = RUN.format(protocol=protocol, feature_set="*", model="*")
    return sorted(Path(root).glob(f"{pattern}/{METRICS_FILE}"))


def demo_root(corpus: str) -> Path:
    """Where the workflow's ``generate_demo`` stage writes a demo corpus.

    Parameters
    ----------
    corpus : str
        Corpus name (``ravdess``, ``emodb``, ...).
    """
    return Path(DEMO.format(corpus=corpus))


def raw_root(corpus: str) -> Path:
    """Where ``ser acquire import`` unpacks a real corpus unless told otherwise."""
    return Path(RAW_ROOT) / corpus


def manifest_file(folder: str | Path, corpus: str) -> Path:
    """The manifest of ``corpus`` in manifest folder ``folder``."""
    return Path(folder) / Path(MANIFEST.format(corpus=corpus)).name


def rejected_file(manifest: str | Path) -> Path:
    """The manifest stage's ``<stem>_rejected.csv`` beside manifest ``manifest``.

    Parameters
    ----------
    manifest : str or Path
        The manifest Parquet file the list of rejected files goes with.
    """
    manifest = Path(manifest)
    return manifest.with_name(f"{manifest.stem}{REJECTED_SUFFIX}")


def external_metrics_dir(model_dir: str | Path, corpus: str) -> Path:
    """``metrics/external/<corpus>--<model dir path with '-' for '/'>``: unique per model
    folder (``ser evaluate``'s default output on a corpus the model never saw)."""
    parts = [p for p in Path(model_dir).parts if p not in ("/", ".", "..")]
    return Path(METRICS_ROOT) / "external" / f"{corpus}--{'-'.join(parts) or 'model'}"
