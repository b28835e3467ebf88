"""Snakemake adapter: one model on one outer fold (or the final model on eval)."""

from pathlib import Path

from calcsig.logs import log_to
from calcsig.model.stage import run_outer_fold

with log_to(snakemake.log[0]):
    run_outer_fold(
        objects=snakemake.input.objects,
        rois=snakemake.input.rois,
        assignment=snakemake.input.assignment,
        images=snakemake.input.images,
        grid=snakemake.input.grid,
        cohort=snakemake.input.cohort,
        params={**snakemake.params.model, "n_jobs": snakemake.threads},
        fold=snakemake.wildcards.fold,
        model_name=snakemake.wildcards.model,
        out_dir=str(Path(snakemake.output.predictions).parent),
        masks_dir=snakemake.params.masks_dir,
    )
