"""Evaluation levels above the ROI: image (max over its ROIs) and breast (fusion of its views).

Every level carries both operating points' calls: ``predicted`` (the exact
target) and ``predicted_margin`` (the margin point, see
:mod:`calcsig.model.thresholds`), each made at its fold's threshold.

Image: label, probability and each call are the maximum over the image's
ROIs (an image is positive when any of its ROIs is).

Breast (subject + laterality): the published CC + MLO fusion (views that agree
keep their call; views that disagree take the malignant call when the
malignant view's probability crosses the threshold) applied with the
operating point's threshold, not a fixed 0.5. A view called malignant has
crossed that threshold already, so the rule is: a breast is positive when any
of its views is, i.e. when its highest view probability reaches the
operating point's threshold; its probability is that highest view
probability. A breast with one view is that view. So, at the fold's
threshold, a breast with an actionable ROI that is called is called too:
breast-level sensitivity follows the ROI-level one and never falls below it.
"""

from __future__ import annotations

import pandas as pd

CALLS = ("predicted", "predicted_margin")
THRESHOLDS = ("threshold", "threshold_margin")
KEYS = ("model", "fold", "subject_id", "group_id")


def _present(frame: pd.DataFrame, names) -> list[str]:
    return [c for c in names if c in frame.columns]


def image_level(pred: pd.DataFrame) -> pd.DataFrame:
    """One row per image (and model and fold): label, probability and each call = max over its ROIs."""
    keys = [*_present(pred, KEYS), "image_id"]
    agg = {"label": ("label", "max"), "probability": ("probability", "max")}
    agg.update({c: (c, "max") for c in _present(pred, CALLS)})
    agg.update({c: (c, "first") for c in _present(pred, THRESHOLDS)})
    return pred.groupby(keys, sort=True, dropna=False).agg(**agg).reset_index()


def breast_level(image_pred: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """One row per breast (subject + laterality): label = max over its images, views fused as in the module docstring.

    ``breast_id`` is ``subject_id:laterality`` (``unknown`` when images.tsv
    does not give the side).
    """
    meta = images[["image_id", "laterality"]].copy()
    meta["image_id"] = meta["image_id"].astype(str)
    df = image_pred.merge(meta, on="image_id", how="left")
    side = df["laterality"].astype(object).where(df["laterality"].notna(), "").astype(str)
    df["breast_id"] = df["subject_id"].astype(str) + ":" + side.replace("", "unknown")
    keys = [*_present(df, KEYS), "breast_id"]
    agg = {"label": ("label", "max"), "probability": ("probability", "max")}
    agg.update({c: (c, "max") for c in _present(df, CALLS)})
    agg.update({c: (c, "first") for c in _present(df, THRESHOLDS)})
    return df.groupby(keys, sort=True, dropna=False).agg(**agg).reset_index()
