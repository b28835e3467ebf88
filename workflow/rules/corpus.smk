# Ingest: a source in config -> validated corpus tables (images, rois, subjects).


checkpoint corpus:
    input:
        code=package_code("tables.py", "imageio.py", "ingest", "synthetic"),
    output:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        subjects=corpus_table("subjects"),
    log:
        "logs/corpus.log",
    benchmark:
        "benchmarks/results/corpus.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        source=config["corpus"]["source"],
        path=config["corpus"]["path"],
        adapter=lambda wildcards: config["corpus"][config["corpus"]["source"]],
        seed=config["seed"],
        out_dir=lambda wildcards, output: str(Path(output.images).parent),
    script:
        "../scripts/corpus.py"
