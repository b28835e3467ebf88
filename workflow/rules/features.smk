# Features: per-object radiomics and region properties, per-ROI topology and
# distribution descriptors; then one table of each for the model.


rule features:
    input:
        masks="results/masks/{roi_id}.npz",
        image=lambda wildcards: image_row(image_of_roi(wildcards.roi_id))["path"],
        foreground_settings=shipped(config["features"]["radiomics_foreground"]),
        background_settings=shipped(config["features"]["radiomics_background"]),
        code=package_code("imageio.py", "features"),
    output:
        objects="results/features/{roi_id}.objects.parquet",
        roi="results/features/{roi_id}.roi.parquet",
    params:
        features=config["features"],
    log:
        "logs/features/{roi_id}.log",
    benchmark:
        "benchmarks/results/features/{roi_id}.tsv"
    conda:
        "../../envs/features.yaml"
    script:
        "../scripts/features.py"


rule gather_features:
    input:
        objects=lambda wildcards: expand("results/features/{roi_id}.objects.parquet", roi_id=located_rois()),
        rois=lambda wildcards: expand("results/features/{roi_id}.roi.parquet", roi_id=located_rois()),
        code=package_code("features"),
    output:
        objects="results/features/objects.parquet",
        rois=report("results/features/rois.parquet", caption="../report/features.rst", category="Features"),
    log:
        "logs/features/gather_features.log",
    benchmark:
        "benchmarks/results/features/gather_features.tsv"
    conda:
        "../../envs/features.yaml"
    script:
        "../scripts/gather_features.py"
