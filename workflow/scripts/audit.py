"""Snakemake adapter: audit the split for subject overlap, duplicates and label conflicts at every level.

Optional, when the rule declares them: input `hashes` (the partition's hash
table, so the images are not read again) and params `inner_folds` and `seed`
(model.inner_folds and model.seed, so the inner folds are checked too; without
them the audit checks the splits and outer folds and lists no inner level).
With audit_policy fail, Snakemake removes the outputs of the failed job; the
findings are also written to the log, which it keeps.
"""

import json

from calcsig.logs import log_to
from calcsig.partition.stage import run_audit

with log_to(snakemake.log[0]) as log:
    try:
        run_audit(
            snakemake.input.images,
            snakemake.input.rois,
            snakemake.input.assignment,
            snakemake.params.partition,
            snakemake.output.audit,
            snakemake.output.table,
            hashes_tsv=snakemake.input.get("hashes"),
            inner_folds=snakemake.params.get("inner_folds"),
            seed=snakemake.params.get("seed"),
        )
    finally:
        try:
            with open(snakemake.output.audit) as fh:
                log.info("audit findings:\n%s", json.dumps(json.load(fh), indent=1))
        except FileNotFoundError:
            pass
