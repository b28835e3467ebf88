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
    params:
        segment=config["segment"],
    log:
        "logs/segment/train_selector.log",
    benchmark:
        "benchmarks/results/segment/train_selector.tsv"
    conda:
        "../../envs/segment.yaml"
    script:
        "../scripts/train_selector.py"


rule segment:
    input:
        unpack(segment_inputs),
    output:
        npz="results/segment/{image_id}.npz",
        tsv="results/segment/{image_id}.tsv",
    params:
        # every scored candidate is kept; masks apply the operating point
        segment={**config["segment"], "selector_threshold": 0.0},
        pixel_spacing_mm=lambda wildcards: image_row(wildcards.image_id)["pixel_spacing_mm"],
    log:
        "logs/segment/{image_id}.log",
    benchmark:
        "benchmarks/results/segment/{image_id}.tsv"
    conda:
        "../../envs/segment.yaml"
    script:
        "../scripts/segment.py"


rule masks:
    input:
        npz=lambda wildcards: f"results/segment/{image_of_roi(wildcards.roi_id)}.npz",
        tsv=lambda wildcards: f"results/segment/{image_of_roi(wildcards.roi_id)}.tsv",
        code=package_code("masks.py", "segment"),
    output:
        "results/masks/{roi_id}.npz",
    params:
        masks=config["masks"],
        roi=lambda wildcards: roi_row(wildcards.roi_id),
        selector_threshold=(
            config["segment"]["selector_threshold"] if config["segment"]["use_selector"] else None
        ),
    log:
        "logs/masks/{roi_id}.log",
    benchmark:
        "benchmarks/results/masks/{roi_id}.tsv"
    conda:
        "../../envs/segment.yaml"
    script:
        "../scripts/masks.py"


rule evaluate_segmentation:
    input:
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        assignment="results/splits/assignment.tsv",
        segmented=lambda wildcards: expand("results/segment/{image_id}.tsv", image_id=pixel_images()),
        code=package_code("tables.py", "imageio.py", "segment"),
    output:
        json="results/metrics/segmentation.json",
        froc=report("results/segment/froc.png", caption="../report/froc.rst", category="Segmentation"),
        gallery=report("results/segment/gallery.png", caption="../report/gallery.rst", category="Segmentation"),
    params:
        segment=config["segment"],
        segment_dir=lambda wildcards, output: str(Path(output.froc).parent),
    log:
        "logs/segment/evaluate_segmentation.log",
    benchmark:
        "benchmarks/results/segment/evaluate_segmentation.tsv"
    conda:
        "../../envs/segment.yaml"
    script:
        "../scripts/evaluate_segmentation.py"
