"""Snakemake adapter: FROC, cluster-level FROC and metrics, and figures on the held-out images."""

from pathlib import Path

from calcsig.logs import log_to
from calcsig.segment.evaluate_files import evaluate_held_out
from calcsig.segment.store import segmented_images

inputs = snakemake.input
with log_to(snakemake.log[0]):
    evaluate_held_out(
        inputs.images,
        inputs.rois,
        inputs.assignment,
        Path(inputs.segmented[0]).parent.parent,
        snakemake.params.segment,
        snakemake.output.json,
        snakemake.output.froc,
        snakemake.output.gallery,
        snakemake.output.gallery_worst,
        selector_path=inputs.selectors[0] if inputs.get("selectors") else None,
        operating_point_path=inputs.operating_points[0] if inputs.get("operating_points") else None,
        lesion_insertion_path=inputs.get("lesion_insertion"),
        segmented=segmented_images(inputs.segmented),
        selector_status=snakemake.params.selector_status,
        workers=snakemake.threads,
    )
