"""Snakemake adapter: the self-contained HTML report."""

from calcsig import report as r
from calcsig.logs import log_to

i = snakemake.input
with log_to(snakemake.log[0]):
    sections = [
        r.corpus_section(i.images, i.rois, i.subjects),
        r.splits_section(i.balance, i.balance_json, i.audit, i.audit_table),
        r.segmentation_section(i.segmentation, i.froc, i.gallery),
        r.features_section(i.features),
        r.models_section(i.models, i.models_table),
    ]
    r.render_report(sections, snakemake.output[0], snakemake.params.title, snakemake.params.config)
