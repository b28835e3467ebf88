# Report: one self-contained HTML page of everything above.


rule report:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        subjects=corpus_table("subjects"),
        balance="results/splits/balance.tsv",
        balance_json="results/splits/balance.json",
        audit="results/splits/audit.json",
        audit_table="results/splits/audit.tsv",
        segmentation="results/metrics/segmentation.json",
        froc="results/segment/froc.png",
        gallery="results/segment/gallery.png",
        features="results/features/rois.parquet",
        models="results/metrics/models.json",
        models_table="results/metrics/models.tsv",
        code=package_code("report.py"),
    output:
        report("results/report/index.html", caption="../report/index.rst", category="Report"),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/results/report.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        title=config["report"]["title"],
        config=config,
    script:
        "../scripts/report.py"
