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

from .cohort import provisional_cohort
from .errors import CorpusCheckError
from .settings import section_params

LABELS = ("benign", "actionable")
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
    "cohort": {},
    "enrichment_ablation": False,
    "enrichment": {"column": "subset", "value": "enrichment"},
}


def corpus_check_settings(config: Mapping) -> dict:
    """The settings `check_corpus` needs, taken from a loaded config."""
    partition, model = config["partition"], config["model"]
    return {
        "outer_folds": partition["outer_folds"],
        "inner_folds": model["inner_folds"],
        "fractions": dict(partition["fractions"]),
        "use_given_split": partition["use_given_split"],
        "split_file": partition["split_file"],
        "external": partition["external"],
        "cohort": dict(config["cohort"]),
        "enrichment_ablation": model["baselines"]["enrichment_ablation"],
        "enrichment": dict(model["enrichment"]),
    }


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

    dev_rois = rois.loc[rois["image_id"].isin(set(development["image_id"]))].reset_index(drop=True)
    cohort = provisional_cohort(dev_rois, development, s["cohort"])
    if not cohort["included"].any():
        # Without any located ROI on an image with pixels (a metadata-only corpus, image-level
        # labels) the models are left out and the report says why: not an error. With such ROIs,
        # a selection that keeps none of them is.
        everything = provisional_cohort(dev_rois, development, {"abnormality": []})
        if everything["included"].any():
            problems.append(_empty_cohort(cohort, s["cohort"]))
        return problems
    included = cohort["included"].to_numpy()
    learned = dev_rois.loc[included].assign(label=cohort.loc[included, "label"].to_numpy())

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
    return problems


def raise_if_problems(problems: list[str], where: str) -> None:
    """Raise CorpusCheckError listing `problems` (naming `where`, e.g. the corpus folder) when there are any."""
    if problems:
        raise CorpusCheckError(where, problems)


def _settings(settings: Mapping | None) -> dict:
    s = {**DEFAULT_SETTINGS, **dict(settings or {})}
    s["fractions"] = {**DEFAULT_SETTINGS["fractions"], **dict(s["fractions"] or {})}
    return s


def _norm(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip().lower()


def _describe_cohort(cohort: Mapping | None) -> str:
    selection = section_params("cohort", dict(cohort or {}))
    chosen = {c: selection[c] for c in COHORT_COLUMNS if selection[c]}
    return ", ".join(f"{c} {v}" for c, v in chosen.items()) if chosen else "all ROIs"


def _value_counts(column: pd.Series) -> str:
    counts = column.map(lambda v: _norm(v) or "(empty)").value_counts()
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    more = "" if len(counts) <= 8 else f", and {len(counts) - 8} more"
    return ", ".join(f"{value} {n}" for value, n in shown) + more


def _empty_cohort(cohort: pd.DataFrame, selection: Mapping) -> str:
    """Name the selection that leaves nothing, with the counts of each reason."""
    reasons = cohort.loc[~cohort["included"], "reason"].value_counts()
    counts = ", ".join(f"{reason} {n}" for reason, n in reasons.items())
    return (
        f"rois.tsv: no ROI is left for the models after the cohort selection {_describe_cohort(selection)} "
        f"(excluded: {counts}); change cohort.abnormality / calc_type / calc_distribution / label_map"
    )


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
