"""Segmentation evaluation: object matching, FROC, overlap, cluster-level metrics.

Matching rule: a ground-truth calcification is detected by a
prediction whose centroid lies within `distance_mm` (0.35 mm) of the truth
centroid, or whose IoU with it is at least `iou_min` (0.3); each truth object
and each prediction is matched at most once. Predictions are matched in
decreasing score order, so the matches at any score threshold are a prefix of
one greedy pass and the whole FROC curve comes from a single sort.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from calcsig.parallel import ordered_map
from calcsig.segment.candidates import object_geometry


def overlap_iou(pred: np.ndarray, truth: np.ndarray) -> dict[tuple[int, int], float]:
    """IoU of every overlapping (pred label, truth label) pair (labels 1-based)."""
    both = (pred > 0) & (truth > 0)
    if not both.any():
        return {}
    p, t = pred[both].astype(np.int64), truth[both].astype(np.int64)
    nt = int(truth.max()) + 1
    pairs, inter = np.unique(p * nt + t, return_counts=True)
    area_p = np.bincount(pred.ravel(), minlength=int(pred.max()) + 1)
    area_t = np.bincount(truth.ravel(), minlength=nt)
    out = {}
    for code, i in zip(pairs, inter):
        a, b = int(code // nt), int(code % nt)
        out[(a, b)] = float(i / (area_p[a] + area_t[b] - i))
    return out


def candidate_pairs(
    pred: np.ndarray, truth: np.ndarray, pixel_spacing_mm: float, distance_mm: float = 0.35, iou_min: float = 0.3
) -> list[tuple[int, int, float, float]]:
    """Eligible (pred label, truth label, centroid distance mm, IoU) pairs under the matching rule."""
    _, pc, _ = object_geometry(pred)
    _, tc, _ = object_geometry(truth)
    ious = overlap_iou(pred, truth)
    eligible = {k for k, v in ious.items() if v >= iou_min}
    if len(pc) and len(tc):
        tree = cKDTree(tc * pixel_spacing_mm)
        for i, near in enumerate(tree.query_ball_point(pc * pixel_spacing_mm, distance_mm)):
            eligible.update((i + 1, j + 1) for j in near)
    out = []
    for a, b in sorted(eligible):
        dist = float(np.hypot(*(pc[a - 1] - tc[b - 1])) * pixel_spacing_mm)
        out.append((a, b, dist, ious.get((a, b), 0.0)))
    return out


def greedy_match(scores: np.ndarray, pairs: list[tuple[int, int, float, float]]) -> np.ndarray:
    """Truth label matched by each prediction (0 = false positive), one match each.

    Predictions take their turn by decreasing score (ties: lower label first) and
    pick the free eligible truth object of highest IoU, then smallest distance.
    """
    scores = np.asarray(scores, dtype=np.float64)
    options: dict[int, list[tuple[float, float, int]]] = {}
    for a, b, dist, iou in pairs:
        options.setdefault(a, []).append((-iou, dist, b))
    matched = np.zeros(scores.size, dtype=np.int64)
    taken: set[int] = set()
    for idx in np.lexsort((np.arange(scores.size), -scores)):
        for _, _, b in sorted(options.get(int(idx) + 1, [])):
            if b not in taken:
                taken.add(b)
                matched[idx] = b
                break
    return matched


@dataclass
class FROC:
    """thresholds (descending scores), sensitivity and false positives per cm2 at each."""

    thresholds: np.ndarray
    sensitivity: np.ndarray
    fp_per_cm2: np.ndarray

    def corners(self) -> dict:
        """The staircase's corners (points where sensitivity rises) and its end, for JSON."""
        rise = np.r_[True, self.sensitivity[1:] > self.sensitivity[:-1]]
        rise[-1] = True
        return {
            "fp_per_cm2": [float(v) for v in self.fp_per_cm2[rise]],
            "sensitivity": [float(v) for v in self.sensitivity[rise]],
            "threshold": [float(v) if np.isfinite(v) else None for v in self.thresholds[rise]],
        }

    @classmethod
    def from_corners(cls, corners: dict) -> FROC:
        """The curve back from `corners()` (the same staircase)."""
        return cls(
            np.array([np.inf if t is None else t for t in corners["threshold"]], dtype=np.float64),
            np.asarray(corners["sensitivity"], dtype=np.float64),
            np.asarray(corners["fp_per_cm2"], dtype=np.float64),
        )

    def sensitivity_at(self, fp_per_cm2: float) -> float:
        """Highest sensitivity reached with at most `fp_per_cm2` false positives per cm2."""
        ok = self.fp_per_cm2 <= fp_per_cm2 + 1e-12
        return float(self.sensitivity[ok].max()) if ok.any() else 0.0


