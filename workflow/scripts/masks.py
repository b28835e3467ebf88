"""Snakemake adapter: quality gate, foreground, background bands and object distances of a batch of ROIs."""

from pathlib import Path

from calcsig.batch import code_digest, read_manifests, recipe, run_batch
from calcsig.imageio import read_image
from calcsig.logs import log_to
from calcsig.masks import roi_masks_file
from calcsig.qc import FAILED, gate, image_failed_issue, qc_row, roi_issues
from calcsig.segment.selector import (
    load_selector,
    read_operating_point,
    rejected_object_ids,
    selector_scope_of,
)
from calcsig.segment.store import read_candidates, read_segmentation
from calcsig.segment.truth import image_folds

out_dir = Path(snakemake.output[0]).parent.parent
segmented = read_manifests(snakemake.input.segments).set_index("image_id")
params, qc, scope = snakemake.params.masks, snakemake.params.qc, snakemake.params.selector_scope
code = code_digest(snakemake.input.code)
# the selectors this batch may use, by scope name (train, outer1..K, outer_eval): model, digest, threshold
selectors = {
    Path(model).stem: (load_selector(model), code_digest([model]), read_operating_point(point)["threshold"])
    for model, point in zip(snakemake.input.get("selectors", []), snakemake.input.get("operating_points", []))
}
# each image's split and outer fold, given only when the selector depends on them (outer_fold scope)
folds = image_folds(snakemake.input.assignment) if snakemake.input.get("assignment") else None


def selector_of(roi):
    """(scope name, selector, digest, threshold) segmenting this ROI; Nones for plain HDoG."""
    if not selectors:
        return None, None, None, None
    name = next(iter(selectors)) if folds is None else selector_scope_of(scope, *folds.loc[roi["image_id"]])
    return (name, *selectors[name])


def files(roi):
    return {"npz": out_dir / f"{roi['roi_id']}.npz"}


def recipe_of(roi):
    seg = segmented.loc[roi["image_id"]]
    name, _, digest, threshold = selector_of(roi)
    return recipe("masks", params, qc, name, threshold, digest, code, roi, seg["npz_sha256"], seg["tsv_sha256"])


def quality(roi, seg) -> list:
    """Why this ROI cannot be scored: its image failed, or the ROI itself does (size, breast overlap)."""
    if seg.get("qc_status") == FAILED:
        return [image_failed_issue(roi["image_id"])]
    stored = read_segmentation(seg["npz"])
    mask = read_image(roi["mask_path"]).pixels if roi.get("shape") == "mask" and roi.get("mask_path") else None
    return roi_issues(roi, stored["pixel_spacing_mm"], stored["breast"], qc, mask)


def masks(roi):
    seg = segmented.loc[roi["image_id"]]
    issues = quality(roi, seg)
    row = qc_row("roi", roi["roi_id"], issues)
    verdict = {"image_id": roi["image_id"], "qc_status": row["status"], "qc_codes": row["codes"]}
    if not gate(f"ROI {roi['roi_id']} on image {roi['image_id']}", issues, qc["on_bad_image"]):
        return {**verdict, "qc_reasons": row["reasons"]}  # skipped: no masks, nothing of it is scored
    name, selector, _, threshold = selector_of(roi)
    rejected = rejected_object_ids(read_candidates(seg["tsv"]), selector, threshold)
    arrays = roi_masks_file(seg["npz"], roi, params, files(roi)["npz"], rejected_ids=rejected)
    return {
        **verdict,
        "qc_reasons": "",
        "selector_scope": name or "",
        "n_objects": len(arrays["object_ids"]),
        "n_dropped_small": int(arrays["n_dropped_small"]),
        "n_rejected_selector": int(arrays["n_rejected_selector"]),
    }


with log_to(snakemake.log[0]):
    run_batch(snakemake.params.rois, masks, snakemake.output[0], id_column="roi_id", files=files, recipe_of=recipe_of)
