"""Snakemake adapter: one model on one outer fold (or the final model on eval)."""

from pathlib import Path

from calcsig.logs import log_to
from calcsig.model.stage import run_outer_fold

inputs = snakemake.input
with log_to(snakemake.log[0]):
    run_outer_fold(
        inputs.objects,
        inputs.rois,
        inputs.corpus_rois,
        inputs.images,
        inputs.assignment,
        {**snakemake.params.model, "grid_file": inputs.grid, "n_jobs": snakemake.threads},
        snakemake.wildcards.fold,
        snakemake.wildcards.model,
        str(Path(snakemake.output.predictions).parent),
        masks_dir=snakemake.params.masks_dir,
        cohort_tsv=inputs.cohort,
    )
