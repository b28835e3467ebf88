"""Snakemake adapter: one objects table and one ROI table for the whole corpus."""

from calcsig.batch import read_manifests
from calcsig.features.gather import gather_feature_tables
from calcsig.logs import log_to

with log_to(snakemake.log[0]):
    extracted = read_manifests(snakemake.input.manifests)
    extracted = extracted[extracted["roi"] != ""]  # ROIs that failed the quality gate have no features
    gather_feature_tables(
        list(extracted["objects"]), list(extracted["roi"]), snakemake.output.objects, snakemake.output.rois
    )
