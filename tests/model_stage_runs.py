"""Running the model stage's jobs the way the workflow does, for the tests."""

import json

from calcsig.model import stage


def job_inputs(files):
    """The keyword arguments a model job gets, from model_tables.write_tables paths."""
    return {
        "objects": files["objects"],
        "rois": files["rois"],
        "assignment": files["assignment"],
        "images": files["images"],
        "grid": files["grid"],
        "cohort": files["cohort"],
    }


def run_every_job(files, params, masks_dir=None):
    """Every model on every outer fold and the final model, then gather and evaluate.

    `files` are model_tables.write_tables paths plus "dir" for the outputs.
    Returns (gathered predictions, search records keyed by (model, fold), evaluation).
    """
    outs, searches = [], {}
    inputs = {**job_inputs(files), "params": params, "masks_dir": masks_dir}
    for model in stage.model_names(params):
        for fold in [*stage.outer_folds(files["assignment"]), "eval"]:
            out_dir = files["dir"] / model / fold
            if fold == "eval":
                paths = stage.run_final(**inputs, model_name=model, out_dir=out_dir)
            else:
                paths = stage.run_outer_fold(**inputs, fold=fold, model_name=model, out_dir=out_dir)
            outs.append(paths["predictions"])
            searches[(model, fold)] = json.loads(paths["search"].read_text())
    gathered = stage.gather_predictions(outs, files["dir"] / "predictions.parquet")
    result = stage.evaluate_models(
        outs,
        files["images"],
        params,
        files["dir"] / "models.json",
        files["dir"] / "models.tsv",
        corpus_rois_tsv=files["corpus_rois"],
    )
    return gathered, searches, result
