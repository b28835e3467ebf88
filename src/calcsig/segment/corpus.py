"""Segmentation entry points that read the corpus tables and the split.

The selector is trained on the train split only; segmentation is evaluated on
the images it was not trained on.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import CalcsigError
from ..tables import read_table
from .stage import _circles_by_image, evaluate_segmentation_files, train_selector_files


def _image_splits(assignment_tsv) -> pd.Series:
    """Split of each image (image rows of assignment.tsv), indexed by image_id."""
    assignment = pd.read_csv(assignment_tsv, sep="\t", dtype=str, keep_default_na=False)
    images = assignment[assignment["level"] == "image"]
    return images.set_index("image_id")["split"]


def train_selector_on_split(images_tsv, rois_tsv, assignment_tsv, params: dict, out_model, split: str = "train") -> int:
    """Train the candidate selector on the images of `split` that carry truth; save it.

    Truth is per-calcification masks (`truth_mask_path`), else calcification
    circles (weak labels), else, for films of a source with circle truth and no
    ROI, "normal" (every candidate a negative). Returns the number of training
    images; raises CalcsigError naming the split when none carries truth.
    """
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    splits = _image_splits(assignment_tsv)
    images = images[images["has_pixels"].astype(bool) & images["image_id"].map(splits).eq(split)]
    circles = _circles_by_image(rois)
    circle_sources = set(images.loc[images["image_id"].isin(circles), "source"])
    with_roi = set(rois["image_id"])
    truth = images["truth_mask_path"] if "truth_mask_path" in images else pd.Series(None, index=images.index)
    has_truth = truth.notna()
    has_circles = images["image_id"].isin(circles)
    normal = images["source"].isin(circle_sources) & ~images["image_id"].isin(with_roi)
    used = images[has_truth | has_circles | normal]
    if used.empty:
        raise CalcsigError(
            f"{images_tsv}: no {split}-split image carries calcification truth (truth_mask_path, "
            "calcification circles or normal films), so the candidate selector cannot be trained; "
            "set segment.use_selector: false for plain HDoG output"
        )
    train_selector_files(
        list(used["path"]),
        [t if isinstance(t, str) and t else None for t in truth[used.index]],
        params,
        out_model,
        circles=[circles.get(i) for i in used["image_id"]],
        normal=list(normal[used.index]),
        pixel_spacings_mm=list(used["pixel_spacing_mm"]),
    )
    return len(used)


def evaluate_held_out(
    images_tsv,
    rois_tsv,
    assignment_tsv,
    segment_dir,
    params: dict,
    out_json,
    out_froc_png,
    out_gallery_png,
    with_selector: bool,
) -> dict:
    """Evaluate segmentation on the images outside the train split (dev and eval).

    With the selector, `plain_hdog` reports the same candidates ranked by DoG
    response, so the selector's gain is measured on the same images.
    """
    splits = _image_splits(assignment_tsv)
    held_out = sorted(splits.index[splits != "train"])
    metrics = evaluate_segmentation_files(
        images_tsv,
        rois_tsv,
        Path(segment_dir),
        params,
        out_json,
        out_froc_png,
        out_gallery_png,
        image_ids=held_out,
        plain_hdog_from_scores=with_selector,
    )
    return metrics
