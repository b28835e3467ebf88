"""Multiscale graph topology of a calcification cluster (after Chen et al. 2015, IEEE TBME).

At dilation radius r every object is a node, and two objects are joined when
their masks dilated by r overlap, i.e. when the minimum distance between their
pixel sets is at most 2 r (the masks stage stores that distance matrix, so no
dilation stack is needed). Eight features describe each graph.

The graph measures are computed from the adjacency matrix with scipy (breadth-
first shortest paths in C, triangles from A^3) rather than networkx's
pure-Python loops: 8 dense graphs of 200 nodes would take seconds in networkx.
tests/test_features_topology.py checks every feature against networkx
(``number_connected_components``, ``degree``, ``eccentricity`` per component,
``diameter``, ``average_clustering``) on random layouts.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, shortest_path

GRAPH_FEATURES = (
    "n_components",
    "mean_degree",
    "max_degree",
    "mean_eccentricity",
    "diameter",
    "mean_clustering",
    "giant_component_ratio",
    "isolated_fraction",
)


def topology_names(n_scales: int) -> list[str]:
    """Column names ``topo_s{k}_{feature}``, k = 1..n_scales (scale order of the masks file)."""
    return [f"topo_s{k}_{f}" for k in range(1, n_scales + 1) for f in GRAPH_FEATURES]


def graph_features(adjacency: np.ndarray) -> np.ndarray:
    """The 8 graph features of an undirected graph given as a bool adjacency matrix.

    Order of :data:`GRAPH_FEATURES`:
    - n_components: number of connected components;
    - mean_degree, max_degree: vertex degree;
    - mean_eccentricity: eccentricity of each vertex within its own connected
      component (longest shortest path, in edges), averaged over all vertices;
      an isolated vertex has eccentricity 0;
    - diameter: largest eccentricity, i.e. the largest component diameter;
    - mean_clustering: average local clustering coefficient (triangles through a
      vertex / possible ones; 0 for degree < 2, as networkx);
    - giant_component_ratio: vertices in the largest component / all vertices;
    - isolated_fraction: vertices of degree 0 / all vertices.

    Degenerate graphs are defined, never NaN: no vertex gives all zeros; one
    vertex gives 1 component, degrees 0, eccentricity and diameter 0, clustering
    0, giant-component ratio 1, isolated fraction 1.
    """
    a = np.asarray(adjacency, dtype=bool).copy()
    np.fill_diagonal(a, False)
    n = a.shape[0]
    if n == 0:
        return np.zeros(len(GRAPH_FEATURES))
    degree = a.sum(axis=1)
    sparse = csr_matrix(a)
    n_components, component = connected_components(sparse, directed=False)
    hops = shortest_path(sparse, method="D", directed=False, unweighted=True)
    hops[np.isinf(hops)] = 0  # other components do not count towards eccentricity
    eccentricity = hops.max(axis=1)
    af = a.astype(np.float64)
    triangles = ((af @ af) * af).sum(axis=1) / 2.0  # diag(A^3) / 2
    possible = degree * (degree - 1) / 2.0
    clustering = np.divide(triangles, possible, out=np.zeros(n), where=possible > 0)
    sizes = np.bincount(component)
    return np.array(
        [
            n_components,
            degree.mean(),
            degree.max(),
            eccentricity.mean(),
            eccentricity.max(),
            clustering.mean(),
            sizes.max() / n,
            np.count_nonzero(degree == 0) / n,
        ],
        dtype=np.float64,
    )


def multiscale_topology(min_distance_px: np.ndarray, radii_px) -> np.ndarray:
    """Graph features at every dilation radius, flattened in the order of :func:`topology_names`.

    Parameters
    ----------
    min_distance_px : (n, n) minimum Euclidean distance between the objects' pixel
        sets, in pixels (masks stage).
    radii_px : dilation radii in pixels; objects i and j are adjacent at radius r
        iff ``min_distance_px[i, j] <= 2 r``.
    """
    d = np.asarray(min_distance_px, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"min_distance_px must be a square matrix, got shape {d.shape}")
    return np.concatenate([graph_features(d <= 2.0 * float(r)) for r in radii_px] or [np.zeros(0)])
