"""Inner folds (partition.folds.inner_folds): the contract the model stage and the audit share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calcsig.model.multiclass import fine_class_splits
from calcsig.model.nested_cv import inner_splits
from calcsig.partition.folds import InnerFoldError, fold_splits, inner_folds


def cases(n_groups: int = 40, seed: int = 0) -> pd.DataFrame:
    """ROI cases: 1 to 3 ROIs per group, about a third of the groups actionable, a few mixed."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        label = int(rng.random() < 0.35)
        for r in range(int(rng.integers(1, 4))):
            mixed = label if rng.random() > 0.1 else 1 - label
            rows.append({"roi_id": f"G{g:02d}_{r}", "group_id": f"G{g:02d}", "label": mixed})
    return pd.DataFrame(rows)


def test_every_group_is_in_one_fold_and_labels_are_spread():
    frame = cases()
    folds = inner_folds(frame, 5, seed=3)
    assert folds.name == "inner_fold" and folds.index.equals(frame.index)
    assert sorted(folds.unique()) == [1, 2, 3, 4, 5]
    assert (frame.assign(f=folds).groupby("group_id")["f"].nunique() == 1).all()
    positives = frame.assign(f=folds).groupby("f")["label"].mean()
    assert positives.max() - positives.min() < 0.25
    assert positives.min() > 0


def test_fold_of_a_row_depends_neither_on_row_order_nor_on_the_index():
    frame = cases(seed=1)
    folds = inner_folds(frame, 4, seed=7)
    shuffled = frame.sample(frac=1.0, random_state=2).set_axis(np.arange(len(frame)) + 1000)
    again = inner_folds(shuffled, 4, seed=7)
    by_roi = dict(zip(frame["roi_id"], folds))
    assert [by_roi[r] for r in shuffled["roi_id"]] == again.tolist()
    assert not inner_folds(frame, 4, seed=8).equals(folds)


def test_same_folds_as_the_model_stage_when_groups_are_subjects():
    """The model's inner_splits(y, subject_id, n, seed) today: adopting inner_folds on group_id moves nothing
    for a subject that is its own group."""
    frame = cases(seed=4).rename(columns={"group_id": "subject_id"})
    frame["group_id"] = frame["subject_id"]
    ours = fold_splits(inner_folds(frame, 5, seed=11))
    theirs = inner_splits(frame["label"].to_numpy(), frame["subject_id"].to_numpy(), 5, 11)
    assert len(ours) == len(theirs)
    for (tr, va), (tr2, va2) in zip(ours, theirs):
        assert np.array_equal(np.sort(va), np.sort(va2)) and np.array_equal(np.sort(tr), np.sort(tr2))


def test_fewer_folds_when_a_class_has_few_groups_and_an_error_below_two():
    frame = cases(n_groups=30, seed=2)
    positive_groups = frame.loc[frame["label"] == 1, "group_id"].unique()
    keep = set(positive_groups[:3]) | set(frame.loc[frame["label"] == 0, "group_id"])
    few = frame[frame["group_id"].isin(keep) & ((frame["label"] == 0) | frame["group_id"].isin(positive_groups[:3]))]
    assert inner_folds(few, 5, seed=0).max() == 3
    lonely = few[(few["label"] == 0) | (few["group_id"] == positive_groups[0])]
    with pytest.raises(InnerFoldError, match="groups per label"):
        inner_folds(lonely, 5, seed=0)
    with pytest.raises(InnerFoldError, match="group_id"):
        inner_folds(frame.drop(columns="group_id"), 5, seed=0)


def test_stratify_on_another_column_for_the_multiclass_model():
    frame = cases(seed=5)
    frame["fine_class"] = np.where(frame["label"] == 1, np.where(frame.index % 2 == 0, "dcis", "invasive"), "benign")
    folds = inner_folds(frame, 3, seed=1, stratify="fine_class")
    assert (frame.assign(f=folds).groupby("group_id")["f"].nunique() == 1).all()
    assert frame.assign(f=folds).groupby("f")["fine_class"].nunique().min() == 3


def test_same_folds_as_the_multiclass_model_when_groups_are_subjects():
    frame = cases(seed=6)
    frame["fine_class"] = np.where(frame["label"] == 1, np.where(frame.index % 3 == 0, "dcis", "invasive"), "benign")
    ours = fold_splits(inner_folds(frame, 3, seed=2, stratify="fine_class"))
    theirs = fine_class_splits(frame["fine_class"].to_numpy(), frame["group_id"].to_numpy(), 3, 2)
    assert [np.sort(va).tolist() for _, va in ours] == [np.sort(va).tolist() for _, va in theirs]


def test_fold_splits_are_positions_that_cover_every_row_once():
    folds = pd.Series([2, 1, 2, 3, 1], index=[10, 11, 12, 13, 14])
    splits = fold_splits(folds)
    assert [va.tolist() for _, va in splits] == [[1, 4], [0, 2], [3]]
    assert all(sorted(np.concatenate([tr, va]).tolist()) == [0, 1, 2, 3, 4] for tr, va in splits)
