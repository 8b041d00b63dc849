rule features:
    """One feature set of one corpus with frame sequences (mfcc, logmel): summary + sequences."""
    input:
        manifest="data/manifests/{corpus}.parquet",
        script="scripts/extract_features.py",
    output:
        summary="data/features/{feature_set}/{corpus}/summary.parquet",
        sequences="data/features/{feature_set}/{corpus}/sequences.parquet",
        skipped="data/features/{feature_set}/{corpus}/skipped.csv",
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=True),
    params:
        settings=settings("mfcc", "{feature_set}"),
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


rule summary_features:
    """One per-clip feature-vector set of one corpus (egemaps, mfcc_stats, egemaps_mfcc)."""
    input:
        manifest="data/manifests/{corpus}.parquet",
        script="scripts/extract_features.py",
    output:
        summary="data/features/{feature_set}/{corpus}/summary.parquet",
        skipped="data/features/{feature_set}/{corpus}/skipped.csv",
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=False),
    params:
        settings=settings("mfcc", "{feature_set}"),
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
        # speaker_cv: splits.speaker_cv_folds folds; labels: the class set
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
