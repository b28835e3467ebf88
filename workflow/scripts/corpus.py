"""Snakemake adapter: build the corpus tables from the configured source."""

from calcsig.ingest.stage import build_corpus
from calcsig.logs import log_to

with log_to(snakemake.log[0]):
    build_corpus(
        source=snakemake.params.source,
        path=snakemake.params.path,
        params={**snakemake.params.adapter, "seed": snakemake.params.seed},
        out_dir=snakemake.params.out_dir,
        outputs=dict(snakemake.output),
    )
