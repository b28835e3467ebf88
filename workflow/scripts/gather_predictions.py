"""Snakemake adapter: one predictions table for every model, fold and eval."""

from calcsig.logs import log_to
from calcsig.model.stage import gather_predictions

with log_to(snakemake.log[0]):
    gather_predictions(snakemake.input.predictions, snakemake.output[0])
