"""Snakemake adapter: clusters inserted into a batch of normal films, and the candidates detected on them."""

from pathlib import Path

from calcsig.batch import code_digest, recipe, run_batch
from calcsig.logs import log_to
from calcsig.segment.inserted import insert_lesions_file

out_dir = Path(snakemake.output[0]).parent.parent
params, seed = snakemake.params.segment, snakemake.params.seed
code = code_digest(snakemake.input.code)


def files(film):
    return {"npz": out_dir / f"{film['image_id']}.npz", "tsv": out_dir / f"{film['image_id']}.tsv"}


def insert(film):
    paths = files(film)
    return insert_lesions_file(
        film["path"], film["image_id"], film["pixel_spacing_mm"], params, seed, paths["npz"], paths["tsv"]
    )


with log_to(snakemake.log[0]):
    run_batch(
        snakemake.params.films,
        insert,
        snakemake.output[0],
        id_column="image_id",
        files=files,
        recipe_of=lambda film: recipe("insert_lesions", params, seed, code, film),
    )
