"""Snakemake adapter: quality gate, foreground, background bands and object distances of a batch of ROIs."""

from pathlib import Path

from calcsig.batch import code_digest, read_manifests, recipe, run_batch
from calcsig.imageio import read_image
from calcsig.logs import log_to
from calcsig.masks import roi_masks_file
from calcsig.qc import FAILED, gate, image_failed_issue, qc_row, roi_issues
from calcsig.segment.selector import load_selector, rejected_object_ids
from calcsig.segment.store import read_candidates, read_segmentation

out_dir = Path(snakemake.output[0]).parent.parent
segmented = read_manifests(snakemake.input.segments).set_index("image_id")
params, qc, threshold = snakemake.params.masks, snakemake.params.qc, snakemake.params.selector_threshold
selector_path = snakemake.input.get("selector")
selector = load_selector(selector_path) if selector_path else None
selector_digest = code_digest([selector_path]) if selector_path else None
code = code_digest(snakemake.input.code)


def files(roi):
    return {"npz": out_dir / f"{roi['roi_id']}.npz"}


def recipe_of(roi):
    seg = segmented.loc[roi["image_id"]]
    return recipe("masks", params, qc, threshold, selector_digest, code, roi, seg["npz_sha256"], seg["tsv_sha256"])


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
    rejected = rejected_object_ids(read_candidates(seg["tsv"]), selector, threshold)
    arrays = roi_masks_file(seg["npz"], roi, params, files(roi)["npz"], rejected_ids=rejected)
    return {
        **verdict,
        "qc_reasons": "",
        "n_objects": len(arrays["object_ids"]),
        "n_dropped_small": int(arrays["n_dropped_small"]),
        "n_rejected_selector": int(arrays["n_rejected_selector"]),
    }


with log_to(snakemake.log[0]):
    run_batch(snakemake.params.rois, masks, snakemake.output[0], id_column="roi_id", files=files, recipe_of=recipe_of)
