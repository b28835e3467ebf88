# Shared helpers: config validation and input functions. No rules here.

import os
import sys
from pathlib import Path

import pandas as pd

from calcsig.config import load_config
from calcsig.errors import ConfigError

REPO = Path(workflow.basedir)

# Scripts import calcsig; in a per-stage conda env the package is not
# installed, so its source folder is put on the path of every job (and
# declared below, so that remote executors pass it on).
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
)


envvars:
    "PYTHONPATH",

try:
    config.update(load_config(config))
except ConfigError as error:
    sys.exit(f"calcsig: invalid configuration:\n{error}")


def package_code(*parts):
    """The calcsig source files a rule depends on, so a code change reruns it.

    Snakemake's code trigger sees a rule's script, not the library it calls;
    listing the library's files as inputs closes that gap.
    """
    files = []
    for part in ("__init__.py", "paths.py", "errors.py") + parts:
        path = REPO / "src" / "calcsig" / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [str(f.relative_to(REPO)) if f.is_relative_to(Path.cwd()) else str(f) for f in files]


def corpus_table(kind):
    return f"results/corpus/{kind}.tsv"


def _corpus(kind):
    """A corpus table, once the corpus checkpoint has produced it."""
    path = getattr(checkpoints.corpus.get().output, kind)
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


def roi_row(roi_id):
    """The ROI's rois.tsv row as a dict of strings (empty cells are empty strings)."""
    rois = _corpus("rois")
    return rois.loc[rois["roi_id"] == roi_id].iloc[0].to_dict()


def image_of_roi(roi_id):
    return roi_row(roi_id)["image_id"]


def image_row(image_id):
    images = _corpus("images")
    return images.loc[images["image_id"] == image_id].iloc[0].to_dict()


def shipped(path):
    """A shipped resource named in config: relative to the working directory if it is
    there, else to the repository (resources/ travels with the workflow)."""
    return path if Path(path).is_absolute() or Path(path).exists() else str(REPO / path)


def segment_inputs(wildcards):
    inputs = {
        "image": image_row(wildcards.image_id)["path"],
        "code": package_code("imageio.py", "segment"),
    }
    if config["segment"]["use_selector"]:
        inputs["selector"] = "results/segment/selector.joblib"
    return inputs


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
        inputs["masks"] = expand("results/masks/{roi_id}.npz", roi_id=located_rois())
    return inputs


def prediction_files():
    return expand(
        "results/model/outer{fold}/{model}/predictions.parquet",
        fold=outer_fold_labels(),
        model=model_names(),
    )


def final_targets():
    return [
        *(corpus_table(kind) for kind in ("images", "rois", "subjects")),
        "results/splits/audit.json",
        "results/metrics/segmentation.json",
        "results/model/predictions.parquet",
        "results/metrics/models.json",
        "results/report/index.html",
    ]
