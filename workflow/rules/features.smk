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
        "benchmarks/results/features/{batch}.tsv"
    conda:
        "../../envs/features.yaml"
    params:
        rois=rois_of_batch,
        features=config["features"],
    script:
        "../scripts/features.py"


rule gather_features:
    input:
        manifests=lambda wildcards: features_manifests(),
        code=package_code("batch.py", "features"),
    output:
        objects="results/features/objects.parquet",
        rois="results/features/rois.parquet",
    log:
        "logs/features/gather_features.log",
    benchmark:
        "benchmarks/results/features/gather_features.tsv"
    conda:
        "../../envs/features.yaml"
    script:
        "../scripts/gather_features.py"
