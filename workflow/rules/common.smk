# Shared helpers: config validation, the results check, batching, and input and parameter
# functions. No rules here. The design is explained in docs/architecture.md; what reruns
# after which change, in docs/reruns.md.

import functools
import os
import sys
from pathlib import Path

import pandas as pd

REPO = Path(workflow.basedir)
SRC = REPO / "src"
# The workflow runs the calcsig of its own repository, never another installed copy: first
# on the path of this process, and of every job (declared below, so that remote executors
# pass it on; per-stage conda envs do not install calcsig at all).
sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)


envvars:
    "PYTHONPATH",


import calcsig
from calcsig.batch import chunk
from calcsig.checks import corpus_check_settings
from calcsig.codedeps import code_files
from calcsig.cohort import provisional_cohort
from calcsig.config import load_workflow_config, resource_path
from calcsig.errors import ConfigError
from calcsig.ingest.stage import adapter_module, source_files
from calcsig.integrity import verify_results
from calcsig.masks import MASKS_KEYS
from calcsig.qc import IMAGE_QC_KEYS, ROI_QC_KEYS
from calcsig.segment.params import (
    CANDIDATE_KEYS,
    EVALUATION_KEYS,
    INSERTION_EVALUATION_KEYS,
    INSERTION_KEYS,
    TRAINING_KEYS,
)

if Path(calcsig.__file__).resolve().parent != (SRC / "calcsig").resolve():
    sys.exit(f"calcsig: the workflow at {REPO} would run calcsig from {calcsig.__file__}, not from {SRC}")

try:
    # config.yaml of the working directory, with --configfile and --config merged over it
    config.update(load_workflow_config(config, "config.yaml"))
except ConfigError as error:
    sys.exit(f"calcsig: invalid configuration:\n{error}")

# Stage seeds left null follow the top-level seed, so one key re-seeds the whole run.
for section, key in (("segment", "selector_random_state"), ("model", "seed")):
    if config[section][key] is None:
        config[section][key] = config["seed"]

# Batch manifests: each lists the per-image or per-ROI files a batch job wrote, with digests.
MANIFEST_GLOBS = (
    "results/segment/batches/*.tsv",
    "results/segment/inserted/batches/*.tsv",
    "results/masks/batches/*.tsv",
    "results/features/batches/*.tsv",
)


def _another_run_holds_this_directory():
    return any(Path(".snakemake", "locks").glob("*.lock"))


# Before planning: remove results that changed after they were written (truncated, edited)
# and batch manifests whose files are gone, so that the plan rebuilds them. Not in cluster
# jobs, and not while another run works in this directory (its files are in flux).
if workflow.is_main_process and not _another_run_holds_this_directory():
    for message in verify_results("results", MANIFEST_GLOBS):
        print(f"calcsig: {message}", file=sys.stderr)


# ---------------------------------------------------------------- settings and code


def settings(section, keys):
    """The values of config `section` that one rule uses; a change to any other value reruns nothing."""
    return {key: config[section][key] for key in keys}


PARTITION_KEYS = tuple(k for k in config["partition"] if k not in ("audit_policy", "declared_enrichment"))
AUDIT_KEYS = ("declared_enrichment", "near_duplicate_hamming", "hash_size", "audit_policy")
# what each model job fits with: shared keys, then the keys of its kind of model
MODEL_SHARED_KEYS = ("grid", "inner_folds", "target_sensitivity", "margin_sensitivity", "seed", "main_model")
MODEL_KEYS = {
    "aggregation": ("families", "global_prefixes", "smote_k_neighbors", "enn_n_neighbors", "resample"),
    "bag_of_objects": ("kmeans_n_init",),
    "mask_brf": ("mask_size", "brf_n_estimators"),
    "no_enrichment": ("enrichment",),
}


def model_settings(wildcards):
    """The `model` values one model job uses (the aggregation models share theirs)."""
    model = wildcards.model
    # the ablation and the fine-class model aggregate like the main model
    aggregation = config["model"]["main_model"] if model in ("no_enrichment", "fine_class") else model
    keys = list(MODEL_SHARED_KEYS)
    if model != "mask_brf":
        keys += MODEL_KEYS["aggregation"] + MODEL_KEYS.get(aggregation, ())
    keys += MODEL_KEYS.get(model, ())
    return settings("model", keys)


MODEL_EVALUATION_KEYS = (
    "main_model",
    "grid",
    "target_sensitivity",
    "margin_sensitivity",
    "seed",
    "bootstrap_repeats",
    "ci_level",
    "mcnemar_exact_below",
    "calibration_bins",
)


def relative(path):
    """`path` relative to the working directory where possible, as Snakemake prints inputs."""
    path = Path(path)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


