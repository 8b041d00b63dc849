from ser.corpora.demo import CORPORA as DEMO_CORPORA


rule generate_demo:
    """Synthesise one demo corpus in its real layout (no download); never a user's corpus."""
    wildcard_constraints:
        corpus="|".join(DEMO_CORPORA),
    input:
        script="scripts/generate_demo.py",
    output:
        root=directory("data/demo/{corpus}"),
    params:
        settings=settings("demo.preset", "demo.seed"),
        config=PARAMS,
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    conda:
        ENV
    log:
        "logs/generate_demo/{corpus}.log",
    benchmark:
        "logs/benchmarks/generate_demo/{corpus}.tsv"
    shell:
        "python {input.script} --corpus {wildcards.corpus} --out {output.root}"
        " --params {params.config} > {log} 2>&1"


rule manifest:
    """Parse one corpus' folder (custom: or CSV/TSV manifest) into a manifest table."""
    input:
        # The user's own folder or CSV is a dependency like any other: editing it reruns.
        root=lambda w: config["corpora"][w.corpus],
        script="scripts/prepare_manifest.py",
    output:
        manifest="data/manifests/{corpus}.parquet",
        rejected="data/manifests/{corpus}_rejected.csv",
    params:
        settings=settings("manifest"),
        config=PARAMS,
    threads: RESOURCES["default"]["threads"]
    resources:
        mem_mb=RESOURCES["default"]["mem_mb"],
        runtime=RESOURCES["default"]["runtime"],
    conda:
        ENV
    log:
        "logs/manifest/{corpus}.log",
    benchmark:
        "logs/benchmarks/manifest/{corpus}.tsv"
    shell:
        "python {input.script} --corpus {wildcards.corpus} --root {input.root}"
        " --out {output.manifest} --params {params.config} > {log} 2>&1"
