"""Per-ROI geometry of the cluster: the published handcrafted features and BI-RADS-style descriptors.

All outputs are defined for any number of objects; where a quantity has no
meaning for fewer than two (or three) objects the value is the one describing
"no spread" (0), as listed in each function and in docs/features.md, so a model
never meets a NaN it cannot interpret.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist, squareform

HANDCRAFTED_NAMES = ("hc_area_std_mm2", "hc_centroid_xy_correlation", "hc_mean_pairwise_distance_mm")

DISTRIBUTION_NAMES = (
    "dist_n_objects",
    "dist_extent_mm",
    "dist_hull_area_mm2",
    "dist_density_hull_per_cm2",
    "dist_density_roi_per_cm2",
    "dist_elongation",
    "dist_linearity",
    "dist_branching",
    "dist_mst_mean_edge_mm",
)


def object_geometry(foreground: np.ndarray, spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (n, 2) as (x, y) in mm and areas (n,) in mm2 of labels 1..n."""
    n = int(foreground.max()) if foreground.size else 0
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0)
    labels = np.arange(1, n + 1)
    area_px = ndi.sum_labels(np.ones(foreground.shape), foreground, labels)
    centroid_yx = np.array(ndi.center_of_mass(np.ones(foreground.shape), foreground, labels), dtype=np.float64)
    return centroid_yx[:, ::-1] * spacing_mm, area_px * spacing_mm**2


def handcrafted_features(centroids_mm: np.ndarray, areas_mm2: np.ndarray) -> np.ndarray:
    """The published pipeline's handcrafted cluster features, order of :data:`HANDCRAFTED_NAMES`.

    - hc_area_std_mm2: population standard deviation of object areas (0 for < 2 objects);
    - hc_centroid_xy_correlation: Pearson correlation of the centroids' x and y
      coordinates; 0 when it is undefined (< 2 objects, or all centroids on one
      row or one column: zero variance, no linear x-y trend to measure);
    - hc_mean_pairwise_distance_mm: mean Euclidean distance between centroids over
      all pairs (0 for < 2 objects).
    """
    n = len(areas_mm2)
    if n < 2:
        return np.zeros(len(HANDCRAFTED_NAMES))
    x, y = centroids_mm[:, 0], centroids_mm[:, 1]
    sx, sy = x.std(), y.std()
    # relative threshold: centroids on one row can differ by rounding only
    scale = max(np.abs(centroids_mm).max(), 1.0)
    if sx <= 1e-12 * scale or sy <= 1e-12 * scale:
        correlation = 0.0
    else:
        correlation = float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))
    return np.array([areas_mm2.std(), correlation, pdist(centroids_mm).mean()])


def _hull_area_and_extent(points: np.ndarray) -> tuple[float, float]:
    """Area of the convex hull and largest distance between points (any number of points)."""
    if len(points) < 2:
        return 0.0, 0.0
    try:
        hull = ConvexHull(points)
        vertices = points[hull.vertices]
        area = float(hull.volume)  # 2-D: "volume" is the area
    except QhullError:  # all points on one line: no area
        vertices, area = points, 0.0
    return area, float(pdist(vertices).max())


def distribution_features(foreground: np.ndarray, spacing_mm: float, centroids_mm: np.ndarray) -> np.ndarray:
    """BI-RADS-style distribution descriptors, order of :data:`DISTRIBUTION_NAMES`.

    - dist_n_objects: number of objects;
    - dist_extent_mm: largest distance across the cluster (between outer corners
      of object pixels, so one object has its own size and none has 0);
    - dist_hull_area_mm2: area of the convex hull of all object pixels (corners);
    - dist_density_hull_per_cm2: objects per cm2 of that hull (0 without objects);
    - dist_density_roi_per_cm2: objects per cm2 of the ROI crop;
    - dist_elongation: 1 - sqrt(l2 / l1) of the centroid covariance eigenvalues
      l1 >= l2: 0 for an isotropic cloud, 1 for centroids on a line (0 for < 2 objects);
    - dist_linearity: largest centroid distance / total length of the centroids'
      Euclidean minimum spanning tree: 1 when objects are strung along a line
      (linear), small for a clump or a branching tree (0 for < 2 objects);
    - dist_branching: fraction of spanning-tree vertices of degree >= 3 (branch
      points: segmental / ductal pattern; 0 for < 4 objects, which cannot branch);
    - dist_mst_mean_edge_mm: mean spanning-tree edge length, the typical spacing
      between neighbouring objects (0 for < 2 objects).
    """
    n = len(centroids_mm)
    roi_area_cm2 = foreground.size * (spacing_mm / 10.0) ** 2
    ys, xs = np.nonzero(foreground)
    if n == 0 or xs.size == 0:
        return np.array([n, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # pixel (x, y) covers [x, x+1) x [y, y+1): use its corners so area is never 0
    corners = np.unique(
        np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]), axis=0
    ).astype(np.float64)
    hull_area_px, extent_px = _hull_area_and_extent(corners)
    hull_area_mm2 = hull_area_px * spacing_mm**2
    density_hull = n / (hull_area_mm2 / 100.0)
    density_roi = n / roi_area_cm2
    if n < 2:
        return np.array([n, extent_px * spacing_mm, hull_area_mm2, density_hull, density_roi, 0.0, 0.0, 0.0, 0.0])
    eigen = np.sort(np.linalg.eigvalsh(np.cov(centroids_mm.T, bias=True)))[::-1]
    elongation = 0.0 if eigen[0] <= 0 else 1.0 - np.sqrt(max(eigen[1], 0.0) / eigen[0])
    distances = squareform(pdist(centroids_mm))
    # coincident centroids would be a missing edge for a sparse MST: nudge zeros
    tree = minimum_spanning_tree(np.where(distances > 0, distances, 1e-12) * (1 - np.eye(n))).toarray()
    edges = tree[tree > 0]
    tree_length = edges.sum()
    linearity = float(distances.max() / tree_length) if tree_length > 0 else 0.0
    tree_degree = np.count_nonzero(tree > 0, axis=0) + np.count_nonzero(tree > 0, axis=1)
    branching = float(np.count_nonzero(tree_degree >= 3) / n) if n >= 4 else 0.0
    return np.array(
        [
            n,
            extent_px * spacing_mm,
            hull_area_mm2,
            density_hull,
            density_roi,
            elongation,
            linearity,
            branching,
            edges.mean(),
        ]
    )