@functools.cache
def code(script, *modules):
    """The calcsig source files a rule's script imports (transitively), so a change to any reruns it.

    modules : modules the script imports by name at run time (an ingest adapter).
    """
    return [relative(p) for p in code_files([REPO / "workflow" / "scripts" / script], SRC, modules)]


def shipped(path):
    """A parameter file named in config: relative to the working directory if it is
    there, else one shipped with calcsig (calcsig.config.resource_path)."""
    return relative(resource_path(path))


# ---------------------------------------------------------------- the corpus


def corpus_table(kind):
    return f"results/corpus/{kind}.tsv"


def corpus_source_files(wildcards):
    """Every file the configured source is read from: editing a label or swapping an image reruns ingest."""
    corpus = config["corpus"]
    source = corpus["source"]
    return [relative(p) for p in source_files(source, corpus["path"], corpus.get(source, {}))]


def _corpus(kind):
    """A corpus table, once the corpus checkpoint has produced it."""
    path = getattr(checkpoints.corpus.get().output, kind)
    return _read_table(path, os.path.getmtime(path)).copy()


@functools.cache
def _read_table(path, mtime):
    # keyed by modification time: input functions ask for the same table many times
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _corpus_version():
    """Modification times of the corpus tables: cached derivations are keyed by them."""
    return tuple(os.path.getmtime(getattr(checkpoints.corpus.get().output, k)) for k in ("images", "rois"))


def pixel_images():
    """IDs of the images whose pixels are present: the per-image stages run on these."""
    return list(_pixel_images(_corpus_version()))


@functools.cache
def _pixel_images(version):
    images = _corpus("images")
    return tuple(sorted(images.loc[images["has_pixels"].str.lower() == "true", "image_id"]))


def has_pixels():
    return bool(pixel_images())


def cohort_rois():
    """The ROIs the corpus tables admit to the cohort, ordered by image: masks and features run on these."""
    return list(_cohort_rois(_corpus_version()))


@functools.cache
def _cohort_rois(version):
    cohort = provisional_cohort(_corpus("rois"), _corpus("images"), config["cohort"])
    return tuple(cohort.loc[cohort["included"]].sort_values(["image_id", "roi_id"])["roi_id"])


# ---------------------------------------------------------------- batches


def image_batches():
    return _image_batches(_corpus_version())


@functools.cache
def _image_batches(version):
    return chunk(pixel_images(), config["execution"]["images_per_job"])


def roi_batches():
    return _roi_batches(_corpus_version())


@functools.cache
def _roi_batches(version):
    return chunk(cohort_rois(), config["execution"]["rois_per_job"])


def segment_manifest_of(image_id):
    return f"results/segment/batches/{_batch_of_image(_corpus_version())[image_id]}.tsv"


@functools.cache
def _batch_of_image(version):
    return {image: batch for batch, ids in image_batches().items() for image in ids}


def segment_manifests():
    return expand("results/segment/batches/{batch}.tsv", batch=image_batches())


def masks_manifests():
    return expand("results/masks/batches/{batch}.tsv", batch=roi_batches())


def features_manifests():
    return expand("results/features/batches/{batch}.tsv", batch=roi_batches())


def image_items(wildcards):
    """What a segment batch job needs of each of its images (and what its recipe is made of)."""
    images = _corpus("images").set_index("image_id")
    return [
        {
            "image_id": i,
            "path": images.at[i, "path"],
            "pixel_spacing_mm": float(images.at[i, "pixel_spacing_mm"]),
            "sha256": images.at[i, "sha256"],
        }
        for i in image_batches()[wildcards.batch]
    ]


def segment_inputs(wildcards):
    return {
        "images": [item["path"] for item in image_items(wildcards)],
        "code": code("segment.py"),
    }


def roi_items(wildcards):
    """The rois.tsv rows of a ROI batch, each with its image's path and digest."""
    rois = _corpus("rois").set_index("roi_id", drop=False)
    images = _corpus("images").set_index("image_id")
    return [
        {
            **rois.loc[r].to_dict(),
            "image_path": images.at[rois.at[r, "image_id"], "path"],
            "image_sha256": images.at[rois.at[r, "image_id"], "sha256"],
        }
        for r in roi_batches()[wildcards.batch]
    ]


def selector_used():
    """Whether masks and evaluation apply a trained selector: configured, and truth to train it on.

    Truth is pixel masks, calcification circles, or normal films of a source with
    circles; which of those images are in the train split is the training job's concern.
    """
    return config["segment"]["use_selector"] and truth_images().any()


def selector_status():
    """Whether a selector is trained and applied, and why not when it is not (recorded in segmentation.json)."""
    if not config["segment"]["use_selector"]:
        return {"used": False, "reason": "segment.use_selector is false: plain HDoG"}
    if not truth_images().any():
        return {
            "used": False,
            "reason": "no image carries calcification truth (truth masks, calcification circles, or normal films "
            "of a source with circles), so the selector has nothing to learn from: plain HDoG",
        }
    return {"used": True, "reason": "trained on the train split's images with calcification truth"}


