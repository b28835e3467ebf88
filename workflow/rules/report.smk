# Report: one self-contained HTML page of everything above.
#
# Its inputs are chosen from what this corpus produces (report_inputs), so the page
# renders for a metadata-only corpus too: every section whose input is absent says why.


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
    # the page is drawn while `snakemake --rulegraph` runs beside it
    threads: 2
    resources:
        **job_resources("report"),
    params:
        config=config,
        snakefile=workflow.main_snakefile,
        workflow_dir=workflow.basedir,
        benchmarks=lambda wildcards: declared_benchmarks(),
        logs=lambda wildcards: declared_logs(),
    script:
        "../scripts/report.py"
