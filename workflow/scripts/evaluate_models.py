"""Snakemake adapter: metrics with bootstrap CIs, levels, and paired model comparisons."""

from calcsig.logs import log_to
from calcsig.model.stage import evaluate_models

with log_to(snakemake.log[0]):
    evaluate_models(
        snakemake.input.predictions,
        snakemake.input.images,
        snakemake.params.model,
        snakemake.output.json,
        snakemake.output.tsv,
        corpus_rois_tsv=snakemake.input.rois,
    )
