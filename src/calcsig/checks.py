"""Corpus-against-config checks, run right after ingest so a run that cannot work stops before partitioning.

`check_corpus` looks at the three corpus tables and the few config values that
decide what the later stages need: the ROIs the models would learn from (the
cohort selection, located on images with pixels, outside the external
cohort), their labels, and how many subjects of each class the partition and
the nested cross-validation will have. Each problem names the table and column
(or config key) and says what to change.

What is checked is what makes a later job fail or leaves a metric undefined
whatever the seed: one class only, too few subjects of a class for an outer
training set to hold two (the minimum for the inner cross-validation), no
held-out subject of a class, no truth for the candidate selector, an external
cohort or enrichment subset that names nothing. Fewer subjects than
`inner_folds` is not a problem: the inner cross-validation then uses fewer
folds, as documented in the model section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .errors import CorpusCheckError

LABELS = ("benign", "actionable")
LOCATED_SHAPES = ("bbox", "circle", "mask")
COHORT_COLUMNS = ("abnormality", "calc_type", "calc_distribution")
# A subject in the eval split whose given split says so (calcsig.partition maps test to eval).
GIVEN_EVAL = ("eval", "test")
# The inner cross-validation needs at least this many subjects of each class in a training set.
MIN_SUBJECTS_PER_CLASS = 2

DEFAULT_SETTINGS = {
    "outer_folds": 4,
    "inner_folds": 5,
    "fractions": {"train": 0.6, "dev": 0.15, "eval": 0.25},
    "use_given_split": False,
    "split_file": None,
    "external": None,
    "cohort": {"abnormality": ["calcification"], "calc_type": None, "calc_distribution": None},
    "use_selector": True,
    "enrichment_ablation": False,
    "enrichment": {"column": "subset", "value": "enrichment"},
}


def corpus_check_settings(config: Mapping) -> dict:
    """The settings `check_corpus` needs, taken from a loaded config.

    The cohort selection is read from a `cohort` section when the config has
    one (keys abnormality, calc_type, calc_distribution: lists of values to
    keep, null for no filter); otherwise the default keeps calcification ROIs.
    """
    partition, model = config["partition"], config["model"]
    cohort = dict(DEFAULT_SETTINGS["cohort"])
    cohort.update({k: v for k, v in dict(config.get("cohort") or {}).items() if k in COHORT_COLUMNS})
    return {
        "outer_folds": partition["outer_folds"],
        "inner_folds": model["inner_folds"],
        "fractions": dict(partition["fractions"]),
        "use_given_split": partition["use_given_split"],
        "split_file": partition["split_file"],
        "external": partition["external"],
        "cohort": cohort,
        "use_selector": config["segment"]["use_selector"],
        "enrichment_ablation": model["baselines"]["enrichment_ablation"],
        "enrichment": dict(model["enrichment"]),
    }


def cohort_rois(rois: pd.DataFrame, cohort: Mapping | None) -> pd.Series:
    """Which ROIs the cohort selection keeps (bool Series on rois.index).

    cohort maps a rois.tsv column (abnormality, calc_type, calc_distribution) to
    the values to keep, compared without case or surrounding spaces; None (or a
    column left out) keeps every value. A ROI whose cell is empty fails a filter
    on that column.
    """
    keep = pd.Series(True, index=rois.index)
    for column, values in _filters(cohort).items():
        wanted = {_norm(v) for v in values}
        cells = rois[column].map(_norm) if column in rois.columns else pd.Series("", index=rois.index)
        keep &= cells.isin(wanted)
    return keep


def check_corpus(
    images: pd.DataFrame, rois: pd.DataFrame, subjects: pd.DataFrame | None, settings: Mapping | None = None
) -> list[str]:
    """Every reason the configured run cannot work on this corpus; empty when it can.

    images, rois, subjects : the corpus tables (as read by calcsig.tables.read_table,
        or as strings straight from the TSVs); subjects may be None.
    settings : see DEFAULT_SETTINGS (missing keys take those values) or
        `corpus_check_settings(config)`: outer_folds, inner_folds, fractions
        {train, dev, eval}, use_given_split, split_file, external {column,
        values} or None, cohort {abnormality, calc_type, calc_distribution},
        use_selector, enrichment_ablation, enrichment {column, value}.

    Each line names the table and column or the config key, the numbers, and
    what to change. Counts of subjects per class in train+dev and eval are
    estimated as the partition sets them (the eval share of each class, rounded);
    with a given split they are read from images.given_split.
    """
    s = _settings(settings)
    problems: list[str] = []
    images = images.copy()
    images["image_id"] = images["image_id"].astype(str)
    images["subject_id"] = images["subject_id"].astype(str)
    rois = rois.copy()
    rois["image_id"] = rois["image_id"].astype(str)

    external = _external_images(images, s["external"], problems)
    development = images.loc[~external]
    split_problems = _given_split_problems(development, s)
    problems += split_problems
    problems += _enrichment_problems(development, s)

    dev_rois = rois.loc[rois["image_id"].isin(set(development["image_id"]))]
    in_cohort = cohort_rois(dev_rois, s["cohort"])
    if not in_cohort.any():
        problems.append(_empty_cohort(dev_rois, s["cohort"]))
        return problems
    with_pixels = set(development.loc[_truthy(development["has_pixels"]), "image_id"])
    located = dev_rois["shape"].astype(str).isin(LOCATED_SHAPES) & dev_rois["image_id"].isin(with_pixels)
    learned = dev_rois.loc[in_cohort & located]
    if learned.empty:
        problems.append(
            f"rois.tsv column 'shape' and images.tsv column 'has_pixels': none of the {int(in_cohort.sum())} "
            "ROI(s) in the cohort has a location (bbox, circle or mask) on an image with pixels, and features "
            "are measured on pixels; give the images (e.g. corpus.cbis_ddsm.image_root) or locate the ROIs"
        )
        return problems

    subject_of = development.set_index("image_id")["subject_id"]
    learned = learned.assign(subject_id=learned["image_id"].map(subject_of), label=learned["label"].astype(str))
    labels = sorted(set(learned["label"]))
    if len(labels) < 2:
        missing = [label for label in LABELS if label not in labels]
        problems.append(
            f"rois.tsv column 'label': all {len(learned)} ROI(s) the models learn from (cohort "
            f"{_describe_cohort(s['cohort'])}, located, with pixels) are {labels[0]}; a model needs "
            f"{' and '.join(LABELS)} ROIs: add {', '.join(missing)} cases or widen the cohort selection"
        )
        return problems
    if not split_problems:  # the counts per split rest on the given split when there is one
        problems += _class_count_problems(learned, development, s)
        problems += _fold_capacity_problems(development, s)
    if s["use_selector"]:
        problems += _selector_problems(development, rois)
    return problems


def raise_if_problems(problems: list[str], where: str) -> None:
    """Raise CorpusCheckError listing `problems` (naming `where`, e.g. the corpus folder) when there are any."""
    if problems:
        raise CorpusCheckError(where, problems)


def _settings(settings: Mapping | None) -> dict:
    s = {**DEFAULT_SETTINGS, **dict(settings or {})}
    s["fractions"] = {**DEFAULT_SETTINGS["fractions"], **dict(s["fractions"] or {})}
    return s


def _filters(cohort: Mapping | None) -> dict:
    return {c: list(v) for c, v in dict(cohort or {}).items() if c in COHORT_COLUMNS and v is not None}


def _norm(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip().lower()


def _truthy(column: pd.Series) -> pd.Series:
    return column.map(lambda v: v is True or _norm(v) in ("true", "1"))


def _describe_cohort(cohort: Mapping | None) -> str:
    filters = _filters(cohort)
    return ", ".join(f"{c} {v}" for c, v in filters.items()) if filters else "all ROIs"


def _value_counts(column: pd.Series) -> str:
    counts = column.map(lambda v: _norm(v) or "(empty)").value_counts()
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    more = "" if len(counts) <= 8 else f", and {len(counts) - 8} more"
    return ", ".join(f"{value} {n}" for value, n in shown) + more


def _empty_cohort(rois: pd.DataFrame, cohort: Mapping | None) -> str:
    if rois.empty:
        return "rois.tsv: the corpus has no ROI (outside any external cohort), so there is nothing to learn from"
    filters = _filters(cohort)
    # name the first column that leaves nothing, with the values the corpus has there
    keep = pd.Series(True, index=rois.index)
    for column, values in filters.items():
        step = cohort_rois(rois, {column: values})
        if not (keep & step).any():
            present = _value_counts(rois.loc[keep, column]) if column in rois.columns else "no such column"
            return (
                f"rois.tsv column '{column}': no ROI matches the cohort selection {column} {values} "
                f"(values in the corpus: {present}); change cohort.{column} or fill that column in the source"
            )
        keep &= step
    return f"rois.tsv: no ROI matches the cohort selection {_describe_cohort(cohort)}"


def _external_images(images: pd.DataFrame, external: Mapping | None, problems: list[str]) -> pd.Series:
    if not external:
        return pd.Series(False, index=images.index)
    column, values = external["column"], [str(v) for v in external["values"]]
    if column not in images.columns:
        problems.append(
            f"config key 'partition.external.column': images.tsv has no column {column!r} "
            f"(it has {', '.join(map(str, images.columns))})"
        )
        return pd.Series(False, index=images.index)
    selected = images[column].astype(str).isin(values)
    if not selected.any():
        problems.append(
            f"config key 'partition.external.values': no image has images.tsv {column} in {values} "
            f"(values there: {_value_counts(images[column])})"
        )
    elif selected.all():
        problems.append(
            f"config key 'partition.external': images.tsv {column} in {values} selects every image, "
            "leaving nothing to develop the models on"
        )
    return selected


def _given_split_problems(images: pd.DataFrame, s: Mapping) -> list[str]:
    problems = []
    if s["use_given_split"]:
        given = images["given_split"].map(_norm) if "given_split" in images.columns else None
        if given is None or not (given != "").any():
            problems.append(
                "images.tsv column 'given_split' is empty or absent but partition.use_given_split is true; "
                "set partition.use_given_split: false or give the split in the source"
            )
    if s["split_file"]:
        path = Path(s["split_file"])
        try:
            listed = set(pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)["subject_id"])
        except (OSError, KeyError, ValueError, pd.errors.ParserError) as error:
            return problems + [
                f"config key 'partition.split_file': {path} cannot be read as a TSV with subject_id ({error})"
            ]
        missing = sorted(set(images["subject_id"]) - listed)
        if missing:
            problems.append(
                f"config key 'partition.split_file': {path} does not list {len(missing)} subject(s) of images.tsv, "
                f"e.g. {', '.join(missing[:5])}; every subject needs a split"
            )
    return problems


def _enrichment_problems(images: pd.DataFrame, s: Mapping) -> list[str]:
    if not s["enrichment_ablation"]:
        return []
    column, value = s["enrichment"]["column"], str(s["enrichment"]["value"])
    if column not in images.columns:
        return [
            f"config key 'model.enrichment.column': images.tsv has no column {column!r}, so the enrichment "
            "ablation (model.baselines.enrichment_ablation) has no subset to leave out"
        ]
    if not (images[column].astype(str) == value).any():
        return [
            f"config keys 'model.enrichment' and 'model.baselines.enrichment_ablation': no image has images.tsv "
            f"{column} = {value!r} (values there: {_value_counts(images[column])}), so the ablation would "
            "equal the main model; switch it off or name the enrichment subset"
        ]
    return []


def _class_count_problems(learned: pd.DataFrame, images: pd.DataFrame, s: Mapping) -> list[str]:
    problems = []
    k = s["outer_folds"]
    eval_share = s["fractions"]["eval"] / sum(s["fractions"].values())
    given = _given_eval_subjects(images) if s["use_given_split"] else None
    for label in LABELS:
        subjects = set(learned.loc[learned["label"] == label, "subject_id"])
        n = len(subjects)
        if given is not None:
            n_eval = len(subjects & given)
            how = "images.given_split puts"
        else:
            n_eval = math.floor(n * eval_share + 0.5)
            how = f"partition.fractions.eval ({eval_share:g}) puts about"
        n_develop = n - n_eval
        smallest_training = n_develop - math.ceil(n_develop / k)
        if smallest_training < MIN_SUBJECTS_PER_CLASS:
            problems.append(
                f"rois.tsv column 'label': {n} subject(s) have {label} ROIs the models learn from; {how} {n_eval} "
                f"of them in eval, and with partition.outer_folds {k} an outer training set can be left with "
                f"{max(smallest_training, 0)}; the inner cross-validation needs {MIN_SUBJECTS_PER_CLASS} subjects of "
                f"each class in every training set: add {label} cases, lower partition.outer_folds, or widen the "
                "cohort selection"
            )
        elif n_eval == 0:
            problems.append(
                f"rois.tsv column 'label': {n} subject(s) have {label} ROIs the models learn from and {how} none "
                f"of them in eval, so the held-out metrics would be undefined for {label}: add {label} cases or "
                "raise partition.fractions.eval"
            )
    return problems


def _given_eval_subjects(images: pd.DataFrame) -> set[str]:
    if "given_split" not in images.columns:
        return set()
    held_out = images["given_split"].map(_norm).isin(GIVEN_EVAL)
    return set(images.loc[held_out, "subject_id"])


def _fold_capacity_problems(images: pd.DataFrame, s: Mapping) -> list[str]:
    k = s["outer_folds"]
    subjects = set(images["subject_id"])
    if s["use_given_split"]:
        n_develop = len(subjects - _given_eval_subjects(images))
    else:
        eval_share = s["fractions"]["eval"] / sum(s["fractions"].values())
        n_develop = len(subjects) - math.floor(len(subjects) * eval_share + 0.5)
    if n_develop < k:
        return [
            f"images.tsv column 'subject_id': about {n_develop} subject(s) stay in train+dev, too few to fill "
            f"partition.outer_folds {k}; lower it or add subjects"
        ]
    return []


def _selector_problems(images: pd.DataFrame, rois: pd.DataFrame) -> list[str]:
    with_pixels = images.loc[_truthy(images["has_pixels"])]
    truth = (
        with_pixels["truth_mask_path"].map(_norm).ne("").any() if "truth_mask_path" in with_pixels.columns else False
    )
    abnormality = rois["abnormality"].map(_norm) if "abnormality" in rois.columns else pd.Series("", index=rois.index)
    circles = (
        (rois["shape"].astype(str) == "circle")
        & abnormality.str.contains("calc")
        & rois["image_id"].isin(set(with_pixels["image_id"]))
    )
    if truth or circles.any():
        return []
    return [
        "images.tsv column 'truth_mask_path' is empty and rois.tsv has no calcification circle on an image with "
        "pixels, so the candidate selector (segment.use_selector) has nothing to learn from; set "
        "segment.use_selector: false for plain HDoG output"
    ]
