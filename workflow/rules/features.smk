# Features: per-object radiomics and region properties, per-ROI topology and
# distribution descriptors; then one table of each for the model.


rule features:
    input:
        unpack(features_inputs),
    output:
        # one manifest per batch; each ROI's results/features/{roi_id}.objects.parquet
        # and .roi.parquet beside it
        "results/features/batches/{batch}.tsv",
    log:
        "logs/features/{batch}.log",
    benchmark:
        "results/benchmarks/features/{batch}.tsv"
    conda:
        "../../envs/features.yaml"
    threads: 1
    resources:
        **job_resources("features"),
    params:
        rois=roi_items,
        families=config["features"]["families"],
    script:
        "../scripts/features.py"


rule gather_features:
    input:
        manifests=lambda wildcards: features_manifests(),
        foreground_settings=shipped(config["features"]["radiomics_foreground"]),
        background_settings=shipped(config["features"]["radiomics_background"]),
        code=code("gather_features.py"),
    output:
        objects="results/features/objects.parquet",
        rois="results/features/rois.parquet",
        # every feature column of this run and its meaning (what docs/features.md shows for the defaults)
        catalogue="results/features/catalogue.tsv",
    log:
        "logs/features/gather_features.log",
    benchmark:
        "results/benchmarks/features/gather_features.tsv"
    conda:
        "../../envs/features.yaml"
    # nothing else can run beside it: its threads read the per-ROI tables
    threads: WHOLE_CORPUS_THREADS
    resources:
        **job_resources("gather_features"),
    params:
        n_scales=len(config["masks"]["dilation_scales_mm"]),
    script:
        "../scripts/gather_features.py"
