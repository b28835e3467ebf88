"""Snakemake adapter: HDoG candidates of a batch of images, scored by the selector when there is one."""

from pathlib import Path

from calcsig.batch import run_batch
from calcsig.logs import log_to
from calcsig.segment.stage import segment_image_file

out_dir = Path(snakemake.output[0]).parent.parent
selector = snakemake.input.get("selector")


def segment(image):
    npz, tsv = out_dir / f"{image['image_id']}.npz", out_dir / f"{image['image_id']}.tsv"
    n = segment_image_file(
        image["path"],
        snakemake.params.segment,
        npz,
        tsv,
        selector_path=selector,
        pixel_spacing_mm=image["pixel_spacing_mm"],
    )
    return {"image_id": image["image_id"], "npz": str(npz), "tsv": str(tsv), "n_candidates": n}


with log_to(snakemake.log[0]):
    run_batch(snakemake.params.images, segment, snakemake.output[0])
