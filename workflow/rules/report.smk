# Report: one self-contained HTML page of everything above.


rule report:
    input:
        unpack(report_inputs),
    output:
        report("results/report/index.html", caption="../report/index.rst", category="Report"),
    log:
        "logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        title=config["report"]["title"],
        config=config,
    script:
        "../scripts/report.py"
