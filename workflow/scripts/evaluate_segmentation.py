"""Snakemake adapter: FROC, cluster-level metrics and figures on the held-out images."""

from calcsig.logs import log_to
from calcsig.segment.corpus import evaluate_held_out

with log_to(snakemake.log[0]):
    evaluate_held_out(
        snakemake.input.images,
        snakemake.input.rois,
        snakemake.input.assignment,
        snakemake.params.segment_dir,
        snakemake.params.segment,
        snakemake.output.json,
        snakemake.output.froc,
        snakemake.output.gallery,
        with_selector=snakemake.params.segment["use_selector"],
    )
