"""Snakemake adapter: detection on the held-out normal films with inserted lesions, against their exact truth."""

from calcsig.batch import read_manifests
from calcsig.logs import log_to
from calcsig.segment.insertion_evaluation import evaluate_lesion_insertion

inputs = snakemake.input
stored = read_manifests(inputs.inserted)
with log_to(snakemake.log[0]) as log:
    result = evaluate_lesion_insertion(
        inputs.images,
        inputs.rois,
        inputs.assignment,
        {row["image_id"]: (row["npz"], row["tsv"]) for _, row in stored.iterrows()},
        snakemake.params.segment,
        snakemake.params.seed,
        snakemake.output.json,
        snakemake.output.gallery,
        selector_path=inputs.selectors[0] if inputs.get("selectors") else None,
        operating_point_path=inputs.operating_points[0] if inputs.get("operating_points") else None,
        workers=snakemake.threads,
    )
    log.info("%d clusters inserted into %d held-out normal films", result["n_clusters"], result["n_images"])
