"""Snakemake adapter: one model on one outer fold (or the final model on eval)."""

from calcsig.logs import log_to
from calcsig.model.stage import run_outer_fold

with log_to(snakemake.log[0]):
    run_outer_fold(
        snakemake.input.objects,
        snakemake.input.rois,
        snakemake.input.corpus_rois,
        snakemake.input.images,
        snakemake.input.assignment,
        {**snakemake.params.model, "n_jobs": snakemake.threads},
        snakemake.wildcards.fold,
        snakemake.wildcards.model,
        snakemake.params.out_dir,
        masks_dir=snakemake.params.masks_dir,
    )
