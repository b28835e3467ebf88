"""Where each image sits at every level the audit checks: split, outer fold, and inner folds.

Levels and their sides:
- ``split``: the image's split (its image row in assignment.tsv, else its
  subject row);
- ``outer_fold``: the image's outer fold, for images in train or dev;
- ``inner_fold:<k>``: for outer fold k (1..K) the inner fold of the image's
  ROIs within that fold's training part (train and dev ROIs outside fold k),
  and for ``inner_fold:eval`` within all train and dev ROIs (the final model's
  inner search), as folds.inner_folds makes them: grouped on the assignment's
  group_id, stratified on the ROI label (1 actionable, 0 benign), with the
  model's number of inner folds and seed. Images without ROIs take no part in
  the models and have no side. An image whose ROIs are in several inner folds
  gets them all, joined by commas.
A subject straddles a level when its images (or ROIs) have more than one side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .folds import InnerFoldError, inner_folds

TRAINING = ("train", "dev")
SPLIT = "split"
OUTER_FOLD = "outer_fold"
INNER_FOLD = "inner_fold"


@dataclass(frozen=True)
class Level:
    """One level of the audit: the side of every placed image, the subjects on several sides.

    name: ``split``, ``outer_fold`` or ``inner_fold:<k>``; side_of_image:
    image_id -> side (text), for the images the level places; subject_sides:
    subject_id -> its sides, for subjects on more than one; checked: False when
    the level could not be built (reason says why); settings: the level's
    parameters (outer fold, number of folds, seed).
    """

    name: str
    side_of_image: pd.Series
    subject_sides: dict[str, list[str]] = field(default_factory=dict)
    checked: bool = True
    reason: str | None = None
    settings: dict = field(default_factory=dict)


def image_splits(images: pd.DataFrame, assignment: pd.DataFrame) -> pd.Series:
    """image_id -> split from the assignment's image rows, else from the subject row."""
    return _image_values(images, assignment, "split", fall_back_when_empty=True)


def image_outer_folds(images: pd.DataFrame, assignment: pd.DataFrame) -> pd.Series:
    """image_id -> outer fold (as text) for images in train or dev; other images are left out."""
    folds = _image_values(images, assignment, "outer_fold", fall_back_when_empty=False)
    in_training = image_splits(images, assignment).isin(TRAINING)
    folds = folds[in_training & folds.notna()]
    return folds.map(lambda f: str(int(f))).rename("outer_fold")


def _image_values(images: pd.DataFrame, assignment: pd.DataFrame, column: str, fall_back_when_empty: bool) -> pd.Series:
    """An image-row value, else the subject row's: when the image has no row (or, optionally, an empty cell)."""
    image_rows = assignment[assignment["level"] == "image"].drop_duplicates("image_id").set_index("image_id")[column]
    subject_rows = (
        assignment[assignment["level"] == "subject"].drop_duplicates("subject_id").set_index("subject_id")[column]
    )
    by_subject = images["subject_id"].map(subject_rows)
    own = images["image_id"].map(image_rows)
    use_own = own.notna() if fall_back_when_empty else images["image_id"].isin(image_rows.index)
    values = own.where(use_own, by_subject)
    return pd.Series(values.to_numpy(), index=images["image_id"].to_numpy(), name=column)


def _subject_sides(side_of: pd.Series, subject_of: pd.Series) -> dict[str, list[str]]:
    frame = pd.DataFrame({"side": side_of.to_numpy(), "subject": subject_of.to_numpy()})
    sides = frame.groupby("subject", sort=True)["side"].agg(lambda s: sorted(set(s)))
    return {str(k): v for k, v in sides.items() if len(v) > 1}


def split_level(images: pd.DataFrame, assignment: pd.DataFrame) -> Level:
    """The split level: every image's split."""
    sides = image_splits(images, assignment)
    sides = sides[sides.notna()]
    subject_of = images.set_index("image_id")["subject_id"]
    return Level(SPLIT, sides, _subject_sides(sides, subject_of.loc[sides.index]))


