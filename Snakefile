# calcsig: from mammograms to calcification signatures and validated risk models.
# The stages, their file contracts and the design decisions: docs/architecture.md.

# config.yaml is read by calcsig (workflow/rules/common.smk), so that an error in it names its line.


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/partition.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report.smk"


# Checks and small gathers run in the main snakemake process, never as cluster jobs: each
# takes about a second, less than a cluster job's own overhead.
localrules:
    all,
    check_corpus,
    check_cohort,
    cohort,
    gather_predictions,


rule all:
    default_target: True
    input:
        final_targets,
