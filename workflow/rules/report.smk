rule report:
    """The final HTML/Markdown report from every pipeline output."""
    input:
        metrics=expand("metrics/{run}/metrics.json", run=RUNS),
        models=expand("models/{run}", run=RUNS),
        manifests=expand("data/manifests/{corpus}.parquet", corpus=CORPORA),
        # The clips left unused: files the manifest stage rejected, clips each set skipped.
        rejected=expand("data/manifests/{corpus}_rejected.csv", corpus=CORPORA),
        skipped=expand("data/features/{feature_set}/{corpus}/skipped.csv",
                       feature_set=EXTRACTED, corpus=CORPORA),
        script="scripts/report.py",
        real_results=real_results,
    output:
        html="reports/report.html",
        markdown="reports/report.md",
    params:
        settings=settings("report", "corpora", "train.models", "train.protocols",
                          "train.feature_sets", *(["labels"] if "labels" in config else [])),
        config=PARAMS,
        real=lambda wildcards, input: (f" --real-results {input.real_results}"
                                       if input.real_results else ""),
    threads: RESOURCES["report"]["threads"]
    resources:
        mem_mb=RESOURCES["report"]["mem_mb"],
        runtime=RESOURCES["report"]["runtime"],
    conda:
        ENV
    log:
        "logs/report.log",
    benchmark:
        "logs/benchmarks/report.tsv"
    shell:
        "python {input.script} --manifests data/manifests --metrics metrics --models models"
        " --features data/features --out reports --params {params.config}{params.real}"
        " > {log} 2>&1"
