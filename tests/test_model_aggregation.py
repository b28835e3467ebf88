"""Bag-of-objects and mean/std transformers: output, scikit-learn conventions, fit on training ROIs only."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from calcsig.model.aggregation import BagOfObjects, MeanStd, ObjectTable
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
    X = pd.DataFrame({"roi_id": [f"r{i}" for i in range(n_rois)], "n_objects": 0.0, "hc_x": rng.normal(size=n_rois)})
    X["n_objects"] = X["roi_id"].map(objects.groupby("roi_id").size()).fillna(0).to_numpy()
    X.loc[X["roi_id"].isin(empty), "hc_x"] = np.nan
    return objects, X


def test_bag_of_objects_fractions_and_globals():
    objects, X = _tables()
    bag = BagOfObjects(objects=ObjectTable(objects), n_clusters=3, random_state=0).fit(X)
    out = bag.transform(X)
    names = bag.get_feature_names_out()
    assert out.shape == (len(X), 3 * 3 + 2) and len(names) == out.shape[1]
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
    assert "other" not in ObjectTable(objects).columns


def test_k_is_capped_by_distinct_training_objects():
    objects, X = _tables(n_rois=3, empty=())
    n_obj = len(objects)
    bag = BagOfObjects(objects=objects, n_clusters=50).fit(X)
    assert all(km.n_clusters <= n_obj for *_, km in bag.codebooks_)


def test_mean_std_matches_pandas():
    objects, X = _tables()
    out = MeanStd(objects=objects).fit(X).transform(X)
    cols = ["fg_a", "fg_b", "rp_area", "bg_c"]
    g = objects.groupby("roi_id")[cols]
    mean = g.mean().reindex(X["roi_id"])
    std = g.std(ddof=0).reindex(X["roi_id"])
    np.testing.assert_allclose(out[:, :4], mean.to_numpy(), equal_nan=True)
    np.testing.assert_allclose(out[:, 4:8], std.to_numpy(), equal_nan=True, atol=1e-12)
    assert np.isnan(out[3, :8]).all()  # r3 has no objects


def test_transformers_follow_sklearn_conventions():
    objects, X = _tables()
    table = ObjectTable(objects)
    bag = BagOfObjects(objects=table, n_clusters=4)
    assert bag.get_params()["n_clusters"] == 4
    twin = clone(bag)
    assert twin.objects is table  # the table is shared, not copied, by clone
    assert twin.get_params()["n_clusters"] == 4 and not hasattr(twin, "codebooks_")
    with pytest.raises(TypeError):
        bag.fit(X.drop(columns="roi_id"))
    fitted = bag.fit(X)
    with pytest.raises(ValueError):
        fitted.transform(X.drop(columns="hc_x"))


def test_fit_sees_only_the_rois_it_is_given():
    objects, X = _tables(n_rois=16)
    train = X.iloc[:8]
    a = BagOfObjects(objects=objects, n_clusters=3, random_state=1).fit(train)
    # objects of ROIs outside the training set changed beyond recognition: same codebooks
    shifted = objects.copy()
    other = ~shifted["roi_id"].isin(train["roi_id"])
    shifted.loc[other, ["fg_a", "fg_b", "rp_area", "bg_c"]] += 1000.0
    b = BagOfObjects(objects=shifted, n_clusters=3, random_state=1).fit(train)
    for (_, _, ma, sa, ka), (_, _, mb, sb, kb) in zip(a.codebooks_, b.codebooks_):
        np.testing.assert_allclose(sa.mean_, sb.mean_)
        np.testing.assert_allclose(ma, mb)
        np.testing.assert_allclose(ka.cluster_centers_, kb.cluster_centers_)
    np.testing.assert_array_equal(a.fitted_roi_ids_, np.sort(train["roi_id"].to_numpy()))


def test_pipeline_in_grid_search_over_k():
    objects, X = _tables(n_rois=40, empty=())
    y = np.tile([0, 1], 20)
    groups = np.arange(40) // 2
    pipe = build_pipeline(ObjectTable(objects), "bag_of_objects", n_clusters=3, lightgbm_params={"n_estimators": 5})
    search = GridSearchCV(pipe, {"aggregate__n_clusters": [2, 3]}, cv=GroupKFold(3), scoring="roc_auc")
    search.fit(X, y, groups=groups)
    assert search.best_params_["aggregate__n_clusters"] in (2, 3)
    assert search.predict_proba(X).shape == (40, 2)
