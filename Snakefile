# calcsig: from mammograms to calcification signatures and validated risk models.
# The map of stages is ../shared/DESIGN.md and docs/contracts.md.

configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/corpus.smk"


rule all:
    input:
        final_targets(),
    default_target: True
