"""Snakemake adapter: HDoG candidates of one image, scored by the selector when there is one."""

from calcsig.logs import log_to
from calcsig.segment.stage import segment_image_file

with log_to(snakemake.log[0]) as log:
    n = segment_image_file(snakemake.input.image, snakemake.params.segment, snakemake.output.npz,
                           snakemake.output.tsv, selector_path=snakemake.input.get("selector"),
                           pixel_spacing_mm=float(snakemake.params.pixel_spacing_mm))
    log.info("%s: %d candidates%s", snakemake.wildcards.image_id, n, "" if n else " (no detection)")
