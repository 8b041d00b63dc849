RUN = "{protocol}/{feature_set}/{model}"


rule train:
    """Tune (GridSearchCV) or fit (sequence model) one model on one protocol x feature set."""
    input:
        features=lambda w: expand("data/features/{feature_set}/{corpus}/{table}.parquet",
                                  feature_set=w.feature_set, corpus=CORPORA,
                                  table=["summary", "sequences"]),
        split="data/splits/{protocol}.parquet",
        script="scripts/train.py",
    output:
        model=directory(f"models/{RUN}"),
    params:
        settings=settings("corpora", "train.scoring", "train.cv_folds", "train.seed", "{model}"),
        config=PARAMS,
        features="data/features/{feature_set}",
    conda:
        ENV
    log:
        f"logs/train/{RUN}.log",
    benchmark:
        f"logs/benchmarks/train/{RUN}.tsv"
    shell:
        "python {input.script} --model {wildcards.model} --protocol {wildcards.protocol}"
        " --features {params.features} --split {input.split} --out {output.model}"
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
    params:
        settings=settings("corpora", "evaluate", *(["labels"] if "labels" in config else [])),
        config=PARAMS,
        features="data/features/{feature_set}",
        out=subpath(output.metrics, parent=True),
    conda:
        ENV
    log:
        f"logs/evaluate/{RUN}.log",
    benchmark:
        f"logs/benchmarks/evaluate/{RUN}.tsv"
    shell:
        "python {input.script} --protocol {wildcards.protocol} --model-dir {input.model}"
        " --features {params.features} --split {input.split} --out {params.out}"
        " --params {params.config} > {log} 2>&1"