def truth_images():
    """Per pixel image (indexed by image_id): whether it carries calcification truth."""
    from calcsig.segment.truth import truth_kinds

    images, rois = _corpus("images"), _corpus("rois")
    images = images[images["has_pixels"].str.lower() == "true"]
    if "truth_mask_path" in images:
        images = images.assign(truth_mask_path=images["truth_mask_path"].where(images["truth_mask_path"] != "", None))
    kinds = truth_kinds(images, rois)
    used = kinds["truth_path"].notna() | kinds["circles"].notna() | kinds["normal"]
    return pd.Series(used.to_numpy(), index=images["image_id"].to_numpy())


def selector_inputs(wildcards):
    """Inputs of one selector's training (its scope, wildcards.scope, picks the images from assignment.tsv)."""
    images = _corpus("images")
    truth = [t for t in images.get("truth_mask_path", []) if t]
    inputs = {
        "images": corpus_table("images"),
        "rois": corpus_table("rois"),
        "assignment": "results/splits/assignment.tsv",
        "segmented": segment_manifests(),
        "truth": sorted(truth),
        "code": code("train_selector.py"),
    }
    if lesion_insertion_used() and config["segment"]["selector_inserted_lesions"]:
        inputs["inserted"] = insertion_manifests()
    return inputs


def selector_scopes():
    """The selectors the masks apply: the train split's, or with selector_scope outer_fold one
    per outer fold (train+dev outside it) and outer_eval (train+dev) for eval/external ROIs."""
    if config["segment"]["selector_scope"] == "outer_fold":
        return [f"outer{k}" for k in range(1, config["partition"]["outer_folds"] + 1)] + ["outer_eval"]
    return ["train"]


def with_selector(inputs, scopes=("train",)):
    """`inputs` plus the trained selectors of `scopes` and their operating points, when a selector is used."""
    if not selector_used():
        return inputs
    return {
        **inputs,
        "selectors": [f"results/segment/selector/{scope}.joblib" for scope in scopes],
        "operating_points": [f"results/segment/selector/{scope}.json" for scope in scopes],
    }


def selector_files():
    """The trained selectors and their operating points, when a selector is used."""
    if not selector_used():
        return []
    return [f"results/segment/selector/{scope}.{ext}" for scope in selector_scopes() for ext in ("joblib", "json")]


def masks_inputs(wildcards):
    """The segment manifests of the images a ROI batch lies on, and the selectors that score their candidates."""
    images = {row["image_id"] for row in roi_items(wildcards)}
    inputs = {"segments": sorted({segment_manifest_of(i) for i in images}), "code": code("masks.py")}
    if selector_used() and config["segment"]["selector_scope"] == "outer_fold":
        # which fold's selector scores a ROI; with one selector the split does not matter, so a
        # changed split (a subject added) reruns no masks batch
        inputs["assignment"] = "results/splits/assignment.tsv"
    return with_selector(inputs, selector_scopes())


def normal_film_ids():
    """The corpus's normal films (no finding, of a source that annotates findings), sorted."""
    return list(_normal_film_ids(_corpus_version()))


@functools.cache
def _normal_film_ids(version):
    from calcsig.segment.truth import normal_films

    images, rois = _corpus("images"), _corpus("rois")
    return tuple(sorted(images.loc[normal_films(images, rois), "image_id"]))


def lesion_insertion_used():
    """Whether lesions are inserted into normal films: configured, and the corpus has normal films."""
    return config["segment"]["lesion_insertion"] and bool(normal_film_ids())


@functools.cache
def _insertion_batches(version):
    return chunk(normal_film_ids(), config["execution"]["images_per_job"])


def insertion_manifests():
    return expand("results/segment/inserted/batches/{batch}.tsv", batch=_insertion_batches(_corpus_version()))


def normal_film_items(wildcards):
    """What an insert_lesions batch job needs of each of its films (and what its recipe is made of)."""
    images = _corpus("images").set_index("image_id")
    return [
        {
            "image_id": i,
            "path": images.at[i, "path"],
            "pixel_spacing_mm": float(images.at[i, "pixel_spacing_mm"]),
            "sha256": images.at[i, "sha256"],
        }
        for i in _insertion_batches(_corpus_version())[wildcards.batch]
    ]


def insertion_inputs(wildcards):
    return {
        "films": [item["path"] for item in normal_film_items(wildcards)],
        "code": code("insert_lesions.py"),
    }


def lesion_insertion_inputs(wildcards):
    return with_selector(
        {
            "images": corpus_table("images"),
            "rois": corpus_table("rois"),
            "assignment": "results/splits/assignment.tsv",
            "inserted": insertion_manifests(),
            "code": code("lesion_insertion.py"),
        }
    )


