"""Snakemake adapter: the self-contained HTML report (sections whose stage did not run are left out)."""

import json

import pandas as pd

from calcsig import report as r
from calcsig.logs import log_to

i = snakemake.input
with log_to(snakemake.log[0]):
    sections = [
        r.corpus_section(i.images, i.rois, i.subjects),
        r.splits_section(i.balance, i.balance_json, i.audit, i.audit_table),
    ]
    summary = json.loads(open(i.cohort).read())
    cohort = r.Section("Cohort", "Which ROIs the models learn from; every other ROI with the reason it is left out.")
    cohort.blocks.append(r.table_html(pd.DataFrame(summary["flow"] or [{"reason": "none", "excluded": 0}])))
    sections.append(cohort)
    if "segmentation" in i.keys():
        sections.append(r.segmentation_section(i.segmentation, i.froc, i.gallery))
    if "models" in i.keys():
        sections += [r.features_section(i.features), r.models_section(i.models, i.models_table)]
    r.render_report(sections, snakemake.output[0], snakemake.params.title, snakemake.params.config)
