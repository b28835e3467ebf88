"""Snakemake adapter: the self-contained HTML report (a section whose stage did not run says why)."""

from calcsig.logs import log_to
from calcsig.report import INPUTS, RunInfo, build_report, snakemake_rule_graph

given = dict(snakemake.input.items())
params = snakemake.params
with log_to(snakemake.log[0]) as log:
    paths = {name: given.get(name) for name in INPUTS}
    graph, why_not = snakemake_rule_graph(params.snakefile, params.config)
    if why_not:
        log.warning("rule graph left out of the report: %s", why_not)
    run = RunInfo(
        workflow_dir=params.workflow_dir,
        rule_graph=graph,
        rule_graph_error=why_not or "",
        benchmark_patterns=params.benchmarks,
        log_patterns=params.logs,
    )
    build_report(paths, snakemake.output[0], params.config, run=run)
