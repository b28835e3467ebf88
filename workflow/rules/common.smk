# Shared helpers: config validation and input functions. No rules here.

import functools
import os
import sys
from pathlib import Path

import pandas as pd

from calcsig.batch import batches
from calcsig.config import load_config
from calcsig.errors import ConfigError

REPO = Path(workflow.basedir)

# Scripts import calcsig; in a per-stage conda env the package is not
# installed, so its source folder is put on the path of every job (and
# declared below, so that remote executors pass it on).
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)


envvars:
    "PYTHONPATH",


try:
    config.update(load_config(config))
except ConfigError as error:
    sys.exit(f"calcsig: invalid configuration:\n{error}")

# Stage seeds left null follow the top-level seed, so one key re-seeds the whole run.
for section, key in (("segment", "selector_random_state"), ("model", "seed")):
    if config[section][key] is None:
        config[section][key] = config["seed"]


def package_code(*parts):
    """The calcsig source files a rule depends on, so a code change reruns it.

    Snakemake's code trigger sees a rule's script, not the library it calls;
    listing the library's files as inputs closes that gap.
    """
    files = []
    for part in ("__init__.py", "paths.py", "errors.py") + parts:
        path = REPO / "src" / "calcsig" / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    # relative to the working directory where possible, as Snakemake prints inputs
    return [str(f.relative_to(Path.cwd())) if f.is_relative_to(Path.cwd()) else str(f) for f in files]


def corpus_table(kind):
    return f"results/corpus/{kind}.tsv"


def _corpus(kind):
    """A corpus table, once the corpus checkpoint has produced it."""
    path = getattr(checkpoints.corpus.get().output, kind)
    return _read_table(path, os.path.getmtime(path)).copy()


@functools.cache
def _read_table(path, mtime):
    # keyed by modification time: input functions ask for the same table many times
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def pixel_images():
    """IDs of the images whose pixels are present: the per-image stages run on these."""
    images = _corpus("images")
    return sorted(images.loc[images["has_pixels"].str.lower() == "true", "image_id"])


def located_rois():
    """IDs of the ROIs with a location (box, circle or mask) on an image with pixels."""
    rois = _corpus("rois")
    located = rois["shape"].isin(["bbox", "circle", "mask"]) & rois["image_id"].isin(pixel_images())
    return sorted(rois.loc[located, "roi_id"])


def shipped(path):
    """A shipped resource named in config: relative to the working directory if it is
    there, else to the repository (resources/ travels with the workflow)."""
    return path if Path(path).is_absolute() or Path(path).exists() else str(REPO / path)


def image_batches():
    return batches(pixel_images(), config["execution"]["images_per_job"])


def roi_batches():
    return batches(located_rois(), config["execution"]["rois_per_job"])


def batch_of_image(image_id):
    return next(b for b, ids in image_batches().items() if image_id in ids)


def segment_manifests():
    return expand("results/segment/batches/{batch}.tsv", batch=image_batches())


def masks_manifests():
    return expand("results/masks/batches/{batch}.tsv", batch=roi_batches())


def features_manifests():
    return expand("results/features/batches/{batch}.tsv", batch=roi_batches())


def segment_inputs(wildcards):
    images = _corpus("images").set_index("image_id")
    inputs = {
        "images": [images.at[i, "path"] for i in image_batches()[wildcards.batch]],
        "code": package_code("imageio.py", "batch.py", "segment"),
    }
    if config["segment"]["use_selector"]:
        inputs["selector"] = "results/segment/selector.joblib"
    return inputs


def segment_batch_params(wildcards):
    """(image_id, path, pixel spacing in mm) of each image of a segment batch."""
    images = _corpus("images").set_index("image_id")
    return [
        {"image_id": i, "path": images.at[i, "path"], "pixel_spacing_mm": float(images.at[i, "pixel_spacing_mm"])}
        for i in image_batches()[wildcards.batch]
    ]


def rois_of_batch(wildcards):
    """The rois.tsv rows of a ROI batch, each with its image's path."""
    rois = _corpus("rois").set_index("roi_id", drop=False)
    images = _corpus("images").set_index("image_id")
    return [
        {**rois.loc[r].to_dict(), "image_path": images.at[rois.at[r, "image_id"], "path"]}
        for r in roi_batches()[wildcards.batch]
    ]


