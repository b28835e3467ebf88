"""Snakemake adapter: train the candidate selector on the stored candidates of the train split."""

from pathlib import Path

from calcsig.logs import log_to
from calcsig.segment.selector import train_selector_on_split
from calcsig.segment.store import segmented_images

with log_to(snakemake.log[0]) as log:
    n = train_selector_on_split(
        snakemake.input.images,
        snakemake.input.rois,
        snakemake.input.assignment,
        Path(snakemake.input.segmented[0]).parent.parent,
        snakemake.params.segment,
        snakemake.output[0],
        segmented=segmented_images(snakemake.input.segmented),
    )
    log.info("selector trained on %d train-split images", n)
