"""Calcification truth as the corpus tables give it, and the split of each image.

Pixel truth files are read by `calcsig.truthlabels.read_truth_labels`.
"""

from __future__ import annotations

import pandas as pd


def circles_by_image(rois: pd.DataFrame) -> dict[str, list[tuple[float, float, float]]]:
    """Calcification circles (x, y, radius px) per image from rois.tsv."""
    out: dict[str, list] = {}
    if rois.empty:
        return out
    abn = rois.get("abnormality", pd.Series("", index=rois.index)).fillna("").astype(str).str.lower()
    sel = (rois["shape"] == "circle") & abn.str.contains("calc")
    for _, row in rois[sel].iterrows():
        out.setdefault(str(row["image_id"]), []).append(
            (float(row["center_x"]), float(row["center_y"]), float(row["radius_px"]))
        )
    return out


def image_splits(assignment_tsv) -> pd.Series:
    """Split of each image (image rows of assignment.tsv), indexed by image_id."""
    assignment = pd.read_csv(assignment_tsv, sep="\t", dtype=str, keep_default_na=False)
    images = assignment[assignment["level"] == "image"]
    return images.set_index("image_id")["split"]


def truth_kinds(images: pd.DataFrame, rois: pd.DataFrame) -> pd.DataFrame:
    """Per image (indexed like `images`): `truth_path` (pixel truth or None), `circles`
    (calcification circles or None) and `normal` (a film of a source with circle
    truth that has no ROI at all: every candidate on it is a false positive)."""
    circles = circles_by_image(rois)
    ids = images["image_id"].astype(str)
    circle_sources = set(images.loc[ids.isin(circles), "source"].astype(str))
    with_roi = set(rois["image_id"].astype(str))
    truth = images["truth_mask_path"] if "truth_mask_path" in images else pd.Series(None, index=images.index)
    return pd.DataFrame(
        {
            # object dtype: pandas would store a missing path among strings as NaN, which reads as a path
            "truth_path": pd.Series(
                [t if isinstance(t, str) and t else None for t in truth], index=images.index, dtype=object
            ),
            "circles": [circles.get(i) for i in ids],
            "normal": images["source"].astype(str).isin(circle_sources).to_numpy() & ~ids.isin(with_roi).to_numpy(),
        },
        index=images.index,
    )


def normal_films(images: pd.DataFrame, rois: pd.DataFrame) -> pd.Series:
    """Per image (indexed like `images`): a normal film, known to hold no finding.

    A pixel image without any ROI row, of a source that annotates findings (has
    at least one ROI row), so that "no ROI" means "nothing found" rather than
    "never read". mini-MIAS NORM films are normal; an unlabelled archive is not.
    """
    ids = images["image_id"].astype(str)
    with_roi = set(rois["image_id"].astype(str))
    annotating = set(images.loc[ids.isin(with_roi), "source"].astype(str))
    has_pixels = images["has_pixels"].astype(str).str.lower().isin(["true", "1"])
    return pd.Series(
        has_pixels.to_numpy()
        & images["source"].astype(str).isin(annotating).to_numpy()
        & ~ids.isin(with_roi).to_numpy(),
        index=images.index,
    )


def image_folds(assignment_tsv) -> pd.DataFrame:
    """Split and outer fold (string, empty outside train/dev) of each image, indexed by image_id."""
    assignment = pd.read_csv(assignment_tsv, sep="\t", dtype=str, keep_default_na=False)
    images = assignment[assignment["level"] == "image"]
    return images.set_index("image_id")[["split", "outer_fold"]]
