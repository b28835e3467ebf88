"""Snakemake adapter: foreground, background bands and object distances of one ROI."""

from calcsig.logs import log_to
from calcsig.masks import roi_masks_file

with log_to(snakemake.log[0]) as log:
    arrays = roi_masks_file(snakemake.input.npz, snakemake.params.roi, snakemake.params.masks, snakemake.output[0],
                            segment_tsv=snakemake.input.tsv, selector_threshold=snakemake.params.selector_threshold)
    log.info("%s: %d objects, %d too small, %d rejected by the selector", snakemake.wildcards.roi_id,
             len(arrays["object_ids"]), int(arrays["n_dropped_small"]), int(arrays["n_rejected_selector"]))
