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
        corpus=corpora_pattern(sharded=False),
    params:
        settings=settings("mfcc", "{feature_set}"),
        config=PARAMS,
        out=subpath(output.summary, parent=True),
    threads: feature_threads
    resources:
        mem_mb=RESOURCES["features"]["mem_mb"],
        runtime=RESOURCES["features"]["runtime"],
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
        corpus=corpora_pattern(sharded=False),
    params:
        settings=settings("mfcc", "{feature_set}"),
        config=PARAMS,
        out=subpath(output.summary, parent=True),
    threads: feature_threads
    resources:
        mem_mb=RESOURCES["features"]["mem_mb"],
        runtime=RESOURCES["features"]["runtime"],
    conda:
        ENV
    log:
        "logs/features/{feature_set}/{corpus}.log",
    benchmark:
        "logs/benchmarks/features/{feature_set}/{corpus}.tsv"
    shell:
        "python {input.script} --feature-set {wildcards.feature_set} --corpus {wildcards.corpus}"
        " --manifest {input.manifest} --out {params.out} --params {params.config} > {log} 2>&1"


rule feature_shard:
    """Shard k of n of one feature set of one corpus: its k-th contiguous slice of the
    manifest rows (corpora with `shards:` above 1; merged by the merge rules below)."""
    input:
        manifest="data/manifests/{corpus}.parquet",
        script="scripts/extract_features.py",
    output:
        shard=directory("data/shards/{feature_set}/{corpus}/{shard}-of-{shards}"),
    wildcard_constraints:
        feature_set="|".join(EXTRACTED),
        corpus=corpora_pattern(sharded=True),
        shard=r"\d+",
        shards=r"\d+",
    params:
        settings=settings("mfcc", "{feature_set}"),
        config=PARAMS,
    threads: feature_threads
    resources:
        mem_mb=RESOURCES["features"]["mem_mb"],
        runtime=RESOURCES["features"]["runtime"],
    conda:
        ENV
    log:
        "logs/feature_shard/{feature_set}/{corpus}/{shard}-of-{shards}.log",
    benchmark:
        "logs/benchmarks/feature_shard/{feature_set}/{corpus}/{shard}-of-{shards}.tsv"
    shell:
        "python {input.script} --feature-set {wildcards.feature_set} --corpus {wildcards.corpus}"
        " --manifest {input.manifest} --shard {wildcards.shard} --shards {wildcards.shards}"
        " --out {output.shard} --params {params.config} > {log} 2>&1"


rule merge_features:
    """The shards of one feature set with frame sequences of one corpus, merged into the
    files one unsharded job writes (byte for byte; sequences streamed)."""
    input:
        shards=shard_dirs,
        script="scripts/merge_features.py",
    output:
        summary="data/features/{feature_set}/{corpus}/summary.parquet",
        sequences="data/features/{feature_set}/{corpus}/sequences.parquet",
        skipped="data/features/{feature_set}/{corpus}/skipped.csv",
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=True),
        corpus=corpora_pattern(sharded=True),
    params:
        out=subpath(output.summary, parent=True),
    threads: RESOURCES["merge"]["threads"]
    resources:
        mem_mb=RESOURCES["merge"]["mem_mb"],
        runtime=RESOURCES["merge"]["runtime"],
    conda:
        ENV
    log:
        "logs/merge_features/{feature_set}/{corpus}.log",
    benchmark:
        "logs/benchmarks/merge_features/{feature_set}/{corpus}.tsv"
    shell:
        "python {input.script} --out {params.out} {input.shards} > {log} 2>&1"


rule merge_summary_features:
    """The shards of one per-clip feature-vector set of one corpus, merged."""
    input:
        shards=shard_dirs,
        script="scripts/merge_features.py",
    output:
        summary="data/features/{feature_set}/{corpus}/summary.parquet",
        skipped="data/features/{feature_set}/{corpus}/skipped.csv",
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=False),
        corpus=corpora_pattern(sharded=True),
    params:
        out=subpath(output.summary, parent=True),
    threads: RESOURCES["merge"]["threads"]
    resources:
        mem_mb=RESOURCES["merge"]["mem_mb"],
        runtime=RESOURCES["merge"]["runtime"],
    conda:
        ENV
    log:
        "logs/merge_features/{feature_set}/{corpus}.log",
    benchmark:
        "logs/benchmarks/merge_features/{feature_set}/{corpus}.tsv"
    shell:
        "python {input.script} --out {params.out} {input.shards} > {log} 2>&1"


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
    threads: RESOURCES["splits"]["threads"]
    resources:
        mem_mb=RESOURCES["splits"]["mem_mb"],
        runtime=RESOURCES["splits"]["runtime"],
    conda:
        ENV
    log:
        "logs/splits/{protocol}.log",
    benchmark:
        "logs/benchmarks/splits/{protocol}.tsv"
    shell:
        "python {input.script} --protocol {wildcards.protocol} --out {output.split}"
        " --params {params.config} {input.manifests} > {log} 2>&1"
