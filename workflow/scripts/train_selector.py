"""Snakemake adapter: train one candidate selector (split or outer-fold scope) and choose its operating point."""

from pathlib import Path

from calcsig.batch import read_manifests
from calcsig.logs import log_to
from calcsig.segment.selector import train_selector_for_scope
from calcsig.segment.store import segmented_images

# normal films with inserted lesions, when the selector trains on them too
stored = read_manifests(snakemake.input.get("inserted", []))
inserted = {row["image_id"]: (row["npz"], row["tsv"]) for _, row in stored.iterrows()}

with log_to(snakemake.log[0]) as log:
    chosen = train_selector_for_scope(
        snakemake.input.images,
        snakemake.input.rois,
        snakemake.input.assignment,
        Path(snakemake.input.segmented[0]).parent.parent,
        snakemake.params.segment,
        snakemake.output.model,
        snakemake.output.operating_point,
        scope=snakemake.wildcards.scope,
        inserted=inserted,
        segmented=segmented_images(snakemake.input.segmented),
        workers=snakemake.threads,
    )
    log.info(
        "selector %s trained on %d of %d images with truth (and %d with inserted lesions) of %d subjects; "
        "operating point %.6g: %s",
        snakemake.wildcards.scope,
        chosen["n_images"],
        chosen["n_images_with_truth"],
        chosen["n_inserted_images"],
        chosen["n_subjects"],
        chosen["threshold"],
        chosen["rule"],
    )
