# Partition: subjects -> train/dev/eval and outer folds, balanced; then the leak audit.


rule partition:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        subjects=corpus_table("subjects"),
        code=package_code("tables.py", "partition"),
    output:
        assignment="results/splits/assignment.tsv",
        balance=report(
            "results/splits/balance.tsv",
            caption="../report/balance.rst",
            category="Splits",
        ),
        balance_json="results/splits/balance.json",
    log:
        "logs/partition.log",
    benchmark:
        "benchmarks/results/partition.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        partition=config["partition"],
        seed=config["seed"],
    script:
        "../scripts/partition.py"


rule audit:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        assignment="results/splits/assignment.tsv",
        code=package_code("tables.py", "imageio.py", "partition"),
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
        "benchmarks/results/audit.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        partition=config["partition"],
    script:
        "../scripts/audit.py"