def froc_curve(scores: np.ndarray, is_tp: np.ndarray, n_truth: int, area_cm2: float) -> FROC:
    """FROC from pooled predictions (score, matched?) over a set of images.

    n_truth : number of ground-truth objects; area_cm2 : breast area in cm2.
    The curve starts at (0, 0) (threshold +inf: nothing kept).
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_tp = np.asarray(is_tp, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    s, tp = scores[order], is_tp[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    last = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, bool)  # one point per distinct score
    sens = ctp[last] / max(n_truth, 1)
    fpr = cfp[last] / area_cm2 if area_cm2 > 0 else np.where(cfp[last] > 0, np.inf, 0.0)
    return FROC(np.r_[np.inf, s[last]], np.r_[0.0, sens], np.r_[0.0, fpr])


def count_inside_circles(centroids_mm: np.ndarray, circles_mm: np.ndarray) -> np.ndarray:
    """Number of detections inside each circle; circles_mm rows are (x, y, radius) in mm,
    centroids_mm rows are (x, y) in mm."""
    circles_mm = np.asarray(circles_mm, dtype=np.float64).reshape(-1, 3)
    centroids_mm = np.asarray(centroids_mm, dtype=np.float64).reshape(-1, 2)
    if centroids_mm.size == 0:
        return np.zeros(len(circles_mm), dtype=np.int64)
    d = np.hypot(centroids_mm[None, :, 0] - circles_mm[:, None, 0], centroids_mm[None, :, 1] - circles_mm[:, None, 1])
    return (d <= circles_mm[:, 2:3]).sum(axis=1)


def count_clusters(centroids_mm: np.ndarray, min_objects: int = 3, diameter_mm: float = 10.0) -> int:
    """Number of disjoint clusters: groups of >= `min_objects` detections within one
    disk of `diameter_mm`.

    Greedy cover: the disk centred on the detection with most remaining
    detections within diameter/2 forms a cluster; its members are removed and the
    search repeats until no disk holds `min_objects`.
    """
    pts = np.asarray(centroids_mm, dtype=np.float64).reshape(-1, 2)
    if len(pts) < min_objects:
        return 0
    tree = cKDTree(pts)
    neighbours = [set(n) for n in tree.query_ball_point(pts, diameter_mm / 2.0)]
    alive = np.ones(len(pts), dtype=bool)
    counts = np.array([len(n) for n in neighbours])
    clusters = 0
    while True:
        best = int(np.argmax(np.where(alive, counts, -1)))
        if not alive[best] or counts[best] < min_objects:
            return clusters
        clusters += 1
        members = [m for m in neighbours[best] if alive[m]]
        alive[members] = False
        for m in members:
            for other in neighbours[m]:
                if alive[other]:
                    counts[other] -= 1


def circle_detection_thresholds(
    scores: np.ndarray, centroids_mm: np.ndarray, circles_mm: np.ndarray, min_objects: int = 3
) -> np.ndarray:
    """Per circle, the highest score threshold at which it holds `min_objects` kept detections.

    A circle (x, y, radius mm) counts as found at threshold t when at least
    `min_objects` detections scoring >= t lie inside it: that is t <= the
    `min_objects`-th highest score inside. -inf for a circle that never holds enough.
    """
    scores = np.asarray(scores, dtype=np.float64)
    circles_mm = np.asarray(circles_mm, dtype=np.float64).reshape(-1, 3)
    centroids_mm = np.asarray(centroids_mm, dtype=np.float64).reshape(-1, 2)
    out = np.full(len(circles_mm), -np.inf)
    for i, (cx, cy, r) in enumerate(circles_mm):
        inside = np.sort(scores[np.hypot(centroids_mm[:, 0] - cx, centroids_mm[:, 1] - cy) <= r])[::-1]
        if inside.size >= min_objects:
            out[i] = inside[min_objects - 1]
    return out


@dataclass
class ClusterFROC:
    """Cluster-level FROC: at each score threshold (descending; +inf keeps nothing), the
    fraction of annotated clusters found and the false clusters per normal image.

    cluster_sensitivity is None without annotated clusters, false_clusters_per_normal_image
    None without normal images.
    """

    thresholds: np.ndarray
    cluster_sensitivity: np.ndarray | None
    false_clusters_per_normal_image: np.ndarray | None

    def to_json(self) -> dict:
        """Lists `threshold` (null for +inf), `cluster_sensitivity`, `false_clusters_per_normal_image`."""

        def values(array):
            return None if array is None else [float(v) for v in array]

        return {
            "threshold": [float(t) if np.isfinite(t) else None for t in self.thresholds],
            "cluster_sensitivity": values(self.cluster_sensitivity),
            "false_clusters_per_normal_image": values(self.false_clusters_per_normal_image),
        }

    def point(self, threshold: float) -> dict:
        """The curve's point at exactly `threshold` (which must be one of its thresholds)."""
        index = int(np.flatnonzero(self.thresholds == threshold)[0])
        return {
            "threshold": float(threshold),
            "cluster_sensitivity": None if self.cluster_sensitivity is None else float(self.cluster_sensitivity[index]),
            "false_clusters_per_normal_image": None
            if self.false_clusters_per_normal_image is None
            else float(self.false_clusters_per_normal_image[index]),
        }


