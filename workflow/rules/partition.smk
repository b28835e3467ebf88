# Partition: subjects -> train/dev/eval and outer folds, balanced; then the leak audit.
# Two checks run before the image stages (priority): the corpus against the config right
# after ingest, and, once partitioned, whether the cohort fills the folds.


rule check_corpus:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        subjects=corpus_table("subjects"),
        code=code("check_corpus.py"),
    output:
        "results/corpus/checked.txt",
    log:
        "logs/check_corpus.log",
    benchmark:
        "results/benchmarks/check_corpus.tsv"
    priority: 200
    conda:
        "../../envs/corpus.yaml"
    threads: 1
    resources:
        **job_resources("check_corpus"),
    params:
        settings=corpus_check_settings(config),
    script:
        "../scripts/check_corpus.py"


rule partition:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        subjects=corpus_table("subjects"),
        code=code("partition.py"),
    output:
        assignment="results/splits/assignment.tsv",
        balance=report(
            "results/splits/balance.tsv",
            caption="../report/balance.rst",
            category="Splits",
        ),
        balance_json="results/splits/balance.json",
        # each image's pixel-content and perceptual hashes, read again by the audit
        hashes="results/splits/image_hashes.tsv",
    log:
        "logs/partition.log",
    benchmark:
        "results/benchmarks/partition.tsv"
    priority: 100
    conda:
        "../../envs/corpus.yaml"
    # one thread beside the per-item jobs of a local run; the slurm profile gives it a node's cores
    threads: 1
    resources:
        **job_resources("partition"),
    params:
        partition=settings("partition", PARTITION_KEYS),
        seed=config["seed"],
    script:
        "../scripts/partition.py"


rule audit:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        assignment="results/splits/assignment.tsv",
        hashes="results/splits/image_hashes.tsv",
        code=code("audit.py"),
    output:
        audit="results/splits/audit.json",
        table=report(
            "results/splits/audit.tsv",
            caption="../report/audit.rst",
            category="Splits",
        ),
    log:
        "logs/audit.log",
    benchmark:
        "results/benchmarks/audit.tsv"
    conda:
        "../../envs/corpus.yaml"
    threads: 1
    resources:
        **job_resources("audit"),
    params:
        partition=settings("partition", AUDIT_KEYS),
        # the model's inner folds are audited too: the same function makes them
        inner_folds=config["model"]["inner_folds"],
        seed=config["model"]["seed"],
    script:
        "../scripts/audit.py"


rule check_cohort:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        assignment="results/splits/assignment.tsv",
        code=code("check_cohort.py"),
    output:
        "results/cohort/checked.txt",
    log:
        "logs/check_cohort.log",
    benchmark:
        "results/benchmarks/check_cohort.tsv"
    priority: 100
    conda:
        "../../envs/corpus.yaml"
    threads: 1
    resources:
        **job_resources("check_cohort"),
    params:
        cohort=config["cohort"],
    script:
        "../scripts/check_cohort.py"


rule cohort:
    input:
        unpack(cohort_inputs),
    output:
        rois="results/cohort/rois.tsv",
        summary="results/cohort/summary.json",
    log:
        "logs/cohort.log",
    benchmark:
        "results/benchmarks/cohort.tsv"
    conda:
        "../../envs/corpus.yaml"
    threads: 1
    resources:
        **job_resources("cohort"),
    params:
        cohort=config["cohort"],
    script:
        "../scripts/cohort.py"
