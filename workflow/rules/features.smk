rule features:
    """One feature set of one corpus: summary statistics and frame sequences."""
    input:
        manifest="data/manifests/{corpus}.parquet",
        script="scripts/extract_features.py",
    output:
        summary="data/features/{feature_set}/{corpus}/summary.parquet",
        sequences="data/features/{feature_set}/{corpus}/sequences.parquet",
        skipped="data/features/{feature_set}/{corpus}/skipped.csv",
    params:
        settings=settings("{feature_set}"),
        config=PARAMS,
        out=subpath(output.summary, parent=True),
    threads: lambda w: config[w.feature_set].get("workers", 1)
    conda:
        ENV
    log:
        "logs/features/{feature_set}/{corpus}.log",
    benchmark:
        "logs/benchmarks/features/{feature_set}/{corpus}.tsv"
    shell:
        "python {input.script} --feature-set {wildcards.feature_set} --corpus {wildcards.corpus}"
        " --manifest {input.manifest} --out {params.out} --params {params.config} > {log} 2>&1"


rule splits:
    """Train/test assignment of one protocol over the pooled manifests."""
    input:
        manifests=expand("data/manifests/{corpus}.parquet", corpus=CORPORA),
        script="scripts/make_splits.py",
    output:
        split="data/splits/{protocol}.parquet",
    params:
        settings=settings("splits", *(["labels"] if "labels" in config else [])),
        config=PARAMS,
    conda:
        ENV
    log:
        "logs/splits/{protocol}.log",
    benchmark:
        "logs/benchmarks/splits/{protocol}.tsv"
    shell:
        "python {input.script} --protocol {wildcards.protocol} --out {output.split}"
        " --params {params.config} {input.manifests} > {log} 2>&1"
