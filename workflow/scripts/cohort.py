"""Snakemake adapter: the cohort table (every corpus ROI, included or excluded with its reason)."""

import pandas as pd

from calcsig.batch import read_manifests
from calcsig.cohort import check_fold_capacity, final_cohort, provisional_cohort, write_cohort
from calcsig.logs import log_to
from calcsig.qc import FAILED
from calcsig.tables import read_table

inputs = snakemake.input
with log_to(snakemake.log[0]) as log:
    assignment = pd.read_csv(inputs.assignment, sep="\t", dtype=str, keep_default_na=False)
    cohort = provisional_cohort(
        read_table(inputs.rois, "rois"), read_table(inputs.images, "images"), snakemake.params.cohort
    )
    n_objects, qc_failed = None, set()
    if "features" in inputs.keys():
        features = pd.read_parquet(inputs.features, columns=["roi_id", "n_objects"])
        n_objects = features.set_index("roi_id")["n_objects"]
        masks = read_manifests(inputs.masks)
        qc_failed = set(masks.loc[masks["qc_status"] == FAILED, "roi_id"])
    cohort = final_cohort(cohort, assignment, n_objects, qc_failed, snakemake.params.cohort["require_detected_objects"])
    summary = write_cohort(cohort, snakemake.output.rois, snakemake.output.summary)
    log.info("cohort: %s", summary)
    check_fold_capacity(cohort, assignment)
