"""Snakemake adapter: train the candidate selector on the train split."""

from calcsig.logs import log_to
from calcsig.segment.corpus import train_selector_on_split

with log_to(snakemake.log[0]) as log:
    n = train_selector_on_split(
        snakemake.input.images,
        snakemake.input.rois,
        snakemake.input.assignment,
        snakemake.params.segment,
        snakemake.output[0],
    )
    log.info("selector trained on %d train-split images", n)
