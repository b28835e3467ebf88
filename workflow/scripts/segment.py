"""Snakemake adapter: HDoG candidates (with their selector features) of a batch of images."""

from pathlib import Path

from calcsig.batch import code_digest, recipe, run_batch
from calcsig.logs import log_to
from calcsig.segment.store import segment_image_file

out_dir = Path(snakemake.output[0]).parent.parent
params = snakemake.params.segment
code = code_digest(snakemake.input.code)


def files(image):
    return {"npz": out_dir / f"{image['image_id']}.npz", "tsv": out_dir / f"{image['image_id']}.tsv"}


def segment(image):
    paths = files(image)
    n = segment_image_file(image["path"], params, paths["npz"], paths["tsv"], image["pixel_spacing_mm"])
    return {"n_candidates": n}


with log_to(snakemake.log[0]):
    run_batch(
        snakemake.params.images,
        segment,
        snakemake.output[0],
        id_column="image_id",
        files=files,
        recipe_of=lambda image: recipe("segment", params, code, image),
    )
