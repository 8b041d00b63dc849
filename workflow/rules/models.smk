RUN = "{protocol}/{feature_set}/{model}"


rule train:
    """Tune (GridSearchCV) or fit (sequence model) one model on one protocol x feature set
    (speaker_cv: one model per fold for out-of-fold predictions, then one on every clip)."""
    input:
        features=feature_files,
        split="data/splits/{protocol}.parquet",
        script="scripts/train.py",
    output:
        model=directory(f"models/{RUN}"),
    params:
        settings=settings("corpora", "train.scoring", "train.cv_folds", "train.seed", "{model}"),
        config=PARAMS,
        features=extracted_dir,
    threads: train_resource("threads")
    resources:
        mem_mb=train_resource("mem_mb"),
        runtime=train_resource("runtime"),
    conda:
        ENV
    log:
        f"logs/train/{RUN}.log",
    benchmark:
        f"logs/benchmarks/train/{RUN}.tsv"
    shell:
        "python {input.script} --model {wildcards.model} --protocol {wildcards.protocol}"
        " --features {params.features} --feature-set {wildcards.feature_set}"
        " --split {input.split} --out {output.model}"
        " --params {params.config} > {log} 2>&1"


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
