"""Snakemake adapter: quality gate and HDoG candidates (with their selector features) of a batch of images."""

from pathlib import Path

from calcsig.batch import code_digest, recipe, run_batch
from calcsig.imageio import read_image
from calcsig.logs import log_to
from calcsig.qc import gate, image_issues, qc_row
from calcsig.segment.breast import breast_mask
from calcsig.segment.store import segment_image, write_segmentation

out_dir = Path(snakemake.output[0]).parent.parent
params, qc = snakemake.params.segment, snakemake.params.qc
code = code_digest(snakemake.input.code)


def files(image):
    return {"npz": out_dir / f"{image['image_id']}.npz", "tsv": out_dir / f"{image['image_id']}.tsv"}


def segment(image):
    pixels, spacing = read_image(image["path"]).pixels, image["pixel_spacing_mm"]
    breast = breast_mask(pixels, spacing, params["skin_margin_mm"], params["border_margin_mm"])
    issues = image_issues(pixels, spacing, breast, qc)
    row = qc_row("image", image["image_id"], issues)
    verdict = {"qc_status": row["status"], "qc_codes": row["codes"], "qc_reasons": row["reasons"]}
    if not gate(f"image {image['image_id']} ({image['path']})", issues, qc["on_bad_image"]):
        return {"n_candidates": 0, **verdict}  # skipped: no files, nothing of it is scored
    cand, table = segment_image(pixels, spacing, params)
    paths = files(image)
    write_segmentation(cand.labels, cand.breast, spacing, table, paths["npz"], paths["tsv"])
    return {"n_candidates": len(table), **verdict}


with log_to(snakemake.log[0]):
    run_batch(
        snakemake.params.images,
        segment,
        snakemake.output[0],
        id_column="image_id",
        files=files,
        recipe_of=lambda image: recipe("segment", params, qc, code, image),
    )
