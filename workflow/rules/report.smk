rule report:
    """The final HTML/Markdown report from every pipeline output."""
    input:
        metrics=[evaluate_outputs()["metrics"].format(**run) for run in RUNS],
        models=[layout.MODEL.format(**run) for run in RUNS],
        manifests=expand(layout.MANIFEST, corpus=CORPORA),
        # The clips left unused: files the manifest stage rejected, clips each set skipped.
        rejected=expand(layout.REJECTED, corpus=CORPORA),
        skipped=expand(feature_outputs(with_sequences=False)["skipped"],
                       feature_set=EXTRACTED, corpus=CORPORA),
        script="scripts/report.py",
        real_results=real_results,
    output:
        html=layout.REPORT_HTML_PATH,
        markdown=layout.REPORT_MARKDOWN_PATH,
    params:
        **stage_params("report", "corpora", "train.models", "train.protocols",
                       "train.feature_sets", *(["labels"] if "labels" in config else [])),
        roots=report_roots,
        real=lambda wildcards, input: (f" --real-results {input.real_results}"
                                       if input.real_results else ""),
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    conda:
        ENV
    log:
        job_log("report"),
    benchmark:
        job_benchmark("report")
    shell:
        stage_shell("python {input.script} {params.roots}{params.real}")
