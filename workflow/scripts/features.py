"""Snakemake adapter: local and global features of one ROI."""

from calcsig.features.stage import extract_roi_features
from calcsig.logs import log_to

with log_to(snakemake.log[0]):
    params = {**snakemake.params.features,
              "radiomics_foreground": snakemake.input.foreground_settings,
              "radiomics_background": snakemake.input.background_settings}
    extract_roi_features(snakemake.input.masks, snakemake.input.image, params,
                         snakemake.output.objects, snakemake.output.roi, roi_id=snakemake.wildcards.roi_id)
