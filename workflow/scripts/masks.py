"""Snakemake adapter: foreground, background bands and object distances of a batch of ROIs."""

from pathlib import Path

from calcsig.batch import code_digest, read_manifests, recipe, run_batch
from calcsig.logs import log_to
from calcsig.masks import roi_masks_file
from calcsig.segment.selector import load_selector, rejected_object_ids
from calcsig.segment.store import read_candidates

out_dir = Path(snakemake.output[0]).parent.parent
segmented = read_manifests(snakemake.input.segments).set_index("image_id")
params, threshold = snakemake.params.masks, snakemake.params.selector_threshold
selector_path = snakemake.input.get("selector")
selector = load_selector(selector_path) if selector_path else None
selector_digest = code_digest([selector_path]) if selector_path else None
code = code_digest(snakemake.input.code)


def files(roi):
    return {"npz": out_dir / f"{roi['roi_id']}.npz"}


def recipe_of(roi):
    seg = segmented.loc[roi["image_id"]]
    return recipe("masks", params, threshold, selector_digest, code, roi, seg["npz_sha256"], seg["tsv_sha256"])


def masks(roi):
    seg = segmented.loc[roi["image_id"]]
    rejected = rejected_object_ids(read_candidates(seg["tsv"]), selector, threshold)
    arrays = roi_masks_file(seg["npz"], roi, params, files(roi)["npz"], rejected_ids=rejected)
    return {
        "image_id": roi["image_id"],
        "n_objects": len(arrays["object_ids"]),
        "n_dropped_small": int(arrays["n_dropped_small"]),
        "n_rejected_selector": int(arrays["n_rejected_selector"]),
    }


with log_to(snakemake.log[0]):
    run_batch(snakemake.params.rois, masks, snakemake.output[0], id_column="roi_id", files=files, recipe_of=recipe_of)
