"""Snakemake adapter: stop before any image is processed when the cohort cannot fill the folds."""

import pandas as pd

from calcsig.cohort import check_fold_capacity, cohort_summary, provisional_cohort
from calcsig.logs import log_to
from calcsig.paths import atomic_path
from calcsig.tables import read_table

with log_to(snakemake.log[0]) as log:
    cohort = provisional_cohort(
        read_table(snakemake.input.rois, "rois"), read_table(snakemake.input.images, "images"), snakemake.params.cohort
    )
    log.info("cohort before segmentation: %s", cohort_summary(cohort)["excluded"])
    check_fold_capacity(cohort, pd.read_csv(snakemake.input.assignment, sep="\t", dtype=str, keep_default_na=False))
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text("the cohort can fill the folds\n")
