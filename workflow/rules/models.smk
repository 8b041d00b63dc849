rule tune_candidate:
    """Cross-validate one grid candidate of a classical model on every training side its
    train job tunes on (train.grid_jobs): a score file train reads to pick the best."""
    input:
        features=feature_files,
        split=layout.SPLIT,
        script="scripts/tune_candidate.py",
    output:
        scores=layout.GRID_SCORES,
    params:
        **stage_params("corpora", "train.scoring", "train.cv_folds", "train.seed", "{model}"),
        run=run_options,
    threads: job_threads("train_classical")
    resources:
        **job_resources("train_classical"),
    conda:
        ENV
    log:
        job_log("grid", f"{layout.RUN}/{{candidate}}"),
    benchmark:
        job_benchmark("grid", f"{layout.RUN}/{{candidate}}")
    shell:
        stage_shell("python {input.script} --model {wildcards.model}"
                    " --candidate {wildcards.candidate} {params.run} --out {output.scores}")


rule train:
    """Tune (GridSearchCV) or fit one model on one protocol x feature set (+ speaker_cv folds)."""
    input:
        features=feature_files,
        split=layout.SPLIT,
        script="scripts/train.py",
        candidates=candidate_scores,  # train.grid_jobs: the tune_candidate jobs' scores
    output:
        model=directory(layout.MODEL),
    params:
        **stage_params("corpora", "train.scoring", "train.cv_folds", "train.seed", "{model}"),
        run=run_options,
        candidates=candidates_option,
    threads: job_threads(train_kind_of)
    resources:
        **job_resources(train_kind_of),
    priority: train_job_priority
    conda:
        ENV
    log:
        job_log("train", layout.RUN),
    benchmark:
        job_benchmark("train", layout.RUN)
    shell:
        stage_shell("python {input.script} --model {wildcards.model} {params.run}"
                    " --out {output.model}{params.candidates} --jobs {threads}")


rule evaluate:
    """Metrics, CIs and confusion of one model on its protocol's test split."""
    input:
        model=layout.MODEL,
        features=feature_files,
        split=layout.SPLIT,
        script="scripts/evaluate.py",
    output:
        **evaluate_outputs(),
    params:
        **stage_params("corpora", "evaluate", *(["labels"] if "labels" in config else [])),
        run=run_options,
        out=subpath(output.metrics, parent=True),
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    conda:
        ENV
    log:
        job_log("evaluate", layout.RUN),
    benchmark:
        job_benchmark("evaluate", layout.RUN)
    shell:
        stage_shell("python {input.script} --model-dir {input.model} {params.run}"
                    " --out {params.out}")
