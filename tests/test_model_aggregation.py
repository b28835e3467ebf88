"""Bag-of-objects and mean/std transformers: output, scikit-learn conventions, fit on training ROIs only."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from calcsig.model.aggregation import BagOfObjects, MeanStd, objects_by_roi
from calcsig.model.pipeline import build_pipeline


def _tables(n_rois=12, seed=0, empty=("r3",)):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_rois):
        rid = f"r{i}"
        if rid in empty:
            continue
        for o in range(int(rng.integers(2, 7))):
            rows.append(
                {
                    "roi_id": rid,
                    "object_id": o + 1,
                    "fg_a": rng.normal(),
                    "fg_b": rng.normal(),
                    "rp_area": rng.gamma(2.0),
                    "bg_c": rng.normal(),
                    "other": 7.0,
                }
            )
    objects = pd.DataFrame(rows)
    objects.loc[0, "fg_b"] = np.nan  # a missing object feature
    ids = pd.Series([f"r{i}" for i in range(n_rois)])
    X = pd.DataFrame({"n_objects": ids.map(objects.groupby("roi_id").size()).fillna(0).to_numpy()})
    X["hc_x"] = rng.normal(size=n_rois)
    X.loc[ids.isin(empty).to_numpy(), "hc_x"] = np.nan
    X["objects"] = objects_by_roi(objects, ids)
    return objects, X


def test_bag_of_objects_fractions_and_globals():
    objects, X = _tables()
    bag = BagOfObjects(n_clusters=3, random_state=0).fit(X)
    out = bag.transform(X)
    names = bag.get_feature_names_out()
    assert out.shape == (len(X), 3 * 3 + 2) and len(names) == out.shape[1]
    assert list(names[-2:]) == ["n_objects", "hc_x"]
    for fam in ("fg_", "rp_", "bg_"):
        cols = [i for i, n in enumerate(names) if n.startswith(f"bag_{fam}")]
        sums = out[:, cols].sum(axis=1)
        has = X["n_objects"].to_numpy() > 0
        np.testing.assert_allclose(sums[has], 1.0)
        np.testing.assert_allclose(sums[~has], 0.0)  # a ROI without objects: all-zero histogram
    np.testing.assert_array_equal(out[:, -1], X["hc_x"].to_numpy())  # globals passed through, NaN kept
    # the histogram of a ROI is the fraction of its objects per cluster
    r0 = objects[objects["roi_id"] == "r0"]
    assert np.all(out[0, :3] * len(r0) == np.round(out[0, :3] * len(r0)))
    assert "other" not in X["objects"].iloc[0].columns  # only the local feature families travel


def test_k_is_capped_by_distinct_training_objects():
    objects, X = _tables(n_rois=3, empty=())
    n_obj = len(objects)
    bag = BagOfObjects(n_clusters=50).fit(X)
    assert all(km.n_clusters <= n_obj for *_, km in bag.codebooks_)


def test_mean_std_matches_pandas():
    objects, X = _tables()
    out = MeanStd().fit(X).transform(X)
    cols = ["fg_a", "fg_b", "rp_area", "bg_c"]
    g = objects.groupby("roi_id")[cols]
    ids = [f"r{i}" for i in range(len(X))]
    mean = g.mean().reindex(ids)
    std = g.std(ddof=0).reindex(ids)
    np.testing.assert_allclose(out[:, :4], mean.to_numpy(), equal_nan=True)
    np.testing.assert_allclose(out[:, 4:8], std.to_numpy(), equal_nan=True, atol=1e-12)
    assert np.isnan(out[3, :8]).all()  # r3 has no objects


def test_transformers_follow_sklearn_conventions():
    objects, X = _tables()
    bag = BagOfObjects(n_clusters=4)
    assert bag.get_params() == {"n_clusters": 4, "families": ("fg_", "rp_", "bg_"), "n_init": 3, "random_state": 0}
    twin = clone(bag.fit(X))
    assert twin.get_params()["n_clusters"] == 4 and not hasattr(twin, "codebooks_")
    with pytest.raises(ValueError):
        bag.transform(X.drop(columns="hc_x"))  # different global features than in fit


def test_fit_sees_only_the_rois_it_is_given():
    objects, X = _tables(n_rois=16)
    train = X.iloc[:8]
    a = BagOfObjects(n_clusters=3, random_state=1).fit(train)
    # objects of ROIs outside the training set changed beyond recognition: same codebooks
    shifted = objects.copy()
    other = ~shifted["roi_id"].isin([f"r{i}" for i in range(8)])
    shifted.loc[other, ["fg_a", "fg_b", "rp_area", "bg_c"]] += 1000.0
    X_shifted = X.assign(objects=objects_by_roi(shifted, [f"r{i}" for i in range(16)]))
    b = BagOfObjects(n_clusters=3, random_state=1).fit(X_shifted.iloc[:8])
    for (_, _, ma, sa, ka), (_, _, mb, sb, kb) in zip(a.codebooks_, b.codebooks_):
        np.testing.assert_allclose(sa.mean_, sb.mean_)
        np.testing.assert_allclose(ma, mb)
        np.testing.assert_allclose(ka.cluster_centers_, kb.cluster_centers_)
    assert a.n_objects_fit_ == sum(len(f) for f in train["objects"])


def test_pipeline_in_grid_search_over_k():
    objects, X = _tables(n_rois=40, empty=())
    y = np.tile([0, 1], 20)
    groups = np.arange(40) // 2
    pipe = build_pipeline("bag_of_objects", n_clusters=3, lightgbm_params={"n_estimators": 5})
    search = GridSearchCV(pipe, {"aggregate__n_clusters": [2, 3]}, cv=GroupKFold(3), scoring="roc_auc")
    search.fit(X, y, groups=groups)
    assert search.best_params_["aggregate__n_clusters"] in (2, 3)
    assert search.predict_proba(X).shape == (40, 2)
