"""The cohort: which corpus ROIs the models, baselines and metrics see, with their labels.

``results/cohort/rois.tsv`` has one row per corpus ROI: roi_id, image_id,
subject_id, included (true/false), reason (empty when included, else a short
code such as not_calcification, no_location, no_pixels, failed_qc,
no_detected_object, outside_morphology, outside_distribution,
unknown_label), label (benign/actionable) and fine_class. The model stage
takes the included ROIs as its case list, with this table's label and fine
class.

Until the workflow's cohort stage writes that table, :func:`provisional_cohort`
derives one with the same columns from the corpus, the partition and the
feature table (every ROI of the partition with a feature row is included),
so that the model stage can run either way.
"""

from __future__ import annotations

import pandas as pd

from ..errors import TableError

COHORT_COLUMNS = ["roi_id", "image_id", "subject_id", "included", "reason", "label", "fine_class"]
LABELS = ("benign", "actionable")
SPLITS = ("train", "dev", "eval", "external")


def _as_bool(value) -> bool | None:
    text = str(value).strip().lower()
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text)


def check_cohort(cohort: pd.DataFrame, where: str) -> pd.DataFrame:
    """The cohort table with ``included`` as booleans and text columns as strings; every problem raised at once.

    Raises :class:`calcsig.errors.TableError` naming `where` and each offending row.
    """
    missing = [c for c in COHORT_COLUMNS if c not in cohort.columns]
    if missing:
        raise TableError(where, [f"missing column(s) {missing}; a cohort table has {COHORT_COLUMNS}"])
    cohort = cohort.copy()
    for column in ("roi_id", "image_id", "subject_id", "reason", "label", "fine_class"):
        cohort[column] = cohort[column].astype(object).where(cohort[column].notna(), "").astype(str)
    included = cohort["included"].map(_as_bool)
    problems = []
    for row, (rid, inc, reason, label) in enumerate(
        zip(cohort["roi_id"], included, cohort["reason"], cohort["label"]), start=2
    ):
        if inc is None:
            problems.append(f"row {row} (ROI {rid}): included must be true or false")
        elif inc and reason:
            problems.append(f"row {row} (ROI {rid}): included with a reason ({reason}); leave reason empty")
        elif inc and label not in LABELS:
            problems.append(f"row {row} (ROI {rid}): included with label {label!r}; expected one of {LABELS}")
        elif inc is False and not reason:
            problems.append(f"row {row} (ROI {rid}): excluded without a reason")
    duplicated = cohort["roi_id"][cohort["roi_id"].duplicated()]
    problems += [f"ROI {rid} appears more than once" for rid in sorted(set(duplicated))]
    if problems:
        raise TableError(where, problems)
    cohort["included"] = included.astype(bool)
    return cohort.reset_index(drop=True)


def read_cohort(path) -> pd.DataFrame:
    """``results/cohort/rois.tsv`` read and checked (:func:`check_cohort`)."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return check_cohort(table, str(path))


def provisional_cohort(
    corpus_rois: pd.DataFrame, images: pd.DataFrame, assignment_rois: pd.DataFrame, featured_roi_ids
) -> pd.DataFrame:
    """A cohort table derived from the corpus, partition and features, for runs without a cohort stage.

    A ROI is included when the partition has it and the feature table has a
    row for it. Otherwise the reason is, in this order: not_calcification
    (rois.tsv ``abnormality`` is given and is not a calcification),
    no_pixels (its image has no pixels), no_location (``shape`` image: a
    label without a location), failed_qc (no feature row for another reason,
    or not in the partition).
    """
    rois = corpus_rois.copy()
    rois["roi_id"] = rois["roi_id"].astype(str)
    rois["image_id"] = rois["image_id"].astype(str)
    image_meta = images.assign(image_id=images["image_id"].astype(str)).set_index("image_id")
    subject = rois["image_id"].map(image_meta["subject_id"].astype(str)).fillna("")
    has_pixels = rois["image_id"].map(image_meta["has_pixels"].map(_as_bool)).fillna(False)
    partitioned = rois["roi_id"].isin(set(assignment_rois["roi_id"].astype(str)))
    featured = rois["roi_id"].isin({str(r) for r in featured_roi_ids})
    abnormality = rois["abnormality"] if "abnormality" in rois.columns else pd.Series("", index=rois.index)
    abnormality = abnormality.astype(object).where(abnormality.notna(), "").astype(str).str.lower()
    reason = pd.Series("", index=rois.index, dtype=object)
    failed = ~(partitioned & featured)
    reason[failed] = "failed_qc"
    reason[failed & (rois["shape"].astype(str) == "image")] = "no_location"
    reason[failed & ~has_pixels.astype(bool)] = "no_pixels"
    reason[failed & (abnormality != "") & ~abnormality.str.startswith("calc")] = "not_calcification"
    fine = rois["fine_class"] if "fine_class" in rois.columns else pd.Series("", index=rois.index)
    return check_cohort(
        pd.DataFrame(
            {
                "roi_id": rois["roi_id"],
                "image_id": rois["image_id"],
                "subject_id": subject,
                "included": reason == "",
                "reason": reason,
                "label": rois["label"].astype(str),
                "fine_class": fine.astype(object).where(fine.notna(), ""),
            }
        ),
        "provisional cohort (corpus rois.tsv, assignment.tsv, features)",
    )


def summarize(cohort: pd.DataFrame, split_of: dict) -> dict:
    """Counts for models.json's ``cohort`` key: included by label and split, excluded by reason.

    `split_of` maps roi_id to its partition split (train, dev, eval, external).
    """
    included = cohort[cohort["included"]]
    splits = included["roi_id"].map(split_of).fillna("none")
    by_split = {s: int((splits == s).sum()) for s in SPLITS}
    by_split.update({s: int(n) for s, n in splits[~splits.isin(SPLITS)].value_counts().sort_index().items()})
    excluded = cohort.loc[~cohort["included"], "reason"].value_counts().sort_index()
    return {
        "n_corpus_rois": int(len(cohort)),
        "n_included": int(len(included)),
        "included": {
            "by_label": {label: int((included["label"] == label).sum()) for label in LABELS},
            "by_split": by_split,
        },
        "excluded": {str(reason): int(n) for reason, n in excluded.items()},
    }
