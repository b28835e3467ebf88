# Model: nested cross-validation per outer fold and model, the final model on eval,
# then metrics with confidence intervals and paired comparisons.


rule model_fold:
    input:
        unpack(model_inputs),
    output:
        predictions="results/model/outer{fold}/{model}/predictions.parquet",
        search="results/model/outer{fold}/{model}/search.json",
    log:
        "logs/model/outer{fold}/{model}.log",
    benchmark:
        "results/benchmarks/model/outer{fold}/{model}.tsv"
    wildcard_constraints:
        fold="[0-9]+|eval",
    conda:
        "../../envs/model.yaml"
    threads: 1
    resources:
        **job_resources("model_fold"),
    params:
        model=model_settings,
        masks_dir=masks_dir,
    script:
        "../scripts/model_fold.py"


rule gather_predictions:
    input:
        predictions=lambda wildcards: prediction_files(),
        code=code("gather_predictions.py"),
    output:
        "results/model/predictions.parquet",
    log:
        "logs/model/gather_predictions.log",
    benchmark:
        "results/benchmarks/model/gather_predictions.tsv"
    conda:
        "../../envs/model.yaml"
    threads: 1
    resources:
        **job_resources("gather_predictions"),
    script:
        "../scripts/gather_predictions.py"


rule evaluate_models:
    input:
        predictions=lambda wildcards: prediction_files(),
        searches=lambda wildcards: search_files(),
        images=corpus_table("images"),
        rois=corpus_table("rois"),
        code=code("evaluate_models.py"),
    output:
        json="results/metrics/models.json",
        tsv=report("results/metrics/models.tsv", caption="../report/models.rst", category="Model"),
    log:
        "logs/model/evaluate_models.log",
    benchmark:
        "results/benchmarks/model/evaluate_models.tsv"
    conda:
        "../../envs/model.yaml"
    threads: 1
    resources:
        **job_resources("evaluate_models"),
    params:
        model=settings("model", MODEL_EVALUATION_KEYS),
    script:
        "../scripts/evaluate_models.py"