def masks_inputs(wildcards):
    """The segment manifests of the images a ROI batch lies on."""
    images = {row["image_id"] for row in rois_of_batch(wildcards)}
    return {
        "segments": sorted({f"results/segment/batches/{batch_of_image(i)}.tsv" for i in images}),
        "code": package_code("batch.py", "masks.py", "segment"),
    }


def features_inputs(wildcards):
    return {
        "masks": f"results/masks/batches/{wildcards.batch}.tsv",
        "images": sorted({row["image_path"] for row in rois_of_batch(wildcards)}),
        "foreground_settings": shipped(config["features"]["radiomics_foreground"]),
        "background_settings": shipped(config["features"]["radiomics_background"]),
        "code": package_code("imageio.py", "batch.py", "features"),
    }


def outer_fold_labels():
    return [str(k) for k in range(1, config["partition"]["outer_folds"] + 1)] + ["eval"]


def model_names():
    from calcsig.model.stage import model_names as configured_models

    return configured_models(config["model"])


def model_inputs(wildcards):
    """Inputs of one model job; the mask baseline also reads every ROI's masks."""
    inputs = {
        "objects": "results/features/objects.parquet",
        "rois": "results/features/rois.parquet",
        "corpus_rois": corpus_table("rois"),
        "images": corpus_table("images"),
        "assignment": "results/splits/assignment.tsv",
        "code": package_code("model"),
    }
    if wildcards.model == "mask_brf":
        inputs["masks"] = masks_manifests()
    return inputs


def masks_dir(wildcards, input):
    """Where the ROI masks lie (beside their batch manifests), for the mask baseline."""
    return str(Path(input.masks[0]).parent.parent) if hasattr(input, "masks") else None


def prediction_files():
    return expand(
        "results/model/outer{fold}/{model}/predictions.parquet",
        fold=outer_fold_labels(),
        model=model_names(),
    )


def search_files():
    """Each model job's search record (chosen settings, or why a job was skipped)."""
    return expand("results/model/outer{fold}/{model}/search.json", fold=outer_fold_labels(), model=model_names())


def final_targets():
    return [
        *(corpus_table(kind) for kind in ("images", "rois", "subjects")),
        "results/splits/audit.json",
        "results/metrics/segmentation.json",
        "results/model/predictions.parquet",
        "results/metrics/models.json",
        "results/report/index.html",
    ]


# --- the report ---------------------------------------------------------------


def produced_by_a_rule(path):
    """True when some rule declares `path` as an output (e.g. the cohort stage's files)."""
    return any(path in [str(f) for f in r.output] for r in workflow.rules)


def report_inputs(wildcards):
    """The report's inputs by name (calcsig.report.inputs.INPUTS): always the corpus, split and audit
    files; segmentation when images have pixels; features and models when ROIs are located on them."""
    inputs = {
        "images": corpus_table("images"),
        "rois": corpus_table("rois"),
        "subjects": corpus_table("subjects"),
        "assignment": "results/splits/assignment.tsv",
        "balance": "results/splits/balance.tsv",
        "balance_json": "results/splits/balance.json",
        "audit": "results/splits/audit.json",
        "audit_table": "results/splits/audit.tsv",
        "code": package_code("report"),
    }
    for name, path in (
        ("cohort_summary", "results/cohort/summary.json"),
        ("cohort_rois", "results/cohort/rois.tsv"),
    ):
        if produced_by_a_rule(path):
            inputs[name] = path
    if pixel_images():
        inputs["segmentation"] = "results/metrics/segmentation.json"
        inputs["gallery"] = "results/segment/gallery.png"
    if located_rois():
        main = config["model"]["main_model"]
        inputs.update(
            features="results/features/rois.parquet",
            objects="results/features/objects.parquet",
            models="results/metrics/models.json",
            models_table="results/metrics/models.tsv",
            importance=f"results/model/outereval/{main}/search.json",
            radiomics_foreground=shipped(config["features"]["radiomics_foreground"]),
            radiomics_background=shipped(config["features"]["radiomics_background"]),
        )
    return inputs


def declared_benchmarks():
    """Each rule's benchmark file pattern, as declared: the report finds the timings wherever they are kept."""
    return {r.name: str(r.benchmark) for r in workflow.rules if r.benchmark and r.name != "report"}


def declared_logs():
    """Each rule's log file patterns (the report's own log is still being written)."""
    return {r.name: [str(f) for f in r.log] for r in workflow.rules if r.log and r.name != "report"}
