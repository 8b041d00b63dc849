RUN = "{protocol}/{feature_set}/{model}"


rule tune_candidate:
    """Cross-validate one grid candidate of a classical model on every training side its
    train job tunes on (train.grid_jobs): a score file train reads to pick the best."""
    input:
        features=feature_files,
        split="data/splits/{protocol}.parquet",
        script="scripts/tune_candidate.py",
    output:
        scores=GRID_SCORES,
    params:
        settings=settings("corpora", "train.scoring", "train.cv_folds", "train.seed", "{model}"),
        config=PARAMS,
        features=extracted_dir,
    threads: RESOURCES["train_classical"]["threads"]
    resources:
        mem_mb=RESOURCES["train_classical"]["mem_mb"],
        runtime=RESOURCES["train_classical"]["runtime"],
    conda:
        ENV
    log:
        f"logs/grid/{RUN}/{{candidate}}.log",
    benchmark:
        f"logs/benchmarks/grid/{RUN}/{{candidate}}.tsv"
    shell:
        "python {input.script} --model {wildcards.model} --candidate {wildcards.candidate}"
        " --protocol {wildcards.protocol} --features {params.features}"
        " --feature-set {wildcards.feature_set} --split {input.split} --out {output.scores}"
        " --params {params.config} > {log} 2>&1"


rule train:
    """Tune (GridSearchCV) or fit (sequence model) one model on one protocol x feature set
    (speaker_cv: one model per fold for out-of-fold predictions, then one on every clip);
    with train.grid_jobs, pick the best of the tune_candidate jobs' scores and refit it."""
    input:
        features=feature_files,
        split="data/splits/{protocol}.parquet",
        script="scripts/train.py",
        candidates=candidate_scores,
    output:
        model=directory(f"models/{RUN}"),
    params:
        settings=settings("corpora", "train.scoring", "train.cv_folds", "train.seed", "{model}"),
        config=PARAMS,
        features=extracted_dir,
        candidates=candidates_option,
    threads: train_resource("threads")
    resources:
        mem_mb=train_resource("mem_mb"),
        runtime=train_resource("runtime"),
    priority: train_job_priority
    conda:
        ENV
    log:
        f"logs/train/{RUN}.log",
    benchmark:
        f"logs/benchmarks/train/{RUN}.tsv"
    shell:
        "python {input.script} --model {wildcards.model} --protocol {wildcards.protocol}"
        " --features {params.features} --feature-set {wildcards.feature_set}"
        " --split {input.split} --out {output.model}{params.candidates}"
        " --jobs {threads} --params {params.config} > {log} 2>&1"


rule evaluate:
    """Metrics, CIs and confusion of one model on its protocol's test split."""
    input:
        model=f"models/{RUN}",
        features=rules.train.input.features,
        split="data/splits/{protocol}.parquet",
        script="scripts/evaluate.py",
    output:
        metrics=f"metrics/{RUN}/metrics.json",
        details=f"metrics/{RUN}/details.json",
        predictions=f"metrics/{RUN}/predictions.csv",
        card=f"metrics/{RUN}/model_card.md",
    params:
        settings=settings("corpora", "evaluate", *(["labels"] if "labels" in config else [])),
        config=PARAMS,
        features=extracted_dir,
        out=subpath(output.metrics, parent=True),
    threads: RESOURCES["evaluate"]["threads"]
    resources:
        mem_mb=RESOURCES["evaluate"]["mem_mb"],
        runtime=RESOURCES["evaluate"]["runtime"],
    conda:
        ENV
    log:
        f"logs/evaluate/{RUN}.log",
    benchmark:
        f"logs/benchmarks/evaluate/{RUN}.tsv"
    shell:
        "python {input.script} --protocol {wildcards.protocol} --model-dir {input.model}"
        " --features {params.features} --feature-set {wildcards.feature_set}"
        " --split {input.split} --out {params.out}"
        " --params {params.config} > {log} 2>&1"