def cluster_froc(
    circle_images: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    normal_images: list[tuple[np.ndarray, np.ndarray]],
    min_objects: int = 3,
    diameter_mm: float = 10.0,
    n_grid: int = 60,
    extra_thresholds=(),
    workers: int = 1,
) -> ClusterFROC:
    """Cluster sensitivity and false clusters per normal image over the score threshold.

    circle_images : per image with annotated clusters (scores (n,), centroids (n, 2) as
        (x, y) mm, circles (k, 3) as (x, y, radius) mm).
    normal_images : per normal image (scores (n,), centroids (n, 2) as (x, y) mm).
    min_objects, diameter_mm : the cluster definition (`count_inside_circles`, `count_clusters`).
    n_grid : score quantiles of the normal images' detections added as thresholds
        (false clusters are counted there); every threshold where a circle becomes
        found is on the curve exactly, and so is each of `extra_thresholds`.
    The curve starts at +inf (nothing kept) and ends at the lowest score (everything kept).
    workers : processes counting the normal images' clusters (the result does not depend on it).
    """
    found_at = [
        circle_detection_thresholds(s, c, circles, min_objects) for s, c, circles in circle_images if len(circles)
    ]
    found_at = np.concatenate(found_at) if found_at else np.zeros(0)
    normal_scores = [np.asarray(s, dtype=np.float64) for s, _ in normal_images]
    pooled = np.concatenate(
        normal_scores + [np.asarray(s, dtype=np.float64).ravel() for s, _, _ in circle_images] + [np.zeros(0)]
    )
    grid = [found_at[np.isfinite(found_at)], np.asarray(list(extra_thresholds), dtype=np.float64)]
    normal_pooled = np.concatenate(normal_scores + [np.zeros(0)])
    if normal_pooled.size:
        grid.append(np.quantile(normal_pooled, np.linspace(0.0, 1.0, n_grid)))
    if pooled.size:
        grid.append([pooled.min()])
    thresholds = np.r_[np.inf, np.unique(np.concatenate(grid))[::-1]]
    sensitivity = None
    if found_at.size:
        sensitivity = (found_at[None, :] >= thresholds[:, None]).mean(axis=1)
    false_clusters = None
    if normal_images:

        def clusters_over_thresholds(image) -> np.ndarray:
            scores = np.asarray(image[0], dtype=np.float64)
            centroids = np.asarray(image[1], dtype=np.float64).reshape(-1, 2)
            return np.array([count_clusters(centroids[scores >= t], min_objects, diameter_mm) for t in thresholds])

        counts = np.sum(ordered_map(clusters_over_thresholds, normal_images, workers), axis=0)
        false_clusters = counts / len(normal_images)
    return ClusterFROC(thresholds, sensitivity, false_clusters)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Pixel Dice of two masks (1.0 when both are empty)."""
    p, t = pred > 0, truth > 0
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * float((p & t).sum()) / total


@dataclass
class ImageEval:
    """One image's predictions and truth, as `evaluate_images` takes them.

    pred : (H, W) int label image; scores : (n,) per prediction label 1..n (FROC score);
    breast : (H, W) bool; pixel_spacing_mm; truth : (H, W) label image or None;
    circles_px : (k, 3) rows (x, y, radius) px of calcification clusters or None;
    normal : True for a film without any finding; keep : (n,) bool, the operating point
    (predictions actually output), all True when None. summary : the image's `ImageSummary`
    when already computed (`summarise_image`; whole-corpus jobs make it in their worker
    processes), else `evaluate_images` makes it. With a summary, `evaluate_images` needs no
    pixels: `without_pixels` drops them.
    """

    image_id: str
    pred: np.ndarray | None
    scores: np.ndarray
    breast: np.ndarray | None
    pixel_spacing_mm: float
    truth: np.ndarray | None = None
    circles_px: np.ndarray | None = None
    normal: bool = False
    keep: np.ndarray | None = None
    summary: ImageSummary | None = None

    def kept(self) -> np.ndarray:
        """(n,) bool: the predictions output at the operating point."""
        return np.ones(len(self.scores), bool) if self.keep is None else np.asarray(self.keep, bool)

    def without_pixels(self) -> ImageEval:
        """This image without its pixel arrays (`pred`, `truth`, `breast` None): what the corpus-wide
        metrics need of it once summarised, a few kB instead of megabytes to pass between processes
        or hold for a whole corpus."""
        if self.summary is None:
            raise ValueError(f"{self.image_id}: summarise the image (summarise_image) before dropping its pixels")
        return replace(self, pred=None, truth=None, breast=None)


@dataclass
class ImageSummary:
    """What `evaluate_images` needs of one image, without its pixels.

    tp : (n,) bool, prediction matched with a truth object (pixel truth; None without);
    ious : IoU of the kept matched predictions; n_truth, breast_area_cm2; intersection,
    total : kept predicted and truth pixels (Dice); centroids_mm : (n, 2) (x, y) mm of
    the predictions (cluster truth and normal films; None otherwise).
    """

    tp: np.ndarray | None
    ious: list
    n_truth: int
    breast_area_cm2: float
    intersection: int
    total: int
    centroids_mm: np.ndarray | None


def summarise_image(
    im: ImageEval,
    distance_mm: float = 0.35,
    iou_min: float = 0.3,
    centroids: bool | None = None,
    pairs: list[tuple[int, int, float, float]] | None = None,
) -> ImageSummary:
    """The per-image part of `evaluate_images` (matching under `distance_mm` / `iou_min`); the
    predictions' centroids when `centroids` (None: for an image with cluster truth or a normal film).

    pairs : `candidate_pairs` of the image's labels and truth under the same rule, when already
        computed (they do not depend on the scores: two rankings of one image share them).
    """
    tp, ious, n_truth, intersection, total, centroids_mm = None, [], 0, 0, 0, None
    keep = im.kept()
    if im.truth is not None:
        if pairs is None:
            pairs = candidate_pairs(im.pred, im.truth, im.pixel_spacing_mm, distance_mm, iou_min)
        matched = greedy_match(im.scores, pairs)
        tp = matched > 0
        n_truth = int(im.truth.max()) if im.truth.size else 0
        kept_pred = np.r_[False, keep][im.pred]
        iou_of = {(a, b): v for a, b, _, v in pairs}
        ious = [iou_of[(i + 1, int(b))] for i, b in enumerate(matched) if b and keep[i]]
        intersection = int((kept_pred & (im.truth > 0)).sum())
        total = int(kept_pred.sum()) + int((im.truth > 0).sum())
    if centroids is None:
        centroids = im.normal or (im.circles_px is not None and len(im.circles_px) > 0)
    if centroids:
        centroids_mm = prediction_centroids_mm(im)
    area = float(im.breast.sum()) * im.pixel_spacing_mm**2 / 100.0
    return ImageSummary(tp, ious, n_truth, area, intersection, total, centroids_mm)


def prediction_centroids_mm(im: ImageEval) -> np.ndarray:
    """(n, 2) (x, y) mm centroids of the predictions, in label order: the summary's when it holds them."""
    if im.summary is not None and im.summary.centroids_mm is not None:
        return im.summary.centroids_mm
    _, centroid, _ = object_geometry(im.pred, len(im.scores))
    return centroid[:, ::-1] * im.pixel_spacing_mm


