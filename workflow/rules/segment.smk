# Segment: HDoG candidates per image (with their selector features, stored once); candidate
# selectors trained on the stored candidates (the train split's, and with selector_scope
# outer_fold one per outer fold and one on train+dev), each with its operating point chosen
# on out-of-fold scores; masks per ROI (each ROI's selector and threshold applied there);
# lesions inserted into normal films (candidates detected on them; the training films' copies
# train the selector, the held-out films' copies are evaluated); segmentation evaluation on the
# held-out images.


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
    threads: 1
    resources:
        **job_resources("segment"),
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
        # scope: train (the train split), outer{k} (train+dev outside outer fold k), outer_eval (train+dev)
        model="results/segment/selector/{scope}.joblib",
        operating_point="results/segment/selector/{scope}.json",
    log:
        "logs/segment/train_selector/{scope}.log",
    benchmark:
        "results/benchmarks/segment/train_selector/{scope}.tsv"
    wildcard_constraints:
        scope="train|outer[0-9]+|outer_eval",
    conda:
        "../../envs/segment.yaml"
    threads: WHOLE_CORPUS_THREADS
    resources:
        **job_resources("train_selector"),
    params:
        segment=settings("segment", TRAINING_KEYS),
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
    threads: 1
    resources:
        **job_resources("masks"),
    params:
        rois=roi_items,
        masks=settings("masks", MASKS_KEYS),
        qc=settings("qc", ROI_QC_KEYS),
        selector_scope=config["segment"]["selector_scope"],
    script:
        "../scripts/masks.py"


rule insert_lesions:
    input:
        unpack(insertion_inputs),
    output:
        # one manifest per batch of normal films; each film's results/segment/inserted/{image_id}.npz/.tsv beside it
        "results/segment/inserted/batches/{batch}.tsv",
    log:
        "logs/segment/inserted/{batch}.log",
    benchmark:
        "results/benchmarks/segment/inserted/{batch}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: 1
    resources:
        **job_resources("insert_lesions"),
    params:
        films=normal_film_items,
        segment=settings("segment", INSERTION_KEYS),
        seed=config["seed"],
    script:
        "../scripts/insert_lesions.py"


rule lesion_insertion:
    input:
        unpack(lesion_insertion_inputs),
    output:
        json="results/segment/lesion_insertion.json",
        gallery=report(
            "results/segment/lesion_insertion.png",
            caption="../report/lesion_insertion.rst",
            category="Segmentation",
        ),
    log:
        "logs/segment/lesion_insertion.log",
    benchmark:
        "results/benchmarks/segment/lesion_insertion.tsv"
    conda:
        "../../envs/segment.yaml"
    # one thread beside the per-item jobs of a local run; the slurm profile gives it a node's cores
    threads: 1
    resources:
        **job_resources("lesion_insertion"),
    params:
        segment=settings("segment", INSERTION_EVALUATION_KEYS),
        seed=config["seed"],
    script:
        "../scripts/lesion_insertion.py"


rule evaluate_segmentation:
    input:
        unpack(segmentation_evaluation_inputs),
    output:
        json="results/metrics/segmentation.json",
        froc=report("results/segment/froc.png", caption="../report/froc.rst", category="Segmentation"),
        gallery=report("results/segment/gallery.png", caption="../report/gallery.rst", category="Segmentation"),
        gallery_worst=report(
            "results/segment/gallery_worst.png", caption="../report/gallery_worst.rst", category="Segmentation"
        ),
    log:
        "logs/segment/evaluate_segmentation.log",
    benchmark:
        "results/benchmarks/segment/evaluate_segmentation.tsv"
    conda:
        "../../envs/segment.yaml"
    # one thread beside the per-item jobs of a local run; the slurm profile gives it a node's cores
    threads: 1
    resources:
        **job_resources("evaluate_segmentation"),
    params:
        segment=settings("segment", EVALUATION_KEYS),
        selector_status=lambda wildcards: selector_status(),
    script:
        "../scripts/evaluate_segmentation.py"
