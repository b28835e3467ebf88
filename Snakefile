# calcsig: from mammograms to calcification signatures and validated risk models.
# The stages, their file contracts and the design decisions: docs/architecture.md.

# config.yaml is read by calcsig (workflow/rules/common.smk), so that an error in it names its line.


include: "workflow/rules/common.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/partition.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets,
