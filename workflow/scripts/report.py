"""Snakemake adapter: the self-contained HTML report (a section whose stage did not run says why)."""

from concurrent.futures import ThreadPoolExecutor

from calcsig.logs import log_to
from calcsig.report import INPUTS, RunInfo, build_report, snakemake_rule_graph

given = dict(snakemake.input.items())
params = snakemake.params
with log_to(snakemake.log[0]) as log, ThreadPoolExecutor(1) as background:
    paths = {name: given.get(name) for name in INPUTS}
    # `snakemake --rulegraph` runs in its own process (the rule's second thread) while the page is drawn
    pending = background.submit(snakemake_rule_graph, params.snakefile, params.config)
    run = RunInfo(
        workflow_dir=params.workflow_dir,
        rule_graph_pending=pending,
        benchmark_patterns=params.benchmarks,
        log_patterns=params.logs,
    )
    build_report(paths, snakemake.output[0], params.config, run=run)
    why_not = pending.result()[1]
    if why_not:
        log.warning("rule graph left out of the report: %s", why_not)
