# Segment: HDoG candidates per image, scored by a selector trained on the train split;
# masks per ROI (the selector's operating point is applied there); segmentation evaluation.


rule train_selector:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        assignment="results/splits/assignment.tsv",
        code=package_code("tables.py", "imageio.py", "segment"),
    output:
        "results/segment/selector.joblib",
    log:
        "logs/segment/train_selector.log",
    benchmark:
        "benchmarks/results/segment/train_selector.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        segment=config["segment"],
    script:
        "../scripts/train_selector.py"


rule segment:
    input:
        unpack(segment_inputs),
    output:
        # one manifest per batch; each image's results/segment/{image_id}.npz/.tsv beside it
        "results/segment/batches/{batch}.tsv",
    log:
        "logs/segment/{batch}.log",
    benchmark:
        "benchmarks/results/segment/{batch}.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        images=segment_batch_params,
        # every scored candidate is kept; masks apply the operating point
        segment={**config["segment"], "selector_threshold": 0.0},
    script:
        "../scripts/segment.py"


rule masks:
    input:
        unpack(masks_inputs),
    output:
        # one manifest per batch; each ROI's results/masks/{roi_id}.npz beside it
        "results/masks/batches/{batch}.tsv",
    log:
        "logs/masks/{batch}.log",
    benchmark:
        "benchmarks/results/masks/{batch}.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        rois=rois_of_batch,
        masks=config["masks"],
        selector_threshold=(config["segment"]["selector_threshold"] if config["segment"]["use_selector"] else None),
    script:
        "../scripts/masks.py"


rule evaluate_segmentation:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        assignment="results/splits/assignment.tsv",
        segmented=lambda wildcards: segment_manifests(),
        code=package_code("tables.py", "imageio.py", "segment"),
    output:
        json="results/metrics/segmentation.json",
        froc=report("results/segment/froc.png", caption="../report/froc.rst", category="Segmentation"),
        gallery=report("results/segment/gallery.png", caption="../report/gallery.rst", category="Segmentation"),
    log:
        "logs/segment/evaluate_segmentation.log",
    benchmark:
        "benchmarks/results/segment/evaluate_segmentation.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        segment=config["segment"],
        segment_dir=lambda wildcards, input: str(Path(input.segmented[0]).parent.parent),
    script:
        "../scripts/evaluate_segmentation.py"
