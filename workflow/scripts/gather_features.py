"""Snakemake adapter: one objects table and one ROI table for the whole corpus."""

from calcsig.features.gather import gather_feature_tables
from calcsig.logs import log_to

with log_to(snakemake.log[0]):
    gather_feature_tables(snakemake.input.objects, snakemake.input.rois,
                          snakemake.output.objects, snakemake.output.rois)
