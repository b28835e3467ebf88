"""Planted copies inflate a cross-validated estimate unless grouping keeps them on one side of every fold.

A nearest-neighbour score (distance to the nearest benign training case minus
distance to the nearest actionable one) is the model most sensitive to a copy:
a held-out case whose copy was trained on sits at distance 0 from its own
label. Features carry a weak real signal, so the honest estimate is modest.
The comparison is paired: 40 extra subjects (the same demographics and labels
as 40 originals) are either true copies (their ROIs carry the original's
features) or look-alikes with features of their own, on the same folds; the
difference is averaged over 40 draws of the features, which removes most of
the noise of one small AUC. The partition and the inner folds are the real
ones (partition_tables, folds.inner_folds); only the model is simulated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from test_partition_grouping import plant_copies, table_hashes
from test_partition_stage import CHEAP, make_corpus

from calcsig.model.metrics import roc_auc
from calcsig.partition.folds import fold_splits, inner_folds
from calcsig.partition.stage import partition_tables

N_COPIES = 40
DRAWS = 40


def roi_features(rois: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Six features per ROI: noise, with actionable ROIs shifted by 0.35 SD on every feature."""
    rng = np.random.default_rng(seed)
    shift = 0.35 * (rois["label"] == "actionable").to_numpy()[:, None]
    return pd.DataFrame(rng.normal(size=(len(rois), 6)) + shift, index=rois["roi_id"].to_numpy())


def nearest_neighbour_scores(train_x, train_y, test_x) -> np.ndarray:
    d = cdist(test_x, train_x)
    return d[:, train_y == 0].min(axis=1) - d[:, train_y == 1].min(axis=1)


def roi_cases(assignment: pd.DataFrame, rois: pd.DataFrame) -> pd.DataFrame:
    """Train and dev ROIs with label, outer fold, subject and group, as the model stage reads them."""
    rows = assignment[(assignment["level"] == "roi") & assignment["split"].isin(["train", "dev"])]
    label = rois.set_index("roi_id")["label"]
    return pd.DataFrame(
        {
            "roi_id": rows["roi_id"].to_numpy(),
            "subject_id": rows["subject_id"].to_numpy(),
            "group_id": rows["group_id"].to_numpy(),
            "outer_fold": rows["outer_fold"].astype(int).to_numpy(),
            "label": (rows["roi_id"].map(label) == "actionable").astype(int).to_numpy(),
        }
    )


def outer_cv_auc(cases: pd.DataFrame, features: pd.DataFrame) -> float:
    """Pooled out-of-fold AUC over the partition's outer folds."""
    x = features.loc[cases["roi_id"]].to_numpy()
    y = cases["label"].to_numpy()
    score = np.empty(len(cases))
    for fold in np.unique(cases["outer_fold"]):
        held = (cases["outer_fold"] == fold).to_numpy()
        score[held] = nearest_neighbour_scores(x[~held], y[~held], x[held])
    return roc_auc(y, score)


def inner_cv_auc(cases: pd.DataFrame, features: pd.DataFrame, group: str) -> float:
    """Pooled out-of-fold AUC of the inner folds inside outer fold 1's training part, grouped on `group`."""
    part = cases[cases["outer_fold"] != 1].reset_index(drop=True)
    x = features.loc[part["roi_id"]].to_numpy()
    y = part["label"].to_numpy()
    score = np.empty(len(part))
    for train, valid in fold_splits(inner_folds(part, 5, seed=0, group=group)):
        score[valid] = nearest_neighbour_scores(x[train], y[train], x[valid])
    return roc_auc(y, score)


@pytest.fixture(scope="module")
def estimates():
    """Mean rise of each estimate when the look-alikes become true copies: name -> (copies - look-alikes)."""
    corpus = make_corpus(n_subjects=120, seed=21)
    hashes = table_hashes(corpus["images"])
    originals = list(corpus["rois"]["image_id"].drop_duplicates().sample(N_COPIES, random_state=0))
    planted, planted_hashes, pairs = plant_copies(corpus, hashes, originals, "exact")
    rois = planted["rois"]
    tables = planted["images"], rois, planted["subjects"]
    grouped, _, _ = partition_tables(*tables, dict(CHEAP), 1, planted_hashes)
    ungrouped, _, _ = partition_tables(*tables, {**CHEAP, "group_duplicates": False}, 1)
    grouped_cases, ungrouped_cases = roi_cases(grouped, rois), roi_cases(ungrouped, rois)
    copied = [
        (rois.loc[rois["image_id"] == o, "roi_id"].to_numpy(), rois.loc[rois["image_id"] == c, "roi_id"].to_numpy())
        for o, c in pairs
    ]
    rises: dict[str, list[float]] = {}
    for draw in range(DRAWS):
        look_alikes = roi_features(rois, seed=draw)
        copies = look_alikes.copy()
        for source, copy in copied:
            copies.loc[copy] = look_alikes.loc[source].to_numpy()
        for name, estimate in (
            ("grouped", lambda f: outer_cv_auc(grouped_cases, f)),
            ("ungrouped", lambda f: outer_cv_auc(ungrouped_cases, f)),
            ("inner_by_group_id", lambda f: inner_cv_auc(grouped_cases, f, "group_id")),
            ("inner_by_subject_id", lambda f: inner_cv_auc(grouped_cases, f, "subject_id")),
        ):
            rises.setdefault(name, []).append(estimate(copies) - estimate(look_alikes))
    return {name: float(np.mean(values)) for name, values in rises.items()}


def test_grouped_the_planted_copies_do_not_move_the_outer_cv_estimate(estimates):
    assert abs(estimates["grouped"]) < 0.03


def test_ungrouped_the_planted_copies_inflate_the_outer_cv_estimate(estimates):
    assert estimates["ungrouped"] > 0.1


def test_inner_folds_on_group_id_are_honest_and_on_subject_id_inflated(estimates):
    assert abs(estimates["inner_by_group_id"]) < 0.03
    assert estimates["inner_by_subject_id"] > 0.1
