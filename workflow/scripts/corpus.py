"""Snakemake adapter: build the corpus tables from the configured source."""

from pathlib import Path

from calcsig.ingest.stage import build_corpus
from calcsig.logs import log_to

params = dict(snakemake.params.adapter)
if snakemake.params.seed is not None:
    params["seed"] = snakemake.params.seed

with log_to(snakemake.log[0]):
    build_corpus(
        source=snakemake.params.source,
        path=snakemake.params.path,
        params=params,
        out_dir=str(Path(snakemake.output.images).parent),
        outputs=dict(snakemake.output),
        workers=snakemake.threads,
    )
