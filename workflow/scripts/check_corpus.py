"""Snakemake adapter: stop right after ingest when the corpus cannot serve the configured run."""

from pathlib import Path

from calcsig.checks import check_corpus, raise_if_problems
from calcsig.logs import log_to
from calcsig.paths import atomic_path
from calcsig.tables import read_table

inputs = snakemake.input
with log_to(snakemake.log[0]):
    problems = check_corpus(
        read_table(inputs.images, "images"),
        read_table(inputs.rois, "rois"),
        read_table(inputs.subjects, "subjects"),
        snakemake.params.settings,
    )
    raise_if_problems(problems, str(Path(inputs.images).parent))
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text("the corpus can serve the configured run\n")
