"""Snakemake adapter: one objects table and one ROI table for the whole corpus, and the feature catalogue."""

from calcsig.batch import read_manifests
from calcsig.features.gather import gather_feature_tables, write_feature_catalogue
from calcsig.logs import log_to

inputs, outputs = snakemake.input, snakemake.output
with log_to(snakemake.log[0]):
    extracted = read_manifests(inputs.manifests)
    extracted = extracted[extracted["roi"] != ""]  # ROIs that failed the quality gate have no features
    gather_feature_tables(
        list(extracted["objects"]), list(extracted["roi"]), outputs.objects, outputs.rois, workers=snakemake.threads
    )
    write_feature_catalogue(
        inputs.foreground_settings, inputs.background_settings, snakemake.params.n_scales, outputs.catalogue
    )
