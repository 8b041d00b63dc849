rule report:
    """The final HTML/Markdown report from every pipeline output."""
    input:
        **report_inputs(),
        script="scripts/report.py",
        real_results=real_results,
    output:
        html=layout.REPORT_HTML_PATH,
        markdown=layout.REPORT_MARKDOWN_PATH,
    params:
        **stage_params("report", "corpora", "train.models", "train.protocols",
                       "train.feature_sets", *(["labels"] if "labels" in config else [])),
        roots=report_roots,
        real=real_results_option,
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
