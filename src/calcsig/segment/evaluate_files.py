"""Segmentation evaluation on files: stored candidates against the corpus's truth, and its figures."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from calcsig.parallel import ordered_map
from calcsig.paths import atomic_path
from calcsig.segment.candidates import object_geometry, spacing_plan
from calcsig.segment.evaluate import (
    FROC,
    ClusterFROC,
    ImageEval,
    candidate_pairs,
    cluster_froc,
    evaluate_images,
    prediction_centroids_mm,
    summarise_image,
)
from calcsig.segment.figures import FrocPanel, plot_froc_panels, plot_gallery
from calcsig.segment.params import EVALUATION_KEYS, segment_params
from calcsig.segment.selector import CandidateSelector, load_selector, read_operating_point, score_candidates
from calcsig.segment.store import read_candidates, read_segmentation
from calcsig.segment.truth import image_splits, truth_kinds
from calcsig.segment.worst_cases import (
    ImageFailures,
    WorstCase,
    circles_label_image,
    crop_half_px,
    image_failures,
    select_worst_cases,
)
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
) -> tuple[ImageEval, ImageEval | None]:
    """One image's candidates ranked by the selector's score, kept from its threshold, and by DoG
    response, all kept: (the selector's ranking, plain HDoG); without a selector, (plain HDoG, None)."""
    seg = read_segmentation(segment_dir / f"{image_id}.npz")
    table = read_candidates(segment_dir / f"{image_id}.tsv")
    plain = ImageEval(
        image_id,
        seg["labels"],
        table["dog_response"].to_numpy(dtype=np.float64),
        seg["breast"],
        seg["pixel_spacing_mm"],
        truth=read_truth_labels(truth_path) if truth_path else None,
        circles_px=np.asarray(circles, float) if circles else None,
        normal=normal,
    )
    if selector is None:
        return plain, None
    scores = score_candidates(table, selector) if len(table) else plain.scores
    keep = scores >= selector_threshold if selector_threshold is not None else None
    return replace(plain, scores=scores, keep=keep), plain


@dataclass
class _SummarisedImage:
    """One image as the corpus-wide evaluation keeps it: the evaluated ranking and plain HDoG
    (None without a selector) without their pixels, and the evaluated ranking's failures."""

    evaluated: ImageEval
    plain: ImageEval | None
    failures: ImageFailures


def _summarise_eval_image(load: Callable[[], tuple[ImageEval, ImageEval | None]], match: tuple[float, float]):
    """`_SummarisedImage` of the image `load` reads; match : (distance mm, IoU) of the matching rule.
    The candidate pairs and centroids do not depend on the ranking: both rankings share them."""
    evaluated, plain = load()
    pairs = None
    if evaluated.truth is not None:
        pairs = candidate_pairs(evaluated.pred, evaluated.truth, evaluated.pixel_spacing_mm, *match)
    evaluated.summary = summarise_image(evaluated, *match, pairs=pairs)
    if plain is not None:
        plain.summary = summarise_image(plain, *match, centroids=False, pairs=pairs)
        plain.summary.centroids_mm = evaluated.summary.centroids_mm
        plain = plain.without_pixels()
    return _SummarisedImage(evaluated.without_pixels(), plain, image_failures(evaluated))


def _cluster_froc(evals: list[ImageEval], p: dict, extra_thresholds=(), workers: int = 1) -> ClusterFROC | None:
    """Cluster-level FROC of the images' scores (None without annotated clusters or normal films)."""
    circle_images, normal_images = [], []
    for im in evals:
        if not (im.normal or (im.circles_px is not None and len(im.circles_px))):
            continue
        centroids_mm = prediction_centroids_mm(im)
        if im.normal:
            normal_images.append((im.scores, centroids_mm))
        else:
            circle_images.append((im.scores, centroids_mm, np.asarray(im.circles_px, float) * im.pixel_spacing_mm))
    if not circle_images and not normal_images:
        return None
    return cluster_froc(
        circle_images,
        normal_images,
        p["cluster_min_objects"],
        p["cluster_diameter_mm"],
        extra_thresholds=extra_thresholds,
        workers=workers,
    )


def spacing_summary(pixel_spacings, params: dict | None) -> dict:
    """How the images' pixel spacings were handled for detection (`spacing` in segmentation.json).

    Top-level keys describe the most common spacing (`working_spacing_mm`, `resampled`,
    `sigma_min_px`, ...); `by_pixel_spacing` lists every spacing with its image count.
    """
    p = segment_params(params, ("sigma_min_mm", "working_spacing_mm"))
    values, counts = np.unique(np.round(np.asarray(pixel_spacings, dtype=np.float64), 9), return_counts=True)
    plans = [
        {**spacing_plan(float(v), p["sigma_min_mm"], p["working_spacing_mm"]), "n_images": int(c)}
        for v, c in zip(values, counts)
    ]
    summary = dict(max(plans, key=lambda plan: plan["n_images"])) if plans else {}
    summary.pop("n_images", None)
    summary.update(
        {
            "configured_working_spacing_mm": p["working_spacing_mm"],
            "resampled": any(plan["resampled"] for plan in plans),
            "method": "images coarser than segment.working_spacing_mm are upsampled by the smallest integer factor "
            "reaching it (cubic spline) for detection; labels are mapped back block by block to the image grid",
            "by_pixel_spacing": plans,
        }
    )
    return summary


def evaluate_segmentation_files(
    images_tsv: str | Path,
    rois_tsv: str | Path,
    segment_dir: str | Path,
    params: dict | None,
    out_json: str | Path,
    out_froc_png: str | Path | None = None,
    out_gallery_png: str | Path | None = None,
    out_gallery_worst_png: str | Path | None = None,
    image_ids=None,
    selector_path: str | Path | None = None,
    operating_point: dict | None = None,
    lesion_insertion: dict | None = None,
    extra: dict | None = None,
    workers: int = 1,
) -> dict:
    """Evaluate stored candidates against the corpus's truth; write metrics JSON and figures.

    images_tsv, rois_tsv : corpus tables. Pixel truth = images with `truth_mask_path`;
        cluster truth = circle ROIs whose `abnormality` mentions calcification;
        normal films = images of those sources without any ROI row.
    segment_dir : holds `{image_id}.npz` and `.tsv` from `segment_image_file`.
    image_ids : the images to evaluate (e.g. the held-out split); all when None.
    selector_path, operating_point : the trained selector ranks the candidates
        (the FROC score) and its operating point (`threshold`, and how it was chosen;
        see `calcsig.segment.selector.train_selector_for_scope`) keeps those scoring
        at least the threshold; plain HDoG (the same candidates ranked by DoG
        response, all kept) is then evaluated alongside under `plain_hdog` and drawn
        on the same figure. Without a selector the candidates are plain HDoG.
    lesion_insertion : the result of `calcsig.segment.insertion_evaluation.evaluate_lesion_insertion`,
        stored under `lesion_insertion` and drawn as its own FROC panel.
    params : `segment` keys of `EVALUATION_KEYS`.
    out_froc_png, out_gallery_png, out_gallery_worst_png : the figures (none when None): FROC
        panels, crops of truth, and the worst cases at the operating point (`write_worst_gallery`).
    extra : further keys recorded as they are (e.g. whether a selector was used and why).
    workers : processes reading and matching the images (the outputs do not depend on it).
    JSON keys: `tpr_at_<fp>_fp_per_cm2` (pixel truth), `cluster_sensitivity`,
    `false_clusters_per_normal_image` (cluster truth, at the operating point), `froc`
    (curve corners), `cluster_froc` (lists `threshold`, `cluster_sensitivity`,
    `false_clusters_per_normal_image`), `operating_point`, `spacing`, `plain_hdog`, ...
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
    threshold = None if operating_point is None else float(operating_point["threshold"])

    def loader(index) -> Callable[[], tuple[ImageEval, ImageEval | None]]:
        kind = evaluated.loc[index]
        image_id = str(images.at[index, "image_id"])
        return functools.partial(
            _load_eval_image,
            image_id,
            Path(segment_dir),
            kind["truth_path"],
            kind["circles"],
            bool(kind["normal"]),
            selector,
            threshold,
        )

    loaders = {str(images.at[index, "image_id"]): loader(index) for index in evaluated.index}
    match = (p["match_distance_mm"], p["match_iou"])
    # each worker reads, matches and summarises its images; only the summaries come back, and the
    # few images the galleries draw are read again here
    summarised = ordered_map(functools.partial(_summarise_eval_image, match=match), loaders.values(), workers)
    evals = [image.evaluated for image in summarised]

    def full_image(image_id: str) -> ImageEval:
        return loaders[image_id]()[0]

    kwargs = dict(
        distance_mm=p["match_distance_mm"],
        iou_min=p["match_iou"],
        fp_rate=p["fp_per_cm2"],
        cluster_min_objects=p["cluster_min_objects"],
        cluster_diameter_mm=p["cluster_diameter_mm"],
    )
    metrics, froc = evaluate_images(evals, **kwargs)
    metrics["n_images"] = len(evals)
    metrics["spacing"] = spacing_summary([im.pixel_spacing_mm for im in evals], p)
    name = "selector" if selector is not None else "plain HDoG"
    pixel_curves, cluster_curves, cluster_points = {}, {}, {}
    if froc is not None:
        metrics["froc"] = froc.corners()
        pixel_curves[name] = froc
    extra_thresholds = () if threshold is None or selector is None else (threshold,)
    clusters = _cluster_froc(evals, p, extra_thresholds, workers)
    if clusters is not None:
        metrics["cluster_froc"] = clusters.to_json()
        cluster_curves[name] = clusters
        if selector is not None:
            cluster_points[name] = _point(clusters, threshold)
    if selector is not None:
        metrics["operating_point"] = {k: operating_point[k] for k in OPERATING_POINT_REPORTED if k in operating_point}
        plain = [image.plain for image in summarised]
        base_metrics, base_froc = evaluate_images(plain, **kwargs)
        if base_froc is not None:
            base_metrics["froc"] = base_froc.corners()
            pixel_curves["plain HDoG"] = base_froc
        base_clusters = _cluster_froc(plain, p, workers=workers)
        if base_clusters is not None:
            base_metrics["cluster_froc"] = base_clusters.to_json()
            cluster_curves["plain HDoG"] = base_clusters
            # plain HDoG outputs every candidate: its point is the curve's end
            cluster_points["plain HDoG"] = _point(base_clusters, base_clusters.thresholds[-1])
        metrics["plain_hdog"] = base_metrics
    if lesion_insertion is not None:
        metrics["lesion_insertion"] = lesion_insertion
    metrics.update(extra or {})
    write_json(metrics, out_json)
    if out_froc_png is not None:
        plot_froc_panels(_froc_panels(pixel_curves, cluster_curves, cluster_points, lesion_insertion, p), out_froc_png)
    if out_gallery_png is not None:
        shown = [full_image(im.image_id) for im in evals[: p["gallery_size"]]]
        plot_gallery(_gallery_panels(shown, images, p), out_gallery_png)
    if out_gallery_worst_png is not None:
        write_worst_gallery([image.failures for image in summarised], images, p, out_gallery_worst_png, full_image)
    return metrics


# what segmentation.json repeats of the operating point's record
OPERATING_POINT_REPORTED = (
    "threshold",
    "rule",
    "target_cluster_sensitivity",
    "target_sensitivity",
    "chosen_on",
    "reached",
    "out_of_fold",
    "n_folds",
    "n_images",
    "n_subjects",
)


def _point(curve: ClusterFROC, threshold: float) -> tuple[float, float] | None:
    point = curve.point(threshold)
    if point["cluster_sensitivity"] is None or point["false_clusters_per_normal_image"] is None:
        return None
    return point["false_clusters_per_normal_image"], point["cluster_sensitivity"]


def _froc_panels(pixel_curves, cluster_curves, cluster_points, lesion_insertion, p) -> list[FrocPanel]:
    """A panel per kind of truth present: pixel truth, cluster annotations (with normal films),
    and inserted lesions."""
    panels = []
    if pixel_curves:
        panels.append(FrocPanel("calcifications (pixel truth)", pixel_curves, fp_rate=p["fp_per_cm2"]))
    drawable = {
        k: c
        for k, c in cluster_curves.items()
        if c.cluster_sensitivity is not None and c.false_clusters_per_normal_image is not None
    }
    if drawable:
        points = {k: v for k, v in cluster_points.items() if v is not None and k in drawable}
        panels.append(FrocPanel("clusters (annotated circles; normal films)", drawable, points))
    if lesion_insertion is not None:
        curves, points = {}, {}
        for key, name in (("selector", "selector"), ("plain_hdog", "plain HDoG")):
            if key in lesion_insertion:
                curves[name] = FROC.from_corners(lesion_insertion[key]["froc"])
        if "selector" in lesion_insertion:
            chosen = lesion_insertion["selector"]
            points["selector"] = (chosen["operating_point_fp_per_cm2"], chosen["operating_point_tpr"])
        if curves:
            panels.append(FrocPanel("inserted clusters in held-out normal films", curves, points, p["fp_per_cm2"]))
    return panels


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
        pixels = read_image(paths[im.image_id]).pixels
        panels.append(_crop_panel(im, pixels, (int(cy), int(cx)), p["gallery_crop_mm"], im.image_id))
    return panels


def _crop_panel(im, pixels, centre_yx: tuple[int, int], crop_mm: float, title: str, circles: bool = False) -> dict:
    """A gallery panel: a `crop_mm` wide crop of `pixels` around `centre_yx` (px), truth and the
    detections kept at the operating point; `circles` draws annotated circles as the truth."""
    half = crop_half_px(crop_mm, im.pixel_spacing_mm)
    h, w = im.pred.shape
    y0, x0 = max(centre_yx[0] - half, 0), max(centre_yx[1] - half, 0)
    y1, x1 = min(centre_yx[0] + half, h), min(centre_yx[1] + half, w)
    pred = im.pred[y0:y1, x0:x1]
    if im.keep is not None:  # draw the operating point, not every scored candidate
        pred = np.where(np.r_[False, im.keep][pred], pred, 0)
    truth = None if im.truth is None else im.truth[y0:y1, x0:x1]
    if truth is None and circles and im.circles_px is not None:
        truth = circles_label_image(im.circles_px, (y1 - y0, x1 - x0), (y0, x0))
    return {"title": title, "image": pixels[y0:y1, x0:x1], "truth": truth, "pred": pred}


def write_worst_gallery(
    evals, images: pd.DataFrame, p: dict, path, full_image: Callable[[str], ImageEval] | None = None
) -> list[WorstCase]:
    """The worst-case gallery (`calcsig.segment.worst_cases`): up to `gallery_size` crops of
    missed truth and of the densest false positives; a one-line figure when there are none.

    evals : the evaluated images, or their `ImageFailures` with `full_image` (image_id -> the
    evaluated image with its pixels) to read again the images drawn.
    """
    from calcsig.imageio import read_image

    cases = select_worst_cases(evals, p["gallery_size"], p["gallery_crop_mm"])
    paths = dict(zip(images["image_id"].astype(str), images["path"].astype(str)))
    drawn = dict.fromkeys(case.image_id for case in cases)
    if full_image is None:
        by_id = {im.image_id: im for im in evals if im.image_id in drawn}
    else:
        by_id = {image_id: full_image(image_id) for image_id in drawn}
    pixels = {image_id: read_image(paths[image_id]).pixels for image_id in drawn}
    panels = [
        _crop_panel(
            by_id[case.image_id],
            pixels[case.image_id],
            case.centre_yx_px,
            p["gallery_crop_mm"],
            case.title,
            circles=True,
        )
        for case in cases
    ]
    plot_gallery(
        panels,
        path,
        "worst cases at the operating point; green: ground truth, red: kept detections",
        empty_text=_no_worst_case_text(p["gallery_size"]),
    )
    return cases


def _no_worst_case_text(gallery_size: int) -> str:
    """The worst-case figure's one line when it has no panel."""
    if gallery_size == 0:
        return "no worst cases drawn: segment.gallery_size is 0"
    return "no truth missed and no false detection at the operating point"


def evaluate_held_out(
    images_tsv,
    rois_tsv,
    assignment_tsv,
    segment_dir,
    params: dict,
    out_json,
    out_froc_png,
    out_gallery_png,
    out_gallery_worst_png,
    selector_path=None,
    operating_point_path=None,
    lesion_insertion_path=None,
    segmented=None,
    selector_status: dict | None = None,
    workers: int = 1,
) -> dict:
    """Evaluate segmentation on the images outside the train split (dev and eval) that were
    segmented (`segmented`: their IDs; all when None; the quality gate may have skipped some).
    `selector_status` ({used, reason}), when given, is recorded under `selector`.

    With a selector (and its operating point JSON), `plain_hdog` reports the same
    candidates ranked by DoG response, so the selector's gain is measured on the
    same images. lesion_insertion_path : the lesion insertion JSON, when the corpus
    has held-out normal films. out_gallery_worst_png : missed truth and the densest
    false positives at the operating point.
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
        out_gallery_worst_png,
        image_ids=held_out,
        selector_path=selector_path,
        operating_point=read_operating_point(operating_point_path) if operating_point_path else None,
        lesion_insertion=json.loads(Path(lesion_insertion_path).read_text()) if lesion_insertion_path else None,
        extra={"selector": dict(selector_status)} if selector_status is not None else None,
        workers=workers,
    )
