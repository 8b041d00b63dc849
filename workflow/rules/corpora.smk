from ser.corpora.demo import CORPORA as DEMO_CORPORA


rule generate_demo:
    """Synthesise one demo corpus in its real layout (no download); never a user's corpus."""
    wildcard_constraints:
        corpus="|".join(DEMO_CORPORA),
    input:
        script="scripts/generate_demo.py",
    output:
        root=directory(layout.DEMO),
    params:
        **stage_params("demo.preset", "demo.seed"),
    threads: job_threads("default")
    resources:
        **job_resources("default"),
    conda:
        ENV
    log:
        job_log("generate_demo", "{corpus}"),
    benchmark:
        job_benchmark("generate_demo", "{corpus}")
    shell:
        stage_shell("python {input.script} --corpus {wildcards.corpus} --out {output.root}")


rule manifest:
    """Parse one corpus' folder (custom: or CSV/TSV manifest) into a manifest table."""
    input:
        # The user's own folder or CSV is a dependency like any other: editing it reruns.
        root=lambda w: config["corpora"][w.corpus],
        script="scripts/prepare_manifest.py",
    output:
        manifest=layout.MANIFEST,
        rejected=layout.REJECTED,
    params:
        **stage_params("manifest"),
    threads: job_threads("default")
    resources:
        **job_resources("default"),
    conda:
        ENV
    log:
        job_log("manifest", "{corpus}"),
    benchmark:
        job_benchmark("manifest", "{corpus}")
    shell:
        stage_shell("python {input.script} --corpus {wildcards.corpus} --root {input.root}"
                    " --out {output.manifest}")
