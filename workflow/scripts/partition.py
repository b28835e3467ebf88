"""Snakemake adapter: split subjects (by duplicate group) into train/dev/eval and outer folds.

The hash table output is optional: when the rule declares `hashes`, the images'
hashes are kept for the audit to reuse.
"""

from calcsig.logs import log_to
from calcsig.partition.stage import run_partition

with log_to(snakemake.log[0]) as log:
    summary = run_partition(
        snakemake.input.images,
        snakemake.input.rois,
        snakemake.input.subjects,
        snakemake.params.partition,
        snakemake.params.seed,
        snakemake.output.assignment,
        snakemake.output.balance,
        snakemake.output.balance_json,
        out_hashes=snakemake.output.get("hashes"),
        workers=snakemake.threads,
    )
    log.info("balance summary: %s", summary)
