"""The segmentation evaluation's worst cases at the operating point: missed truth and dense false positives.

Two kinds of held-out image are shown in the worst-case gallery:

- missed truth: a pixel-truth calcification that no kept detection overlaps, or
  an annotated cluster circle holding no kept detection's centroid; images with
  the most misses first;
- dense false positives: kept detections outside any truth (no overlap with
  pixel truth, centroid outside every circle; every detection on a normal film),
  per cm2 of breast; the densest images first.

"Missed" here means nothing was detected there at all, so the panels show the
plainest failures rather than near misses of the matching rule. Ties are broken
by image_id, and within an image by label (or circle) order: no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from calcsig.segment.candidates import object_geometry
from calcsig.segment.evaluate import ImageEval, count_inside_circles

MISSED = "missed"
FALSE_POSITIVES = "false_positives"


@dataclass(frozen=True)
class WorstCase:
    """One panel of the worst-case gallery.

    kind : MISSED or FALSE_POSITIVES; value : truth objects missed (count) or false
    detections per cm2 of breast; centre_yx_px : (row, column) px the crop is centred on.
    """

    image_id: str
    kind: str
    value: float
    centre_yx_px: tuple[int, int]
    title: str


def kept_label_mask(im: ImageEval) -> np.ndarray:
    """(H, W) bool: pixels of kept detections."""
    return np.r_[False, im.kept()][im.pred]


def detection_centroids_xy(im: ImageEval) -> np.ndarray:
    """(n, 2) detection centroids as (x, y) px, in label order."""
    _, centroid_yx, _ = object_geometry(im.pred, len(im.scores))
    return centroid_yx[:, ::-1]


def inside_any_circle(points_xy: np.ndarray, circles_px: np.ndarray) -> np.ndarray:
    """(m,) bool: whether each point (x, y) px lies inside (or on) any circle (x, y, radius) px."""
    points_xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    circles_px = np.asarray(circles_px, dtype=np.float64).reshape(-1, 3)
    if not len(points_xy) or not len(circles_px):
        return np.zeros(len(points_xy), bool)
    distance = np.hypot(points_xy[:, None, 0] - circles_px[None, :, 0], points_xy[:, None, 1] - circles_px[None, :, 1])
    return (distance <= circles_px[None, :, 2]).any(axis=1)


def missed_truth_centres(im: ImageEval) -> np.ndarray:
    """(k, 2) centres (y, x) px of the truth objects no kept detection reaches, in label (circle) order.

    Pixel truth: a truth label no kept detection's pixels overlap (centre: its
    centroid). Circles: a circle holding no kept detection's centroid (centre: the
    circle's). Pixel truth is used when an image has both.
    """
    if im.truth is not None:
        n = int(im.truth.max()) if im.truth.size else 0
        present = np.bincount(im.truth.ravel(), minlength=n + 1)[1:] > 0
        hit = np.zeros(n + 1, bool)
        hit[np.unique(im.truth[kept_label_mask(im)])] = True
        _, centroid_yx, _ = object_geometry(im.truth, n)
        return centroid_yx[present & ~hit[1:]]
    if im.circles_px is not None and len(im.circles_px):
        circles = np.asarray(im.circles_px, dtype=np.float64).reshape(-1, 3)
        kept_xy = detection_centroids_xy(im)[im.kept()]
        return circles[count_inside_circles(kept_xy, circles) == 0][:, [1, 0]]
    return np.zeros((0, 2))


def false_detection_centres(im: ImageEval) -> np.ndarray:
    """(m, 2) centroids (y, x) px of kept detections outside any truth, in label order.

    Pixel truth: no pixel overlaps a truth object. Circles: the centroid lies
    outside every circle. Normal film: every kept detection. An image without any
    kind of truth has none (nothing is known to be false there).
    """
    kept = im.kept()
    if im.truth is not None:
        on_truth = np.zeros(len(kept) + 1, bool)
        on_truth[np.unique(im.pred[im.truth > 0])] = True
        false = kept & ~on_truth[1:]
    elif im.circles_px is not None and len(im.circles_px):
        false = kept & ~inside_any_circle(detection_centroids_xy(im), im.circles_px)
    elif im.normal:
        false = kept
    else:
        return np.zeros((0, 2))
    return detection_centroids_xy(im)[false][:, ::-1]


def breast_area_cm2(im: ImageEval) -> float:
    """Breast area in cm2 (the whole image's when the breast mask is empty)."""
    pixels = int(im.breast.sum()) or im.pred.size
    return pixels * im.pixel_spacing_mm**2 / 100.0


def crop_half_px(crop_mm: float, pixel_spacing_mm: float) -> int:
    """Half the side, in px, of a square crop `crop_mm` wide."""
    return int(round(crop_mm / pixel_spacing_mm / 2))


def densest_point(points_yx: np.ndarray, half_px: int) -> int:
    """Index of the point with the most other points within a square crop centred on it
    (|dy|, |dx| <= half_px, in px); ties go to the first."""
    points_yx = np.asarray(points_yx, dtype=np.float64).reshape(-1, 2)
    # a square crop is a ball in the maximum norm; a tree keeps thousands of detections cheap
    counts = cKDTree(points_yx).query_ball_point(points_yx, r=half_px, p=np.inf, return_length=True)
    return int(np.argmax(counts))


@dataclass
class ImageFailures:
    """What the worst-case selection needs of one image, without its pixels (`image_failures`).

    missed_centres_yx : (k, 2) px, `missed_truth_centres`; missed_noun : what they are
    ("calcification" for pixel truth, "cluster" for circles); false_centres_yx : (m, 2) px,
    `false_detection_centres`; breast_area_cm2 : `breast_area_cm2`.
    """

    image_id: str
    pixel_spacing_mm: float
    missed_noun: str
    missed_centres_yx: np.ndarray
    false_centres_yx: np.ndarray
    breast_area_cm2: float


def image_failures(im: ImageEval) -> ImageFailures:
    """The image's missed truth and false detections at the operating point, for `select_worst_cases`."""
    return ImageFailures(
        im.image_id,
        im.pixel_spacing_mm,
        "calcification" if im.truth is not None else "cluster",
        missed_truth_centres(im),
        false_detection_centres(im),
        breast_area_cm2(im),
    )


def _failures(evals) -> list[ImageFailures]:
    return [im if isinstance(im, ImageFailures) else image_failures(im) for im in evals]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def worst_missed(evals: list[ImageEval | ImageFailures], crop_mm: float) -> list[WorstCase]:
    """Images with missed truth, most missed first (ties by image_id); each crop centred on the
    missed object with the most other missed objects in the crop (`crop_mm` wide)."""
    cases = []
    for im in _failures(evals):
        centres = im.missed_centres_yx
        if not len(centres):
            continue
        centre = centres[densest_point(centres, crop_half_px(crop_mm, im.pixel_spacing_mm))]
        count = len(centres)
        title = f"{im.image_id}: {plural(count, im.missed_noun)} missed"
        cases.append(WorstCase(im.image_id, MISSED, float(count), _pixel(centre), title))
    return worst_first(cases)


def worst_false_positives(evals: list[ImageEval | ImageFailures], crop_mm: float) -> list[WorstCase]:
    """Images with false detections, most per cm2 of breast first (ties by image_id); each crop
    centred on the false detection with the most other false detections in the crop."""
    cases = []
    for im in _failures(evals):
        centres = im.false_centres_yx
        if not len(centres):
            continue
        density = len(centres) / im.breast_area_cm2
        centre = centres[densest_point(centres, crop_half_px(crop_mm, im.pixel_spacing_mm))]
        title = f"{im.image_id}: {density:.3g} false detections / cm\u00b2"
        cases.append(WorstCase(im.image_id, FALSE_POSITIVES, density, _pixel(centre), title))
    return worst_first(cases)


def worst_first(cases: list[WorstCase]) -> list[WorstCase]:
    """Highest value first, ties by image_id; values equal to 9 decimals tie, so that rounding
    in the area (e.g. 2 per cm2 from 4 on 2 cm2 and 8 on 4 cm2) does not decide the order."""
    return sorted(cases, key=lambda case: (-round(case.value, 9), case.image_id))


def _pixel(centre_yx) -> tuple[int, int]:
    return int(round(centre_yx[0])), int(round(centre_yx[1]))


def panel_budget(n_missed: int, n_false: int, size: int) -> tuple[int, int]:
    """Panels of each kind (missed, false positives) within `size`: half each when both kinds
    have enough (missed takes the odd one), the other kind filling what one cannot."""
    missed = min(n_missed, max(size - min(n_false, size // 2), 0))
    return missed, min(n_false, size - missed)


def select_worst_cases(evals: list[ImageEval | ImageFailures], size: int, crop_mm: float) -> list[WorstCase]:
    """Up to `size` worst cases: the missed ones first, then the dense false positives.

    evals : the evaluated images, or their `image_failures` (computed where the pixels are).
    """
    evals = _failures(evals)
    missed = worst_missed(evals, crop_mm)
    false = worst_false_positives(evals, crop_mm)
    n_missed, n_false = panel_budget(len(missed), len(false), size)
    return missed[:n_missed] + false[:n_false]


def circles_label_image(circles_px, shape: tuple[int, int], offset_yx: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W) int32 image of filled circles (x, y, radius) px, labelled 1..k, over a crop of
    `shape` whose top-left is `offset_yx` (px) in the image (later circles drawn on top)."""
    labels = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    yy, xx = yy + offset_yx[0], xx + offset_yx[1]
    for k, (x, y, radius) in enumerate(np.asarray(circles_px, dtype=np.float64).reshape(-1, 3), start=1):
        labels[np.hypot(xx - x, yy - y) <= radius] = k
    return labels
