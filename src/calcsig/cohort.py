"""The cohort: which ROIs of the corpus the models learn from, and why each other ROI is left out.

The corpus holds every ROI a source describes (masses, asymmetries, image-level
labels, ...). A calcification model learns from a cohort chosen by the `cohort`
config section: abnormality types (calcifications by default), calcification
morphologies and distributions, and how the source's pathology maps to the
binary label. Every ROI of the corpus gets exactly one row in the cohort table:
included, or excluded with the first reason that applies, in this order:

========================  =====================================================
no_pixels                 its image has no pixels (a metadata-only corpus)
no_location               an image-level label without box, circle or mask
abnormality_not_selected  its abnormality type is not one the cohort selects
label_excluded            cohort.label_map maps its fine class to `exclude`
outside_morphology        its calcification morphology is not selected
outside_distribution      its calcification distribution is not selected
failed_qc                 its image or ROI failed the quality gate (skipped)
no_detected_object        segmentation found no calcification inside it
========================  =====================================================

The partition balances on all subjects; the models, baselines and metrics see
the included ROIs only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from .errors import CalcsigError, TableError
from .paths import atomic_path
from .settings import section_params

COHORT_COLUMNS = ["roi_id", "image_id", "subject_id", "split", "included", "reason", "label", "fine_class"]
REASONS = {
    "no_pixels": "image without pixels (metadata only)",
    "no_location": "image-level label without a location",
    "abnormality_not_selected": "abnormality type not selected (cohort.abnormality)",
    "label_excluded": "fine class mapped to exclude (cohort.label_map)",
    "outside_morphology": "calcification morphology not selected (cohort.calc_type)",
    "outside_distribution": "calcification distribution not selected (cohort.calc_distribution)",
    "failed_qc": "image or ROI failed the quality gate",
    "no_detected_object": "no calcification detected inside the ROI",
}
LOCATED_SHAPES = ("bbox", "circle", "mask")
MIN_SUBJECTS_PER_CLASS = 2  # what a subject-grouped, stratified inner cross-validation needs at the least
_TOKEN = re.compile(r"[\s,;/+-]+")


class CohortTooSmall(CalcsigError):
    """The selected cohort cannot fill the configured folds."""


def _tokens(value) -> set[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return set()
    return {t for t in _TOKEN.split(str(value).strip().upper()) if t}


def _selected(values: pd.Series, wanted: list[str], exact: bool) -> pd.Series:
    """Rows whose value matches `wanted`: every word of the value is wanted (exact), or any is."""
    wanted_tokens = {t for w in wanted for t in _tokens(w)}
    tokens = values.map(_tokens)
    if exact:
        return tokens.map(lambda t: bool(t) and t <= wanted_tokens)
    return tokens.map(lambda t: bool(t & wanted_tokens))


def provisional_cohort(rois: pd.DataFrame, images: pd.DataFrame, params: dict | None) -> pd.DataFrame:
    """The cohort table as far as the corpus tables alone can tell (before segmentation).

    rois, images : corpus tables (as read by `calcsig.tables.read_table`).
    params : the `cohort` config section.
    Returns one row per ROI (columns `COHORT_COLUMNS`, split empty) in rois order.
    """
    p = section_params("cohort", params)
    images = images.set_index(images["image_id"].astype(str))
    out = pd.DataFrame(
        {
            "roi_id": rois["roi_id"].astype(str).to_numpy(),
            "image_id": rois["image_id"].astype(str).to_numpy(),
        }
    )
    out["subject_id"] = out["image_id"].map(images["subject_id"].astype(str))
    out["split"] = ""
    fine = rois["fine_class"] if "fine_class" in rois else pd.Series(None, index=rois.index)
    out["fine_class"] = [None if v is None or pd.isna(v) or v == "" else str(v) for v in fine]
    label_map = {str(k).lower(): v for k, v in p["label_map"].items()}
    mapped = out["fine_class"].map(lambda f: label_map.get(str(f).lower()) if f is not None else None)
    out["label"] = [m if m in ("benign", "actionable") else str(lab) for m, lab in zip(mapped, rois["label"])]
    reason = pd.Series("", index=out.index, dtype=object)

    def exclude(mask, code):
        mask = pd.Series(mask, index=out.index).fillna(False).astype(bool)
        reason[(reason == "") & mask] = code

    column = lambda name: rois[name].reset_index(drop=True) if name in rois else pd.Series(None, index=out.index)  # noqa: E731
    # what cannot be measured first (so a metadata-only corpus reads as such), then the selection
    has_pixels = out["image_id"].map(images["has_pixels"].astype(str).str.lower() == "true").fillna(False)
    exclude(~has_pixels, "no_pixels")
    exclude(~column("shape").isin(LOCATED_SHAPES), "no_location")
    if p["abnormality"]:
        exclude(~_selected(column("abnormality"), p["abnormality"], exact=True), "abnormality_not_selected")
    exclude(mapped == "exclude", "label_excluded")
    if p["calc_type"]:
        exclude(~_selected(column("calc_type"), p["calc_type"], p["calc_type_match"] == "exact"), "outside_morphology")
    if p["calc_distribution"]:
        exclude(
            ~_selected(column("calc_distribution"), p["calc_distribution"], p["calc_type_match"] == "exact"),
            "outside_distribution",
        )
    out["included"] = reason == ""
    out["reason"] = reason
    return out[COHORT_COLUMNS]


def final_cohort(
    provisional: pd.DataFrame,
    assignment: pd.DataFrame,
    n_objects: pd.Series | None,
    qc_failed: set[str] = frozenset(),
    require_detected_objects: bool = True,
) -> pd.DataFrame:
    """The cohort once segmentation has run: adds each ROI's split and the late exclusions.

    assignment : the partition's assignment table (ROI rows give each ROI's split).
    n_objects : objects found per ROI (indexed by roi_id), or None when no image was segmented.
    qc_failed : ROIs whose image or ROI failed the quality gate and were skipped.
    """
    out = provisional.copy()
    rois = assignment[assignment["level"] == "roi"].set_index("roi_id")
    out["split"] = out["roi_id"].map(rois["split"]).fillna("")
    late = out["included"] & out["roi_id"].isin(qc_failed)
    out.loc[late, ["included", "reason"]] = [False, "failed_qc"]
    if require_detected_objects and n_objects is not None:
        found = out["roi_id"].map(n_objects).fillna(0).astype(int)
        empty = out["included"] & (found == 0)
        out.loc[empty, ["included", "reason"]] = [False, "no_detected_object"]
    return out


def cohort_summary(cohort: pd.DataFrame) -> dict:
    """Counts for the inclusion diagram: the corpus, each exclusion in order, and what is left."""
    included = cohort[cohort["included"]]
    excluded = cohort.loc[~cohort["included"], "reason"].value_counts()
    flow, remaining = [], len(cohort)
    for code in REASONS:
        n = int(excluded.get(code, 0))
        if n:
            remaining -= n
            flow.append({"reason": code, "excluded": n, "remaining": remaining})
    return {
        "n_corpus_rois": int(len(cohort)),
        "n_included": int(len(included)),
        "included": {
            "by_label": {k: int(v) for k, v in sorted(included["label"].value_counts().items())},
            "by_split": {k: int(v) for k, v in sorted(included["split"].value_counts().items()) if k},
            "n_subjects": int(included["subject_id"].nunique()),
        },
        "excluded": {code: int(excluded[code]) for code in REASONS if code in excluded},
        "flow": flow,
        "reasons": REASONS,
    }


def fold_capacity_problems(cohort: pd.DataFrame, assignment: pd.DataFrame) -> list[str]:
    """Why the included ROIs cannot fill the partition's outer folds; empty when they can.

    Each outer fold's training part (and the final model's, all of train and
    dev) needs `MIN_SUBJECTS_PER_CLASS` subjects of each class for its inner
    cross-validation. A cohort emptied by its selection is a problem too; a
    cohort empty because no image has pixels is not (the models are skipped).
    """
    included = cohort[cohort["included"]]
    if included.empty:
        selectable = ~cohort["reason"].isin(["no_pixels", "no_location"])
        if selectable.any():
            return ["no ROI is left after the selection (see the exclusion counts)"]
        return []
    rois = assignment[assignment["level"] == "roi"].set_index("roi_id")
    development = included.assign(fold=included["roi_id"].map(rois["outer_fold"]).fillna(""))
    development = development[included["roi_id"].map(rois["split"]).isin(["train", "dev"])]
    parts = {"the final model's (train and dev)": development}
    for fold in sorted({f for f in development["fold"] if f}, key=lambda f: (len(f), f)):
        parts[f"outer fold {fold}'s"] = development[development["fold"] != fold]
    problems = []
    for name, training in parts.items():
        have = training.groupby("label")["subject_id"].nunique()
        counts = {label: int(have.get(label, 0)) for label in ("benign", "actionable")}
        if min(counts.values()) < MIN_SUBJECTS_PER_CLASS:
            problems.append(
                f"{name} training part has {counts['benign']} benign and {counts['actionable']} actionable "
                f"subject(s) (need {MIN_SUBJECTS_PER_CLASS} of each)"
            )
    return problems


def check_fold_capacity(cohort: pd.DataFrame, assignment: pd.DataFrame) -> None:
    """Raise CohortTooSmall, in one message with the counts and what to change, when
    `fold_capacity_problems` finds any."""
    problems = fold_capacity_problems(cohort, assignment)
    if not problems:
        return
    included = cohort[cohort["included"]]
    per_class = {k: int(v) for k, v in included.groupby("label")["subject_id"].nunique().items()}
    outer_folds = len({f for f in assignment["outer_fold"] if f})
    raise CohortTooSmall(
        f"cohort too small for {outer_folds} outer folds: {'; '.join(problems)}. "
        f"Included: {len(included)} ROIs from subjects per class {per_class}. "
        "Lower partition.outer_folds (and model.inner_folds), or widen the cohort "
        "(cohort.abnormality, cohort.calc_type, cohort.calc_distribution)."
    )


def write_cohort(cohort: pd.DataFrame, out_tsv, out_json) -> dict:
    """Write the cohort table (TSV) and its summary (JSON), each atomically; return the summary."""
    summary = cohort_summary(cohort)
    with atomic_path(out_tsv) as tmp:
        cohort.assign(included=cohort["included"].map({True: "true", False: "false"})).to_csv(
            tmp, sep="\t", index=False
        )
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def read_cohort(path) -> pd.DataFrame:
    """A cohort table written by `write_cohort`, checked (`included` as bool, empty fine_class as None).

    Raises TableError naming `path` and every offending row: a missing column,
    an `included` other than true/false, an included ROI with a reason or
    without a binary label, an excluded ROI without a reason, a repeated ROI.
    """
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in COHORT_COLUMNS if c not in table.columns]
    if missing:
        raise TableError(str(path), [f"missing column(s) {missing}; a cohort table has {COHORT_COLUMNS}"])
    included = table["included"].str.lower().map({"true": True, "false": False})
    problems = []
    for row, (rid, inc, reason, label) in enumerate(
        zip(table["roi_id"], included, table["reason"], table["label"]), start=2
    ):
        if pd.isna(inc):
            problems.append(f"row {row} (ROI {rid}): included must be true or false")
        elif inc and reason:
            problems.append(f"row {row} (ROI {rid}): included with a reason ({reason}); leave reason empty")
        elif inc and label not in ("benign", "actionable"):
            problems.append(f"row {row} (ROI {rid}): included with label {label!r}; expected benign or actionable")
        elif not inc and not reason:
            problems.append(f"row {row} (ROI {rid}): excluded without a reason")
    problems += [
        f"ROI {rid} appears more than once" for rid in sorted(set(table["roi_id"][table["roi_id"].duplicated()]))
    ]
    if problems:
        raise TableError(str(path), problems)
    table["included"] = included.astype(bool)
    table["fine_class"] = table["fine_class"].where(table["fine_class"] != "", None)
    return table
