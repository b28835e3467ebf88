# Segment: HDoG candidates per image (with their selector features, stored once); a selector
# trained on the stored candidates of the train split; masks per ROI (the selector's
# operating point is applied there); segmentation evaluation on the held-out images.


rule segment:
    input:
        unpack(segment_inputs),
    output:
        # one manifest per batch; each image's results/segment/{image_id}.npz/.tsv beside it
        "results/segment/batches/{batch}.tsv",
    log:
        "logs/segment/{batch}.log",
    benchmark:
        "results/benchmarks/segment/{batch}.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        images=image_items,
        segment=settings("segment", CANDIDATE_KEYS),
        qc=settings("qc", IMAGE_QC_KEYS),
    script:
        "../scripts/segment.py"


rule train_selector:
    input:
        unpack(selector_inputs),
    output:
        "results/segment/selector.joblib",
    log:
        "logs/segment/train_selector.log",
    benchmark:
        "results/benchmarks/segment/train_selector.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        segment=settings("segment", SELECTOR_KEYS),
    script:
        "../scripts/train_selector.py"


rule masks:
    input:
        unpack(masks_inputs),
    output:
        # one manifest per batch; each ROI's results/masks/{roi_id}.npz beside it
        "results/masks/batches/{batch}.tsv",
    log:
        "logs/masks/{batch}.log",
    benchmark:
        "results/benchmarks/masks/{batch}.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        rois=roi_items,
        masks=config["masks"],
        qc=settings("qc", ROI_QC_KEYS),
        selector_threshold=lambda wildcards: operating_threshold(),
    script:
        "../scripts/masks.py"


rule evaluate_segmentation:
    input:
        unpack(segmentation_evaluation_inputs),
    output:
        json="results/metrics/segmentation.json",
        froc=report("results/segment/froc.png", caption="../report/froc.rst", category="Segmentation"),
        gallery=report("results/segment/gallery.png", caption="../report/gallery.rst", category="Segmentation"),
    log:
        "logs/segment/evaluate_segmentation.log",
    benchmark:
        "results/benchmarks/segment/evaluate_segmentation.tsv"
    conda:
        "../../envs/segment.yaml"
    params:
        segment=settings("segment", EVALUATION_KEYS),
        selector_threshold=lambda wildcards: operating_threshold(),
        selector_status=lambda wildcards: selector_status(),
    script:
        "../scripts/evaluate_segmentation.py"