def insertion_targets():
    """The lesion-insertion results, when lesions are inserted into normal films."""
    if not lesion_insertion_used():
        return []
    return [*insertion_manifests(), "results/segment/lesion_insertion.json", "results/segment/lesion_insertion.png"]


def segmentation_evaluation_inputs(wildcards):
    inputs = {
        "images": corpus_table("images"),
        "rois": corpus_table("rois"),
        "assignment": "results/splits/assignment.tsv",
        "segmented": segment_manifests(),
        "code": code("evaluate_segmentation.py"),
    }
    if lesion_insertion_used():
        inputs["lesion_insertion"] = "results/segment/lesion_insertion.json"
    return with_selector(inputs)


def features_inputs(wildcards):
    return {
        "masks": f"results/masks/batches/{wildcards.batch}.tsv",
        "images": sorted({row["image_path"] for row in roi_items(wildcards)}),
        "foreground_settings": shipped(config["features"]["radiomics_foreground"]),
        "background_settings": shipped(config["features"]["radiomics_background"]),
        "code": code("features.py"),
    }


# ---------------------------------------------------------------- cohort and models


def cohort_inputs(wildcards):
    inputs = {
        "images": corpus_table("images"),
        "rois": corpus_table("rois"),
        "assignment": "results/splits/assignment.tsv",
        "code": code("cohort.py"),
    }
    if cohort_rois():
        inputs["features"] = "results/features/rois.parquet"
        inputs["masks"] = masks_manifests()
    return inputs


def models_run():
    """Whether any ROI can enter the models (pixels, a location, the cohort's selection)."""
    return has_pixels() and bool(cohort_rois())


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
        "cohort": "results/cohort/rois.tsv",
        "corpus_rois": corpus_table("rois"),
        "images": corpus_table("images"),
        "assignment": "results/splits/assignment.tsv",
        "grid": shipped(config["model"]["grid_file"]),
        "code": code("model_fold.py"),
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


# ---------------------------------------------------------------- targets


def final_targets(wildcards):
    """Every result of the run, intermediates included.

    Snakemake leaves a missing intermediate alone while what depends on it is up
    to date; listing them all makes a deleted (or, through the results check,
    damaged) file come back at the next run. A rebuilt file with the same content
    reruns nothing downstream (the profile records input checksums).
    """
    targets = [
        *(corpus_table(kind) for kind in ("images", "rois", "subjects")),
        "results/corpus/skipped.tsv",
        "results/corpus/checked.txt",
        "results/splits/assignment.tsv",
        "results/splits/balance.tsv",
        "results/splits/balance.json",
        "results/splits/image_hashes.tsv",
        "results/splits/audit.json",
        "results/splits/audit.tsv",
        "results/cohort/checked.txt",
        "results/cohort/rois.tsv",
        "results/cohort/summary.json",
        "results/report/index.html",
    ]
    if has_pixels():
        targets += [
            *segment_manifests(),
            *selector_files(),
            *insertion_targets(),
            "results/metrics/segmentation.json",
            "results/segment/froc.png",
            "results/segment/gallery.png",
            "results/segment/gallery_worst.png",
        ]
    if models_run():
        targets += [
            *masks_manifests(),
            *features_manifests(),
            "results/features/objects.parquet",
            "results/features/rois.parquet",
            "results/features/catalogue.tsv",
            *prediction_files(),
            *search_files(),
            "results/model/predictions.parquet",
            "results/metrics/models.json",
            "results/metrics/models.tsv",
        ]
    return targets


# --- the report ---------------------------------------------------------------


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
        "cohort_summary": "results/cohort/summary.json",
        "cohort_rois": "results/cohort/rois.tsv",
        "code": code("report.py"),
    }
    if has_pixels():
        inputs["segmentation"] = "results/metrics/segmentation.json"
        inputs["gallery"] = "results/segment/gallery.png"
        inputs["gallery_worst"] = "results/segment/gallery_worst.png"
        if lesion_insertion_used():
            inputs["lesion_insertion"] = "results/segment/lesion_insertion.png"
    if models_run():
        main = config["model"]["main_model"]
        inputs.update(
            features="results/features/rois.parquet",
            objects="results/features/objects.parquet",
            models="results/metrics/models.json",
            models_table="results/metrics/models.tsv",
            importance=f"results/model/outereval/{main}/search.json",
            catalogue="results/features/catalogue.tsv",
        )
    return inputs


def declared_benchmarks():
    """Each rule's benchmark file pattern, as declared: the report finds the timings wherever they are kept."""
    return {r.name: str(r.benchmark) for r in workflow.rules if r.benchmark and r.name != "report"}


def declared_logs():
    """Each rule's log file patterns (the report's own log is still being written)."""
    return {r.name: [str(f) for f in r.log] for r in workflow.rules if r.log and r.name != "report"}