def evaluate_images(
    images: list[ImageEval],
    distance_mm: float = 0.35,
    iou_min: float = 0.3,
    fp_rate: float = 0.4,
    cluster_min_objects: int = 3,
    cluster_diameter_mm: float = 10.0,
) -> tuple[dict, FROC | None]:
    """Pixel-truth metrics (FROC, TPR at `fp_rate` FP/cm2, IoU, Dice) over images with
    `truth`, and cluster metrics over images with `circles_px` or `normal`.

    Returns (metrics dict, FROC or None when no image has pixel truth).
    """
    metrics: dict = {}
    summaries = [im.summary or summarise_image(im, distance_mm, iou_min) for im in images]
    pixel = [(im, sm) for im, sm in zip(images, summaries) if sm.tp is not None]
    pixel_images = [im for im, _ in pixel]
    all_scores = [np.asarray(im.scores, dtype=np.float64) for im, _ in pixel]
    all_tp = [sm.tp for _, sm in pixel]
    ious = [iou for _, sm in pixel for iou in sm.ious]
    n_truth = sum(sm.n_truth for _, sm in pixel)
    area_cm2 = sum(sm.breast_area_cm2 for _, sm in pixel)
    inter = sum(sm.intersection for _, sm in pixel)
    total = sum(sm.total for _, sm in pixel)
    froc = None
    if pixel_images:
        froc = froc_curve(np.concatenate(all_scores), np.concatenate(all_tp), n_truth, area_cm2)
        kept = np.concatenate([im.kept() for im in pixel_images])
        tp = np.concatenate(all_tp)
        metrics.update(
            {
                "n_images_pixel_truth": len(pixel_images),
                "n_truth_objects": n_truth,
                "breast_area_cm2": area_cm2,
                f"tpr_at_{fp_rate:g}_fp_per_cm2": froc.sensitivity_at(fp_rate),
                "operating_point_tpr": float(tp[kept].sum() / max(n_truth, 1)),
                "operating_point_fp_per_cm2": float((~tp[kept]).sum() / area_cm2) if area_cm2 > 0 else None,
                "mean_iou_matched": float(np.mean(ious)) if ious else None,
                "dice": 1.0 if total == 0 else 2.0 * inter / total,
            }
        )
    circle_images = [im for im in images if im.circles_px is not None and len(im.circles_px)]
    normal_images = [im for im in images if im.normal]
    if circle_images or normal_images:
        summary_of = {id(im): sm for im, sm in zip(images, summaries)}
        found, n_circles = 0, 0
        for im in circle_images:
            pts = summary_of[id(im)].centroids_mm[im.kept()]
            counts = count_inside_circles(pts, np.asarray(im.circles_px, float) * im.pixel_spacing_mm)
            found += int((counts >= cluster_min_objects).sum())
            n_circles += len(counts)
        false_clusters = [
            count_clusters(summary_of[id(im)].centroids_mm[im.kept()], cluster_min_objects, cluster_diameter_mm)
            for im in normal_images
        ]
        metrics.update(
            {
                "n_annotated_clusters": n_circles,
                "cluster_sensitivity": found / n_circles if n_circles else None,
                "n_normal_images": len(normal_images),
                "false_clusters_per_normal_image": float(np.mean(false_clusters)) if false_clusters else None,
                "cluster_min_objects": cluster_min_objects,
            }
        )
    return metrics, froc
