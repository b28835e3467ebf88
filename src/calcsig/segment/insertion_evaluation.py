"""Detection on the held-out normal films with inserted lesions, against their exact truth.

The normal films outside the train split (the segmentation evaluation's
held-out images), with clusters inserted and segmented by
`calcsig.segment.inserted`, are scored by the train-split selector and matched
to the inserted calcifications under the evaluation's matching rule: a
pixel-level FROC on real parenchyma, beside the synthetic corpus's.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from calcsig.parallel import ordered_map
from calcsig.paths import atomic_path
from calcsig.segment.evaluate import (
    ImageEval,
    candidate_pairs,
    count_inside_circles,
    evaluate_images,
    prediction_centroids_mm,
    summarise_image,
)
from calcsig.segment.figures import plot_gallery
from calcsig.segment.inserted import inserted_film
from calcsig.segment.insertion import InsertedCluster
from calcsig.segment.params import INSERTION_EVALUATION_KEYS, segment_params
from calcsig.segment.selector import load_selector, read_operating_point, score_candidates
from calcsig.segment.store import read_candidates, read_segmentation
from calcsig.segment.truth import image_splits, normal_films
from calcsig.tables import read_table

METHOD = (
    "simulated calcification clusters (calcsig.synthetic.calcifications) rendered at each film's pixel spacing "
    "with partial volume, blurred by a Gaussian PSF of insertion_psf_sigma_mm, scaled so that each cluster's "
    "median calcification peaks at a contrast drawn from insertion_contrast_snr times the film's local pixel "
    "noise (robust std within 10 mm), added to the film, rounded and clipped to its stored range; then "
    "segmented like any image and matched to the inserted calcifications"
)


def held_out_normal_films(images_tsv, rois_tsv, assignment_tsv) -> list[str]:
    """IDs of the normal films outside the train split (sorted)."""
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    splits = image_splits(assignment_tsv)
    ids = images.loc[normal_films(images, rois), "image_id"].astype(str)
    return sorted(i for i in ids if splits.get(i, "train") != "train")


def _cluster_sensitivity(evals: list[ImageEval], circles: list[np.ndarray], min_objects: int) -> float | None:
    """Fraction of inserted clusters holding at least `min_objects` kept detections within their radius."""
    found, total = 0, 0
    for im, circ in zip(evals, circles):
        if not len(circ):
            continue
        found += int((count_inside_circles(prediction_centroids_mm(im)[im.kept()], circ) >= min_objects).sum())
        total += len(circ)
    return found / total if total else None


def evaluate_lesion_insertion(
    images_tsv,
    rois_tsv,
    assignment_tsv,
    inserted: dict,
    params: dict | None,
    seed: int,
    out_json,
    out_gallery=None,
    selector_path=None,
    operating_point_path=None,
    workers: int = 1,
) -> dict:
    """Evaluate detection on the held-out normal films with inserted lesions; write JSON (and a gallery PNG).

    inserted : image_id -> (npz, tsv) written by `calcsig.segment.inserted.insert_lesions_file` (films outside the
        held-out normal films are ignored).
    params : `segment` keys of `INSERTION_EVALUATION_KEYS`; seed : the top-level seed
        (to redraw the gallery's films, which are not stored).
    selector_path, operating_point_path : the train-split selector and its operating point;
        without them only plain HDoG (every candidate, ranked by DoG response) is evaluated.
    workers : processes reading and matching the films (the outputs do not depend on it).
    JSON: `method`, counts, `contrast_snr`, `psf_sigma_mm`, `local_noise` (film units), and per
    detector (`selector` at its operating point, `plain_hdog` keeping every candidate) the
    pixel-level metrics of `evaluate_images` with `froc` corners and `inserted_cluster_sensitivity`.
    """
    p = segment_params(params, INSERTION_EVALUATION_KEYS)
    images = read_table(images_tsv, "images").set_index("image_id", drop=False)
    films = [i for i in held_out_normal_films(images_tsv, rois_tsv, assignment_tsv) if i in inserted]
    selector = load_selector(selector_path) if selector_path else None
    threshold = read_operating_point(operating_point_path)["threshold"] if operating_point_path else None
    match = (p["match_distance_mm"], p["match_iou"])
    loaded = ordered_map(functools.partial(_load_film, inserted, selector, threshold, match), films, workers)
    plain = [film[0] for film in loaded]
    selected = [film[1] for film in loaded if film[1] is not None]
    circles = [film[2] for film in loaded]
    noises = [noise for film in loaded for noise in film[3]]
    contrasts = [contrast for film in loaded for contrast in film[4]]
    result = {
        "method": METHOD,
        "n_images": len(films),
        "n_clusters": int(sum(len(c) for c in circles)),
        "clusters_per_image": p["insertion_clusters_per_image"],
        "contrast_snr": list(p["insertion_contrast_snr"]),
        "psf_sigma_mm": p["insertion_psf_sigma_mm"],
        "local_noise": _summary(noises),
        "drawn_contrast_snr": _summary(contrasts),
    }
    if not films:
        result["skipped"] = "no held-out normal film"
    kwargs = dict(distance_mm=p["match_distance_mm"], iou_min=p["match_iou"], fp_rate=p["fp_per_cm2"])
    for name, evals in (("plain_hdog", plain), ("selector", selected)):
        if not evals:
            continue
        metrics, froc = evaluate_images(evals, **kwargs)
        metrics["froc"] = froc.corners()
        metrics["inserted_cluster_sensitivity"] = _cluster_sensitivity(evals, circles, p["cluster_min_objects"])
        if name == "selector":
            metrics["threshold"] = threshold
        result[name] = metrics
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if out_gallery is not None:
        shown = selected or plain
        panels = [
            _panel(images, im, read_segmentation(inserted[im.image_id][0])["labels"], p, seed)
            for im in shown[: p["gallery_size"]]
        ]
        plot_gallery(
            panels, out_gallery, "inserted clusters in held-out normal films; green: truth, red: kept detections"
        )
    return result


def _load_film(inserted: dict, selector, threshold, match: tuple[float, float], image_id: str) -> tuple:
    """One film with inserted lesions: (plain HDoG ImageEval, the selector's or None, its clusters'
    (x mm, y mm, radius mm) rows, the clusters' local noise, their drawn contrast SNR)."""
    npz, tsv = inserted[image_id]
    seg, table = read_segmentation(npz), read_candidates(tsv)
    with np.load(npz) as stored:
        truth = stored["truth"]
        centres, radii = stored["cluster_centre_yx_px"], stored["cluster_radius_mm"]
        noises = list(stored["cluster_local_noise"])
        contrasts = list(stored["cluster_contrast_snr"])
    spacing = seg["pixel_spacing_mm"]
    circles = np.column_stack([centres[:, 1] * spacing, centres[:, 0] * spacing, radii])
    dog = table["dog_response"].to_numpy(dtype=np.float64)
    plain = ImageEval(image_id, seg["labels"], dog, seg["breast"], spacing, truth=truth)
    # the candidate pairs and centroids do not depend on the ranking: both rankings share them
    pairs = candidate_pairs(plain.pred, truth, spacing, *match)
    plain.summary = summarise_image(plain, *match, centroids=True, pairs=pairs)
    selected = None
    if selector is not None:
        scores = score_candidates(table, selector)
        selected = replace(plain, scores=scores, keep=scores >= threshold, summary=None)
        selected.summary = summarise_image(selected, *match, centroids=False, pairs=pairs)
        selected.summary.centroids_mm = plain.summary.centroids_mm
        selected = selected.without_pixels()
    return plain.without_pixels(), selected, circles, noises, contrasts


def _summary(values) -> dict | None:
    if not values:
        return None
    values = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())}


def _panel(images, evaluated: ImageEval, labels: np.ndarray, p: dict, seed: int) -> dict:
    """A crop around the film's first inserted cluster (the film redrawn: insertion is deterministic);
    labels : the film's detections (label image)."""
    row = images.loc[evaluated.image_id]
    pixels, spacing, truth, clusters = inserted_film(row["path"], evaluated.image_id, row["pixel_spacing_mm"], p, seed)
    cluster: InsertedCluster = clusters[0]
    half = int(round(p["gallery_crop_mm"] / spacing / 2))
    cy, cx = (int(v) for v in cluster.centre_yx_px)
    h, w = pixels.shape
    y0, x0, y1, x1 = max(cy - half, 0), max(cx - half, 0), min(cy + half, h), min(cx + half, w)
    pred = labels[y0:y1, x0:x1]
    if evaluated.keep is not None:
        pred = np.where(np.r_[False, evaluated.keep][pred], pred, 0)
    return {
        "title": f"{evaluated.image_id} ({cluster.fine_class}, {cluster.contrast_snr:.1f} x noise)",
        "image": pixels[y0:y1, x0:x1],
        "truth": truth[y0:y1, x0:x1],
        "pred": pred,
    }
