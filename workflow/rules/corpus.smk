# Ingest: a source in config -> validated corpus tables (images, rois, subjects).


checkpoint corpus:
    input:
        # every file the source is read from, so that an edited label or a swapped image reruns ingest
        sources=corpus_source_files,
        code=code("corpus.py", adapter_module(config["corpus"]["source"])),
    output:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        subjects=corpus_table("subjects"),
        skipped="results/corpus/skipped.tsv",
    log:
        "logs/corpus.log",
    benchmark:
        "results/benchmarks/corpus.tsv"
    conda:
        "../../envs/corpus.yaml"
    threads: WHOLE_CORPUS_THREADS
    resources:
        **job_resources("corpus"),
    params:
        source=config["corpus"]["source"],
        path=config["corpus"]["path"],
        adapter=config["corpus"].get(config["corpus"]["source"], {}),
        # the seed generates the synthetic corpus; real sources do not use it
        seed=config["seed"] if config["corpus"]["source"] == "synthetic" else None,
    script:
        "../scripts/corpus.py"
