"""Snakemake adapter: audit the split for subject overlap, duplicates and label conflicts.

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
        )
    finally:
        try:
            with open(snakemake.output.audit) as fh:
                log.info("audit findings:\n%s", json.dumps(json.load(fh), indent=1))
        except FileNotFoundError:
            pass
