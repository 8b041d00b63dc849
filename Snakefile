# SER workflow (Snakemake). The same stage scripts and params.yaml drive dvc.yaml;
# tests/test_workflow_parity.py checks that both define the same outputs.
#   snakemake --cores 2            build everything
#   snakemake -n                   show what would run
# Each rule wires one script; settings come from params.yaml (validated below).
from snakemake.utils import validate


configfile: "params.yaml"


validate(config, "ser/schemas/params.schema.yaml")

CORPORA = list(config["corpora"])
MODELS = config["train"]["models"]
PROTOCOLS = config["train"]["protocols"]
FEATURE_SET = config["train"]["feature_set"]


wildcard_constraints:
    corpus="|".join(config["demo"]["corpora"] + CORPORA),
    model="|".join(MODELS),
    protocol="|".join(PROTOCOLS),


rule all:
    input:
        "reports/report.html",


rule generate_demo:
    """Synthesise one demo corpus in its real layout (no download)."""
    output:
        directory("data/demo/{corpus}"),
    params:
        preset=config["demo"]["preset"],
        seed=config["demo"]["seed"],
    conda:
        "environment.yml"
    log:
        "logs/generate_demo/{corpus}.log",
    shell:
        "python scripts/generate_demo.py --corpus {wildcards.corpus} --out {output} > {log} 2>&1"


rule manifest:
    """Parse one corpus' folder into a manifest (file, speaker, gender, emotion...)."""
    input:
        root=lambda w: config["corpora"][w.corpus],
        script="scripts/prepare_manifest.py",
    output:
        manifest="data/manifests/{corpus}.parquet",
        rejected="data/manifests/{corpus}_rejected.csv",
    params:
        manifest=config["manifest"],
    conda:
        "environment.yml"
    log:
        "logs/manifest/{corpus}.log",
    shell:
        "python {input.script} --corpus {wildcards.corpus} --root {input.root} > {log} 2>&1"


rule features:
    """MFCC sequences and summary statistics of one corpus, in parallel."""
    input:
        manifest="data/manifests/{corpus}.parquet",
        script="scripts/extract_features.py",
    output:
        summary=f"data/features/{FEATURE_SET}/{{corpus}}/summary.parquet",
        sequences=f"data/features/{FEATURE_SET}/{{corpus}}/sequences.parquet",
        skipped=f"data/features/{FEATURE_SET}/{{corpus}}/skipped.csv",
    params:
        mfcc=config["mfcc"],
    threads: workflow.cores
    conda:
        "environment.yml"
    log:
        "logs/features/{corpus}.log",
    shell:
        "python {input.script} --corpus {wildcards.corpus} --workers {threads} > {log} 2>&1"


rule splits:
    """Train/test assignment of one protocol over the pooled manifests."""
    input:
        manifests=expand("data/manifests/{corpus}.parquet", corpus=CORPORA),
        script="scripts/make_splits.py",
    output:
        "data/splits/{protocol}.parquet",
    params:
        splits=config["splits"],
    conda:
        "environment.yml"
    log:
        "logs/splits/{protocol}.log",
    shell:
        "python {input.script} --protocol {wildcards.protocol} > {log} 2>&1"


rule train:
    """Tune (GridSearchCV) or fit (LSTM) one model under one protocol."""
    input:
        features=expand(f"data/features/{FEATURE_SET}/{{corpus}}/{{kind}}.parquet",
                        corpus=CORPORA, kind=["summary", "sequences"]),
        split="data/splits/{protocol}.parquet",
        script="scripts/train.py",
    output:
        directory("models/{protocol}/{model}"),
    params:
        train=config["train"],
        model=lambda w: config.get(w.model),
    conda:
        "environment.yml"
    log:
        "logs/train/{protocol}/{model}.log",
    shell:
        "python {input.script} --model {wildcards.model} --protocol {wildcards.protocol}"
        " > {log} 2>&1"


rule evaluate:
    """Metrics, CIs and confusion of one model on its protocol's test split."""
    input:
        model="models/{protocol}/{model}",
        split="data/splits/{protocol}.parquet",
        script="scripts/evaluate.py",
    output:
        metrics="metrics/{protocol}/{model}/metrics.json",
        details="metrics/{protocol}/{model}/details.json",
        predictions="metrics/{protocol}/{model}/predictions.csv",
    params:
        evaluate=config["evaluate"],
    conda:
        "environment.yml"
    log:
        "logs/evaluate/{protocol}/{model}.log",
    shell:
        "python {input.script} --model {wildcards.model} --protocol {wildcards.protocol}"
        " > {log} 2>&1"


rule report:
    """The final HTML/Markdown report from every pipeline output."""
    input:
        metrics=expand("metrics/{protocol}/{model}/metrics.json",
                       protocol=PROTOCOLS, model=MODELS),
        models=expand("models/{protocol}/{model}", protocol=PROTOCOLS, model=MODELS),
        manifests=expand("data/manifests/{corpus}.parquet", corpus=CORPORA),
        script="scripts/report.py",
    output:
        html="reports/report.html",
        markdown="reports/report.md",
    params:
        report=config["report"],
        corpora=config["corpora"],
        train=config["train"],
    conda:
        "environment.yml"
    log:
        "logs/report.log",
    shell:
        "python {input.script} > {log} 2>&1"
