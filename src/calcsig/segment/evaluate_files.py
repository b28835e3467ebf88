"""Segmentation evaluation on files: stored candidates against the corpus's truth, and its figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from calcsig.paths import atomic_path
from calcsig.segment.candidates import object_geometry
from calcsig.segment.evaluate import ImageEval, evaluate_images, plot_froc, plot_gallery
from calcsig.segment.params import EVALUATION_KEYS, segment_params
from calcsig.segment.selector import CandidateSelector, load_selector, score_candidates
from calcsig.segment.store import read_candidates, read_segmentation
from calcsig.segment.truth import image_splits, truth_kinds
from calcsig.tables import read_table
from calcsig.truthlabels import read_truth_labels


def write_json(obj: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _load_eval_image(
    image_id: str,
    segment_dir: Path,
    truth_path,
    circles,
    normal: bool,
    selector: CandidateSelector | None,
    selector_threshold: float | None,
) -> ImageEval:
    """One image's candidates ranked by the selector's score (by DoG response without a selector)."""
    seg = read_segmentation(segment_dir / f"{image_id}.npz")
    table = read_candidates(segment_dir / f"{image_id}.tsv")
    if selector is not None and len(table):
        scores = score_candidates(table, selector)
    else:
        scores = table["dog_response"].to_numpy(dtype=np.float64)
    keep = scores >= selector_threshold if selector is not None and selector_threshold is not None else None
    return ImageEval(
        image_id,
        seg["labels"],
        scores,
        seg["breast"],
        seg["pixel_spacing_mm"],
        truth=read_truth_labels(truth_path) if truth_path else None,
        circles_px=np.asarray(circles, float) if circles else None,
        normal=normal,
        keep=keep,
    )


def evaluate_segmentation_files(
    images_tsv: str | Path,
    rois_tsv: str | Path,
    segment_dir: str | Path,
    params: dict | None,
    out_json: str | Path,
    out_froc_png: str | Path | None = None,
    out_gallery_png: str | Path | None = None,
    image_ids=None,
    selector_path: str | Path | None = None,
    selector_threshold: float | None = None,
    extra: dict | None = None,
) -> dict:
    """Evaluate stored candidates against the corpus's truth; write metrics JSON and figures.

    images_tsv, rois_tsv : corpus tables. Pixel truth = images with `truth_mask_path`;
        cluster truth = circle ROIs whose `abnormality` mentions calcification;
        normal films = images of those sources without any ROI row.
    segment_dir : holds `{image_id}.npz` and `.tsv` from `segment_image_file`.
    image_ids : the images to evaluate (e.g. the held-out split); all when None.
    selector_path, selector_threshold : the trained selector ranks the candidates
        (the FROC score) and its operating point keeps those scoring at least the
        threshold; plain HDoG (the same candidates ranked by DoG response, all
        kept) is then evaluated alongside under `plain_hdog` and drawn on the same
        FROC figure. Without a selector the candidates are plain HDoG.
    params : `segment` keys of `EVALUATION_KEYS`.
    extra : further keys recorded as they are (e.g. whether a selector was used and why).
    JSON keys: `tpr_at_<fp>_fp_per_cm2` (pixel truth), `cluster_sensitivity`,
    `false_clusters_per_normal_image` (cluster truth), `froc` (curve corners), ...
    """
    p = segment_params(params, EVALUATION_KEYS)
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    if image_ids is not None:
        wanted = {str(i) for i in image_ids}
        images = images[images["image_id"].astype(str).isin(wanted)]
    kinds = truth_kinds(images, rois)
    evaluated = kinds[kinds["truth_path"].notna() | kinds["circles"].notna() | kinds["normal"]]
    selector = load_selector(selector_path) if selector_path else None

    def load(with_selector: CandidateSelector | None):
        return [
            _load_eval_image(
                str(images.at[index, "image_id"]),
                Path(segment_dir),
                kind["truth_path"],
                kind["circles"],
                bool(kind["normal"]),
                with_selector,
                selector_threshold,
            )
            for index, kind in evaluated.iterrows()
        ]

    kwargs = dict(
        distance_mm=p["match_distance_mm"],
        iou_min=p["match_iou"],
        fp_rate=p["fp_per_cm2"],
        cluster_min_objects=p["cluster_min_objects"],
        cluster_diameter_mm=p["cluster_diameter_mm"],
    )
    evals = load(selector)
    metrics, froc = evaluate_images(evals, **kwargs)
    metrics["n_images"] = len(evals)
    curves = {}
    if froc is not None:
        metrics["froc"] = froc.corners()
        curves["selector" if selector is not None else "plain HDoG"] = froc
    if selector is not None:
        metrics["operating_point"] = {"threshold": selector_threshold}
        base_metrics, base_froc = evaluate_images(load(None), **kwargs)
        if base_froc is not None:
            base_metrics["froc"] = base_froc.corners()
            curves["plain HDoG"] = base_froc
        metrics["plain_hdog"] = base_metrics
    metrics.update(extra or {})
    write_json(metrics, out_json)
    if out_froc_png is not None:
        plot_froc(curves, out_froc_png, p["fp_per_cm2"])
    if out_gallery_png is not None:
        plot_gallery(_gallery_panels(evals, images, p), out_gallery_png)
    return metrics


def _gallery_panels(evals, images: pd.DataFrame, p: dict) -> list[dict]:
    """Crops centred on a truth object or annotated circle (else the top detection);
    detections drawn at the operating point."""
    from calcsig.imageio import read_image

    paths = dict(zip(images["image_id"].astype(str), images["path"].astype(str)))
    panels = []
    for im in evals[: p["gallery_size"]]:
        if im.truth is not None and im.truth.max() > 0:
            _, centroid, _ = object_geometry(im.truth)
            cy, cx = centroid[0]
        elif im.circles_px is not None:
            cx, cy = im.circles_px[0][:2]
        elif im.pred.max() > 0:
            _, centroid, _ = object_geometry(im.pred)
            cy, cx = centroid[int(np.argmax(im.scores))]
        else:
            continue
        half = int(round(p["gallery_crop_mm"] / im.pixel_spacing_mm / 2))
        h, w = im.pred.shape
        y0, x0 = max(int(cy) - half, 0), max(int(cx) - half, 0)
        y1, x1 = min(int(cy) + half, h), min(int(cx) + half, w)
        pixels = read_image(paths[im.image_id]).pixels
        pred = im.pred[y0:y1, x0:x1]
        if im.keep is not None:  # draw the operating point, not every scored candidate
            pred = np.where(np.r_[False, im.keep][pred], pred, 0)
        panels.append(
            {
                "title": im.image_id,
                "image": pixels[y0:y1, x0:x1],
                "truth": None if im.truth is None else im.truth[y0:y1, x0:x1],
                "pred": pred,
            }
        )
    return panels


def evaluate_held_out(
    images_tsv,
    rois_tsv,
    assignment_tsv,
    segment_dir,
    params: dict,
    out_json,
    out_froc_png,
    out_gallery_png,
    selector_path=None,
    selector_threshold: float | None = None,
    segmented=None,
    selector_status: dict | None = None,
) -> dict:
    """Evaluate segmentation on the images outside the train split (dev and eval) that were
    segmented (`segmented`: their IDs; all when None; the quality gate may have skipped some).
    `selector_status` ({used, reason}), when given, is recorded under `selector`.

    With a selector, `plain_hdog` reports the same candidates ranked by DoG
    response, so the selector's gain is measured on the same images.
    """
    splits = image_splits(assignment_tsv)
    held_out = sorted(splits.index[splits != "train"])
    if segmented is not None:
        held_out = sorted(set(held_out) & set(segmented))
    return evaluate_segmentation_files(
        images_tsv,
        rois_tsv,
        Path(segment_dir),
        params,
        out_json,
        out_froc_png,
        out_gallery_png,
        image_ids=held_out,
        selector_path=selector_path,
        selector_threshold=selector_threshold,
        extra={"selector": dict(selector_status)} if selector_status is not None else None,
    )
