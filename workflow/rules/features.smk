rule features:
    """One feature set of one corpus with frame sequences (mfcc, logmel): summary + sequences."""
    input:
        manifest=layout.MANIFEST,
        script="scripts/extract_features.py",
    output:
        **feature_outputs(with_sequences=True),
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=True),
        corpus=corpora_pattern(sharded=False),
    params:
        **stage_params("mfcc", "{feature_set}"),
        out=subpath(output.skipped, parent=True),
    threads: feature_threads
    resources:
        **job_resources("features"),
    conda:
        ENV
    log:
        job_log("features", "{feature_set}/{corpus}"),
    benchmark:
        job_benchmark("features", "{feature_set}/{corpus}")
    shell:
        stage_shell("python {input.script} --feature-set {wildcards.feature_set}"
                    " --corpus {wildcards.corpus} --manifest {input.manifest} --out {params.out}")


use rule features as summary_features with:
    # One per-clip feature-vector set of one corpus (egemaps, mfcc_stats, egemaps_mfcc).
    output:
        **feature_outputs(with_sequences=False),
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=False),
        corpus=corpora_pattern(sharded=False),


rule feature_shard:
    """Shard k of n (contiguous manifest rows) of one set of one corpus with `shards:` > 1."""
    input:
        manifest=layout.MANIFEST,
        script="scripts/extract_features.py",
    output:
        shard=directory(layout.SHARD),
    wildcard_constraints:
        feature_set="|".join(EXTRACTED),
        corpus=corpora_pattern(sharded=True),
    params:
        **stage_params("mfcc", "{feature_set}"),
    threads: feature_threads
    resources:
        **job_resources("features"),
    conda:
        ENV
    log:
        job_log("feature_shard", "{feature_set}/{corpus}/{shard}-of-{shards}"),
    benchmark:
        job_benchmark("feature_shard", "{feature_set}/{corpus}/{shard}-of-{shards}")
    shell:
        stage_shell("python {input.script} --feature-set {wildcards.feature_set} --corpus"
                    " {wildcards.corpus} --manifest {input.manifest} --shard {wildcards.shard}"
                    " --shards {wildcards.shards} --out {output.shard}")


rule merge_features:
    """The shards of one feature set of one corpus, merged into the files one unsharded job
    writes (byte for byte; sequences streamed). Reads no settings: the shards carry them."""
    input:
        shards=shard_dirs,
        script="scripts/merge_features.py",
    output:
        **feature_outputs(with_sequences=True),
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=True),
        corpus=corpora_pattern(sharded=True),
    params:
        out=subpath(output.skipped, parent=True),
    threads: job_threads("merge")
    resources:
        **job_resources("merge"),
    conda:
        ENV
    log:
        job_log("merge_features", "{feature_set}/{corpus}"),
    benchmark:
        job_benchmark("merge_features", "{feature_set}/{corpus}")
    shell:
        stage_shell("python {input.script} --out {params.out} {input.shards}", params=False)


use rule merge_features as merge_summary_features with:
    # The shards of one per-clip feature-vector set of one corpus, merged.
    output:
        **feature_outputs(with_sequences=False),
    wildcard_constraints:
        feature_set=extracted_sets(with_sequences=False),
        corpus=corpora_pattern(sharded=True),


rule splits:
    """Train/test assignment of one protocol over the pooled manifests."""
    input:
        manifests=expand(layout.MANIFEST, corpus=CORPORA),
        script="scripts/make_splits.py",
    output:
        split=layout.SPLIT,
    params:
        # speaker_cv: splits.speaker_cv_folds folds; labels: the class set
        **stage_params("splits", *(["labels"] if "labels" in config else [])),
    threads: job_threads("splits")
    resources:
        **job_resources("splits"),
    conda:
        ENV
    log:
        job_log("splits", "{protocol}"),
    benchmark:
        job_benchmark("splits", "{protocol}")
    shell:
        stage_shell("python {input.script} --protocol {wildcards.protocol} --out {output.split}"
                    " {input.manifests}")
