"""Multiscale graph topology on hand-made layouts, and against networkx."""

import networkx as nx
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from calcsig.features.topology import GRAPH_FEATURES, graph_features, multiscale_topology, topology_names


def _distances(points):
    """Single-pixel objects: the minimum distance is the centre distance."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    return cdist(p, p)


def _at(features, k):
    return dict(zip(GRAPH_FEATURES, features[k * 8 : (k + 1) * 8]))


def test_line_of_evenly_spaced_dots():
    d = _distances([(0, 10 * i) for i in range(5)])  # spacing 10 px
    f = multiscale_topology(d, [2, 5, 10, 100])
    none, path, second, complete = (_at(f, k) for k in range(4))
    assert none == dict(
        n_components=5,
        mean_degree=0,
        max_degree=0,
        mean_eccentricity=0,
        diameter=0,
        mean_clustering=0,
        giant_component_ratio=0.2,
        isolated_fraction=1,
    )
    # 2 r = 10 reaches the neighbours exactly (<=): a path
    assert path == pytest.approx(
        dict(
            n_components=1,
            mean_degree=1.6,
            max_degree=2,
            mean_eccentricity=3.2,
            diameter=4,
            mean_clustering=0,
            giant_component_ratio=1,
            isolated_fraction=0,
        )
    )
    # 2 r = 20: second neighbours too
    assert second == pytest.approx(
        dict(
            n_components=1,
            mean_degree=2.8,
            max_degree=4,
            mean_eccentricity=1.8,
            diameter=2,
            mean_clustering=(1 + 2 / 3 + 0.5 + 2 / 3 + 1) / 5,
            giant_component_ratio=1,
            isolated_fraction=0,
        )
    )
    assert complete == pytest.approx(
        dict(
            n_components=1,
            mean_degree=4,
            max_degree=4,
            mean_eccentricity=1,
            diameter=1,
            mean_clustering=1,
            giant_component_ratio=1,
            isolated_fraction=0,
        )
    )


def test_two_far_clusters():
    a = [(0, 0), (0, 5), (0, 10)]
    b = [(500, 0), (500, 5), (500, 10), (505, 5)]
    f = multiscale_topology(_distances(a + b), [2.5, 300])
    near, far = _at(f, 0), _at(f, 1)
    assert near["n_components"] == 2
    assert near["giant_component_ratio"] == pytest.approx(4 / 7)
    assert near["diameter"] == 2 and near["max_degree"] == 3
    assert near["isolated_fraction"] == 0
    assert far["n_components"] == 1 and far["giant_component_ratio"] == 1 and far["diameter"] == 1


def test_single_dot_and_no_dot_are_defined_at_every_scale():
    one = multiscale_topology(np.zeros((1, 1)), [1, 2, 4])
    assert one.tolist() == [1, 0, 0, 0, 0, 0, 1, 1] * 3
    none = multiscale_topology(np.zeros((0, 0)), [1, 2])
    assert none.tolist() == [0.0] * 16
    assert len(topology_names(3)) == 24 and topology_names(1)[0] == "topo_s1_n_components"


def test_objects_absent_from_the_crop_have_infinite_distance_and_stay_isolated():
    d = np.array([[0, 1, np.inf], [1, 0, np.inf], [np.inf, np.inf, 0]])
    f = _at(multiscale_topology(d, [1e6]), 0)
    assert f["n_components"] == 2 and f["isolated_fraction"] == pytest.approx(1 / 3)


def test_rejects_non_square_distances():
    with pytest.raises(ValueError, match="square"):
        multiscale_topology(np.zeros((2, 3)), [1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_networkx_on_random_layouts(seed):
    rng = np.random.default_rng(seed)
    d = _distances(rng.uniform(0, 200, (40, 2)))
    for r in (3, 8, 15, 40):
        a = d <= 2 * r
        np.fill_diagonal(a, False)
        g = nx.from_numpy_array(a.astype(int))
        components = [g.subgraph(c) for c in nx.connected_components(g)]
        eccentricity = {}
        for c in components:
            eccentricity.update(nx.eccentricity(c))
        degrees = np.array([deg for _, deg in g.degree()])
        expected = [
            nx.number_connected_components(g),
            degrees.mean(),
            degrees.max(),
            np.mean(list(eccentricity.values())),
            max(nx.diameter(c) for c in components),
            nx.average_clustering(g),
            max(len(c) for c in components) / 40,
            np.mean(degrees == 0),
        ]
        np.testing.assert_allclose(graph_features(a), expected, rtol=1e-12, atol=1e-12)
