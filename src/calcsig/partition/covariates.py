"""One row per subject: the label stratum and the covariates that splits are balanced on.

Choices (documented here because the balance report and the optimiser rely on them):
- A subject's binary stratum is ``actionable`` when any of its ROIs is actionable,
  ``benign`` when it has ROIs but none actionable, ``normal`` when it has none.
  With ``stratify_by = fine_class`` the stratum is the most frequent fine class
  among the ROIs carrying the subject's binary label (falling back to the binary
  label when those ROIs have no fine class); normal subjects stay ``normal``.
- A categorical covariate is read from subjects.tsv when that column has a value
  for the subject, else as the most frequent non-missing value over the subject's
  images (ties broken alphabetically). Numeric covariates likewise, with the mean
  over images. ``age_band`` is derived from age with the configured bin edges,
  left-closed intervals ``[lo, hi)``.
- Morphology fields (rois columns such as calc_type, calc_distribution,
  fine_class) are aggregated per subject as the most frequent non-missing value;
  a subject without ROIs gets the level ``no_roi``.
- A missing value is its own level, ``missing``; the number of subjects with a
  missing value is always reported. Levels (``missing`` included) held by fewer
  than ``min_level_subjects`` subjects are pooled into ``other`` (with the
  smallest remaining level when the pool is still that rare): a rare level
  cannot be balanced. With 18 dev subjects of 120, one subject is 5.6
  percentage points of dev; a level of m subjects can reach |SMD| <= 0.1 between
  train (72), dev (18) and eval (30) only for m >= 11 (and m = 7, 8), hence the
  default of 12. The pooled levels are listed in balance.json.
- A covariate that is absent from the tables, or missing for every subject, is
  skipped and listed as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MISSING = "missing"
OTHER = "other"
NO_ROI = "no_roi"
NORMAL = "normal"


@dataclass(frozen=True)
class SubjectCovariates:
    """The per-subject table and what it holds.

    `frame` is indexed by subject_id with a `stratum` column, one string column
    per categorical covariate and one float column per numeric covariate.
    `missing_counts` maps each used covariate to its number of subjects with a
    missing value; `pooled` maps covariates to the levels pooled into ``other``.
    """

    frame: pd.DataFrame
    categorical: list[str]
    numeric: list[str]
    skipped: list[str] = field(default_factory=list)
    missing_counts: dict[str, int] = field(default_factory=dict)
    pooled: dict[str, list[str]] = field(default_factory=dict)


def _mode(values: pd.Series) -> object:
    """Most frequent non-missing value; ties broken by sorted order; None when all missing."""
    present = values.dropna()
    if present.empty:
        return None
    counts = present.astype(str).value_counts()
    best = counts.max()
    return sorted(counts.index[counts == best])[0]


def _subject_ids(images: pd.DataFrame, subjects: pd.DataFrame | None) -> pd.Index:
    ids = list(subjects["subject_id"]) if subjects is not None else []
    ids += [s for s in images["subject_id"].unique() if s not in set(ids)]
    return pd.Index(ids, name="subject_id")


def subject_strata(images: pd.DataFrame, rois: pd.DataFrame, index: pd.Index, stratify_by: str = "label") -> pd.Series:
    """The stratum of each subject in `index` (see module docstring); `stratify_by` is label or fine_class."""
    if stratify_by not in ("label", "fine_class"):
        raise ValueError(f"stratify_by must be 'label' or 'fine_class', not {stratify_by!r}")
    subject_of_image = images.set_index("image_id")["subject_id"]
    roi = rois.assign(subject_id=rois["image_id"].map(subject_of_image))
    strata = pd.Series(NORMAL, index=index, dtype=object, name="stratum")
    for subject, group in roi.groupby("subject_id", sort=False):
        if subject not in strata.index:
            continue
        label = "actionable" if (group["label"] == "actionable").any() else "benign"
        if stratify_by == "fine_class" and "fine_class" in group.columns:
            fine = _mode(group.loc[group["label"] == label, "fine_class"])
            strata[subject] = fine if fine is not None else label
        else:
            strata[subject] = label
    return strata


def _categorical_from_tables(
    name: str, images: pd.DataFrame, subjects: pd.DataFrame | None, index: pd.Index
) -> pd.Series | None:
    from_subjects = None
    if subjects is not None and name in subjects.columns:
        from_subjects = subjects.set_index("subject_id")[name].reindex(index)
    from_images = None
    if name in images.columns:
        from_images = images.groupby("subject_id")[name].agg(_mode).reindex(index)
    if from_subjects is None and from_images is None:
        return None
    if from_subjects is None:
        return from_images
    if from_images is None:
        return from_subjects
    return from_subjects.where(from_subjects.notna(), from_images)


def _numeric_from_tables(
    name: str, images: pd.DataFrame, subjects: pd.DataFrame | None, index: pd.Index
) -> pd.Series | None:
    parts = []
    if subjects is not None and name in subjects.columns:
        parts.append(pd.to_numeric(subjects.set_index("subject_id")[name], errors="coerce").reindex(index))
    if name in images.columns:
        values = pd.to_numeric(images[name], errors="coerce")
        parts.append(values.groupby(images["subject_id"]).mean().reindex(index))
    if not parts:
        return None
    merged = parts[0]
    for extra in parts[1:]:
        merged = merged.where(merged.notna(), extra)
    return merged.astype(float)


def age_band(age: pd.Series, bins: list[float]) -> pd.Series:
    """Bin ages into left-closed bands ``lo-hi`` (e.g. ``50-60`` holds 50 <= age < 60); NaN stays NaN.

    Ages outside the outermost edges fall into ``<first`` or ``>=last``.
    """
    edges = sorted(float(b) for b in bins)
    labels = []
    for value in age:
        if pd.isna(value):
            labels.append(None)
        elif value < edges[0]:
            labels.append(f"<{edges[0]:g}")
        elif value >= edges[-1]:
            labels.append(f">={edges[-1]:g}")
        else:
            k = int(np.searchsorted(edges, value, side="right")) - 1
            labels.append(f"{edges[k]:g}-{edges[k + 1]:g}")
    return pd.Series(labels, index=age.index, dtype=object)


def _morphology(name: str, images: pd.DataFrame, rois: pd.DataFrame, index: pd.Index) -> pd.Series | None:
    if name not in rois.columns:
        return None
    subject_of_image = images.set_index("image_id")["subject_id"]
    per_subject = rois[name].groupby(rois["image_id"].map(subject_of_image)).agg(_mode).reindex(index)
    if per_subject.notna().sum() == 0:
        return None
    has_roi = index.isin(rois["image_id"].map(subject_of_image))
    return per_subject.where(~(~has_roi & per_subject.isna()), NO_ROI)


def _pool_rare(values: pd.Series, min_level_subjects: int) -> tuple[pd.Series, list[str]]:
    """Pool levels (``missing`` included) held by fewer than `min_level_subjects` subjects into ``other``.

    When the pooled ``other`` is itself still that rare (or a single level would
    only be renamed), the smallest remaining level joins it. Returns the new
    values and the pooled original levels.
    """
    counts = values.value_counts()
    rare = sorted(counts.index[counts < min_level_subjects])
    if not rare or len(counts) <= 2:
        return values, []
    pooled_count = int(counts[rare].sum())
    rest = counts.drop(rare).sort_values(kind="stable")
    if (pooled_count < min_level_subjects or len(rare) == 1) and len(rest) > 2:
        rare.append(rest.index[0])
    rare = sorted(rare)
    return values.where(~values.isin(rare), OTHER), rare


def subject_covariates(
    images: pd.DataFrame,
    rois: pd.DataFrame,
    subjects: pd.DataFrame | None,
    *,
    covariates: list[str],
    numeric_covariates: list[str],
    morphology: list[str],
    age_bins: list[float],
    stratify_by: str = "label",
    min_level_subjects: int = 12,
) -> SubjectCovariates:
    """Build the per-subject table from the typed corpus tables (see module docstring).

    `covariates` are categorical names (``age_band`` is derived from age);
    `numeric_covariates` are averaged; `morphology` names rois columns.
    """
    index = _subject_ids(images, subjects)
    frame = pd.DataFrame(index=index)
    frame["stratum"] = subject_strata(images, rois, index, stratify_by)
    categorical, numeric, skipped = [], [], []
    missing_counts: dict[str, int] = {}
    pooled: dict[str, list[str]] = {}

    for name in covariates:
        if name == "age_band":
            age = _numeric_from_tables("age", images, subjects, index)
            values = age_band(age, age_bins) if age is not None else None
        else:
            values = _categorical_from_tables(name, images, subjects, index)
        if values is None or values.notna().sum() == 0:
            skipped.append(name)
            continue
        categorical.append(name)
        frame[name] = values
    for name in morphology:
        if name in frame.columns:
            continue
        values = _morphology(name, images, rois, index)
        if values is None:
            skipped.append(name)
            continue
        categorical.append(name)
        frame[name] = values
    for name in categorical:
        column = frame[name].astype(object)
        missing_counts[name] = int(column.isna().sum())
        column = column.where(column.notna(), MISSING).astype(str)
        frame[name], rare = _pool_rare(column, min_level_subjects)
        if rare:
            pooled[name] = rare
    for name in numeric_covariates:
        values = _numeric_from_tables(name, images, subjects, index)
        if values is None or values.notna().sum() == 0:
            skipped.append(name)
            continue
        numeric.append(name)
        missing_counts[name] = int(values.isna().sum())
        frame[name] = values
    return SubjectCovariates(frame, categorical, numeric, skipped, missing_counts, pooled)


def design_matrix(cov: SubjectCovariates) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
    """Columns the optimiser balances: one indicator per categorical level, one column per numeric.

    Returns the (subjects x columns) float matrix and, per column, (covariate,
    level, kind) with kind ``categorical`` or ``numeric`` (level ``mean``).
    Missing numeric values are imputed with the corpus mean: their missingness is
    balanced through the categorical ``missing`` level of the derived band
    (e.g. age_band) rather than by distorting the mean.
    """
    columns, names = [], []
    for name in cov.categorical:
        values = cov.frame[name].to_numpy(dtype=object)
        for level in sorted(set(values)):
            columns.append((values == level).astype(float))
            names.append((name, str(level), "categorical"))
    for name in cov.numeric:
        values = cov.frame[name].to_numpy(dtype=float)
        filled = np.where(np.isnan(values), np.nanmean(values), values)
        columns.append(filled)
        names.append((name, "mean", "numeric"))
    matrix = np.column_stack(columns) if columns else np.zeros((len(cov.frame), 0))
    return matrix, names
