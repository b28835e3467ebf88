# Report: one self-contained HTML page of everything above.
#
# Its inputs are chosen from what this corpus produces (report_inputs), so the page
# renders for a metadata-only corpus too: every section whose input is absent says why.


def produced_by_a_rule(path):
    """True when some rule declares `path` as an output (e.g. the cohort stage's files)."""
    return any(path in [str(f) for f in r.output] for r in workflow.rules)


def report_inputs(wildcards):
    """The report's inputs by name (calcsig.report.inputs.INPUTS): always the corpus, split and audit
    files; segmentation when images have pixels; features and models when ROIs are located on them."""
    inputs = {
        "images": corpus_table("images"),
        "rois": corpus_table("rois"),
        "subjects": corpus_table("subjects"),
        "assignment": "results/splits/assignment.tsv",
        "balance": "results/splits/balance.tsv",
        "balance_json": "results/splits/balance.json",
        "audit": "results/splits/audit.json",
        "audit_table": "results/splits/audit.tsv",
        "code": package_code("report"),
    }
    for name, path in (
        ("cohort_summary", "results/cohort/summary.json"),
        ("cohort_rois", "results/cohort/rois.tsv"),
    ):
        if produced_by_a_rule(path):
            inputs[name] = path
    if pixel_images():
        inputs["segmentation"] = "results/metrics/segmentation.json"
        inputs["gallery"] = "results/segment/gallery.png"
    if located_rois():
        main = config["model"]["main_model"]
        inputs.update(
            features="results/features/rois.parquet",
            objects="results/features/objects.parquet",
            models="results/metrics/models.json",
            models_table="results/metrics/models.tsv",
            importance=f"results/model/outereval/{main}/search.json",
            radiomics_foreground=shipped(config["features"]["radiomics_foreground"]),
            radiomics_background=shipped(config["features"]["radiomics_background"]),
        )
    return inputs


def declared_benchmarks():
    """Each rule's benchmark file pattern, as declared: the report finds the timings wherever they are kept."""
    return {r.name: str(r.benchmark) for r in workflow.rules if r.benchmark and r.name != "report"}


def declared_logs():
    """Each rule's log file patterns (the report's own log is still being written)."""
    return {r.name: [str(f) for f in r.log] for r in workflow.rules if r.log and r.name != "report"}


rule report:
    input:
        unpack(report_inputs),
    output:
        report("results/report/index.html", caption="../report/index.rst", category="Report"),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/results/report.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        config=config,
        snakefile=workflow.main_snakefile,
        workflow_dir=workflow.basedir,
        benchmarks=lambda wildcards: declared_benchmarks(),
        logs=lambda wildcards: declared_logs(),
    script:
        "../scripts/report.py"