def outer_fold_level(images: pd.DataFrame, assignment: pd.DataFrame) -> Level:
    """The outer-fold level: the fold of every train and dev image (subjects on several folds included)."""
    sides = image_outer_folds(images, assignment)
    subject_of = images.set_index("image_id")["subject_id"]
    return Level(OUTER_FOLD, sides, _subject_sides(sides, subject_of.loc[sides.index]))


def training_cases(assignment: pd.DataFrame, rois: pd.DataFrame, outer_fold: str) -> pd.DataFrame:
    """The ROI cases of one outer fold's training part, as the model stage selects them.

    outer_fold: "1".."K" (train and dev ROIs outside that fold) or "eval" (all
    train and dev ROIs: the final model). Columns roi_id, image_id, subject_id,
    group_id and label (1 actionable, 0 benign); ROIs without a label in rois
    are left out.
    """
    roi_rows = assignment[(assignment["level"] == "roi") & assignment["split"].isin(TRAINING)]
    if outer_fold != "eval":
        folds = roi_rows["outer_fold"].map(lambda f: "" if pd.isna(f) else str(int(f)))
        roi_rows = roi_rows[folds != str(outer_fold)]
    group = roi_rows["group_id"] if "group_id" in roi_rows.columns else roi_rows["subject_id"]
    labels = rois.drop_duplicates("roi_id").set_index("roi_id")["label"]
    cases = pd.DataFrame(
        {
            "roi_id": roi_rows["roi_id"].to_numpy(),
            "image_id": roi_rows["image_id"].to_numpy(),
            "subject_id": roi_rows["subject_id"].to_numpy(),
            "group_id": group.where(group.notna(), roi_rows["subject_id"]).to_numpy(),
            "label": roi_rows["roi_id"].map(labels).to_numpy(),
        }
    )
    cases = cases[cases["label"].notna()].reset_index(drop=True)
    cases["label"] = (cases["label"] == "actionable").astype(int)
    return cases


def inner_fold_level(assignment: pd.DataFrame, rois: pd.DataFrame, outer_fold: str, n_folds: int, seed: int) -> Level:
    """The inner folds inside one outer fold's training part (see the module docstring)."""
    name = f"{INNER_FOLD}:{outer_fold}"
    settings = {"outer_fold": str(outer_fold), "inner_folds": int(n_folds), "seed": int(seed)}
    cases = training_cases(assignment, rois, outer_fold)
    try:
        folds = inner_folds(cases, n_folds, seed)
    except InnerFoldError as error:
        return Level(name, pd.Series(dtype=object), checked=False, reason=str(error), settings=settings)
    settings["folds_made"] = int(folds.max())
    cases = cases.assign(inner_fold=folds.astype(str))
    sides = cases.groupby("image_id", sort=True)["inner_fold"].agg(lambda s: ",".join(sorted(set(s))))
    by_subject = cases.groupby("subject_id", sort=True)["inner_fold"].agg(lambda s: sorted(set(s)))
    straddling = {str(k): v for k, v in by_subject.items() if len(v) > 1}
    return Level(name, sides.rename("inner_fold"), straddling, settings=settings)


def audit_levels(
    images: pd.DataFrame,
    rois: pd.DataFrame,
    assignment: pd.DataFrame,
    *,
    inner_folds: int | None = None,
    seed: int | None = None,
) -> list[Level]:
    """The split level, the outer-fold level and, when inner_folds and seed are given, one inner level per
    outer fold and one for the final model (inner_fold:eval)."""
    levels = [split_level(images, assignment), outer_fold_level(images, assignment)]
    if inner_folds is None or seed is None:
        return levels
    training = assignment[assignment["split"].isin(TRAINING)]
    outer = sorted({str(int(f)) for f in training["outer_fold"].dropna()}, key=lambda f: (len(f), f))
    for fold in [*outer, "eval"]:
        levels.append(inner_fold_level(assignment, rois, fold, inner_folds, seed))
    return levels
