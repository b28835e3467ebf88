"""Entry points of the partition and audit stages: file paths and plain parameters in, files out.

assignment.tsv (docs/contracts.md): one row per subject, image and ROI with
columns level (subject|image|roi), subject_id, image_id, roi_id, split
(train|dev|eval|external), outer_fold (1..K for train and dev rows, empty for
eval and external), group_id (the subject's partition group, see grouping.py:
its own subject_id unless a duplicate image ties it to other subjects).

Decisions:
- The subject row carries the subject's split: the split of its images outside
  the enrichment subsets. A subject with only enrichment images is in train.
- Image rows carry their own split: an enrichment image is always train; with a
  given split each image keeps its given split (test -> eval); otherwise images
  follow their subject. ROI rows follow their image.
- Outer folds are assigned to every subject with any row in train or dev (so an
  enrichment subject whose main images are in eval still has a fold for its
  train images); all train/dev rows of a subject carry that fold. Folds are
  stratified like the splits and balanced by the same optimiser (seeded with
  SeedSequence([seed, 1]); the split search uses SeedSequence([seed, 0])).
- Given split (images.given_split or split_file): eval/test and dev are pinned;
  when the source defines no dev at all, its train subjects are divided into
  train and dev by the optimiser (target shares train : dev of `fractions`).
- Duplicate groups (partition.group_duplicates): subjects whose images are
  exact or near copies of each other form one group (grouping.py), and the
  optimiser moves groups, not subjects, for the split and for the folds, so no
  split or outer fold separates a copy from its original; the model stage's
  inner folds group on group_id (folds.inner_folds). A pair with an
  enrichment image pins its group to train, a pair with an external image to
  eval. With a given split the given split wins: only the free subjects
  (train, divided into train and dev) move by group. With no duplicate pair
  every group is one subject and the result is the subject-level one, bit for
  bit. The hashes are written for the audit to reuse (hashing.write_hashes).
- External cohort (partition.external = {column, values}): images whose column
  value is listed are split `external` (no fold), their ROIs follow. They are
  left out of the covariates, the optimiser and the balance objective, so the
  development corpus is split exactly as it would be without them. A subject
  row is `external` when all its images are; a subject with development images
  too keeps its development split on the subject row while its external images
  stay external, and the audit reports it as a subject in two splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..config import fill_defaults
from ..errors import CalcsigError, ConfigError
from ..paths import SCHEMA_DIR, atomic_path
from ..tables import read_table
from .audit import audit_corpus, enforce_policy, write_audit
from .balance import balance_report, write_balance
from .covariates import design_matrix, subject_covariates
from .grouping import PartitionGroups, identity_groups, partition_groups
from .hashing import duplicate_pairs, image_hashes, read_hashes, write_hashes
from .optimiser import optimise_groups

SPLITS = ("train", "dev", "eval")
EXTERNAL = "external"
ASSIGNMENT_COLUMNS = ["level", "subject_id", "image_id", "roi_id", "split", "outer_fold", "group_id"]
GIVEN_TO_SPLIT = {"train": "train", "dev": "dev", "eval": "eval", "test": "eval"}


class PartitionError(CalcsigError):
    """The corpus cannot be split as configured (e.g. a given split that misses subjects)."""


def partition_params(params: dict | None) -> dict:
    """`params` (the config section `partition`) with schema defaults filled in, validated.

    Raises ConfigError naming every wrong key.
    """
    import jsonschema

    with open(SCHEMA_DIR / "config" / "partition.schema.yaml") as fh:
        schema = yaml.safe_load(fh)
    filled = fill_defaults(params or {}, schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(filled), key=lambda e: e.message)
    if errors:
        raise ConfigError(
            "\n".join(
                f"config key '{'.'.join(['partition', *(str(p) for p in e.absolute_path)])}': {e.message}"
                for e in errors
            )
        )
    return filled


def _search_params(params: dict) -> dict:
    return dict(
        n_restarts=params["n_restarts"],
        max_iter=params["max_iterations"],
        patience=params["patience"],
        temperature=params["temperature"],
    )


def in_subsets(images: pd.DataFrame, subsets: list[str]) -> pd.Series:
    """Whether each image's subset (or source:subset) is listed in `subsets`."""
    listed = set(subsets)
    source = images["source"].astype(str) if "source" in images.columns else pd.Series("", index=images.index)
    return images["subset"].astype(str).isin(listed) | (source + ":" + images["subset"].astype(str)).isin(listed)


def in_external(images: pd.DataFrame, external: dict | None) -> pd.Series:
    """Whether each image belongs to the external cohort ({column, values}; None = no cohort)."""
    if not external:
        return pd.Series(False, index=images.index)
    column = external["column"]
    if column not in images.columns:
        raise PartitionError(
            f"partition.external.column {column!r} is not a column of images.tsv "
            f"(has {', '.join(map(str, images.columns))})"
        )
    # compare as text: values in the config are strings, a site column may be read as numbers
    return images[column].astype(str).isin({str(v) for v in external["values"]})


def _subject_given_split(image_split: pd.Series, subject_of: pd.Series, subjects: pd.Index) -> pd.Series:
    """Subject split = the split most of its images hold; ties go to eval, then dev."""
    rank = {"eval": 0, "dev": 1, "train": 2}
    result = {}
    for subject, splits in image_split.dropna().groupby(subject_of.loc[image_split.dropna().index]):
        counts = splits.value_counts()
        top = counts[counts == counts.max()].index
        result[subject] = min(top, key=lambda s: rank[s])
    return pd.Series(result, dtype=object).reindex(subjects)


def _read_split_file(path: str | Path) -> pd.Series:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("subject_id", "split") if c not in frame.columns]
    if missing:
        raise PartitionError(f"{path}: missing column(s) {', '.join(missing)}")
    bad = [
        f"row {i + 2} (subject_id={s}): split {v!r} is not one of train, dev, eval, test"
        for i, (s, v) in enumerate(zip(frame["subject_id"], frame["split"]))
        if v not in GIVEN_TO_SPLIT
    ]
    duplicated = frame["subject_id"][frame["subject_id"].duplicated()].unique()
    bad += [f"subject_id {s} is listed more than once" for s in duplicated]
    if bad:
        raise PartitionError(f"{path}: {len(bad)} problem(s)\n" + "\n".join(f"  - {b}" for b in bad))
    return frame.set_index("subject_id")["split"].map(GIVEN_TO_SPLIT)


def _units_of(subjects: pd.Index, groups: PartitionGroups | None) -> np.ndarray:
    """group_id of each subject (its own ID when the groups do not list it)."""
    if groups is None:
        return subjects.astype(str).to_numpy()
    return groups.group_of.reindex(subjects).fillna(pd.Series(subjects, index=subjects)).astype(str).to_numpy()


def _pin_units(fixed: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Pin every member of a unit where one member is pinned (the lowest pin when they differ: train first)."""
    fixed = fixed.copy()
    frame = pd.DataFrame({"unit": units, "fixed": fixed})
    pins = frame[frame["fixed"] >= 0].groupby("unit")["fixed"].min()
    tied = frame["unit"].map(pins)
    return np.where(tied.notna(), tied.fillna(-1).to_numpy(int), fixed)


def assign_subjects(
    cov,
    images: pd.DataFrame,
    params: dict,
    seed: int,
    given_subject_split: pd.Series | None = None,
    groups: PartitionGroups | None = None,
) -> pd.Series:
    """Split per subject (index of cov.frame): train/dev/eval.

    Subjects with only enrichment images are pinned to train. With a given split
    (subject -> train/dev/eval), eval and dev are pinned; see module docstring.
    With `groups`, the subjects of a group move together and a pinned group is
    pinned whole (a member pinned to train pins the group to train).
    """
    X, _ = design_matrix(cov)
    strata = cov.frame["stratum"].to_numpy()
    subjects = cov.frame.index
    units = _units_of(subjects, groups)
    enrich = in_subsets(images, params["enrichment_subsets"])
    core_subjects = set(images.loc[~enrich, "subject_id"])
    enrichment_only = subjects.isin(set(images.loc[enrich, "subject_id"])) & ~subjects.isin(core_subjects)
    fractions = np.array([params["fractions"][s] for s in SPLITS], float)
    search = _search_params(params)
    group_pin = pd.Series(units).map(groups.pinned if groups is not None else {}).to_numpy(dtype=object)

    if given_subject_split is None:
        fixed = np.where(enrichment_only | (group_pin == "train"), 0, np.where(group_pin == "eval", 2, -1))
        fixed = _pin_units(fixed, units)
        result = optimise_groups(
            strata, X, fractions, seed=np.random.SeedSequence([seed, 0]), fixed=fixed, units=units, **search
        )
        return pd.Series(np.array(SPLITS, dtype=object)[result.groups], index=subjects, name="split")

    given = given_subject_split.reindex(subjects)
    given = given.where(~(pd.Series(enrichment_only, index=subjects) & given.isna()), "train")
    if given.isna().any():
        missing = list(given.index[given.isna()])
        raise PartitionError(
            f"the given split does not cover {len(missing)} subject(s): "
            + ", ".join(missing[:50])
            + (" ..." if len(missing) > 50 else "")
        )
    split = given.astype(object).copy()
    if not (given == "dev").any():
        pool = np.flatnonzero((given == "train").to_numpy())
        if pool.size:
            # a group pinned to eval cannot leave a given train pool: the given split wins, the audit reports it
            fixed = _pin_units(np.where(enrichment_only[pool] | (group_pin[pool] == "train"), 0, -1), units[pool])
            result = optimise_groups(
                strata[pool],
                X[pool],
                fractions[:2],
                seed=np.random.SeedSequence([seed, 0]),
                fixed=fixed,
                units=units[pool],
                **search,
            )
            split.iloc[pool] = np.array(SPLITS[:2], dtype=object)[result.groups]
    return split.rename("split")


def assign_folds(
    cov, subjects_in_folds: pd.Index, params: dict, seed: int, groups: PartitionGroups | None = None
) -> pd.Series:
    """Outer fold 1..K for each subject in `subjects_in_folds`, stratified and balanced (by group with `groups`)."""
    if len(subjects_in_folds) == 0:
        return pd.Series(dtype="Int64", name="outer_fold")
    X, _ = design_matrix(cov)
    rows = cov.frame.index.get_indexer(subjects_in_folds)
    k = params["outer_folds"]
    if len(rows) < k:
        raise PartitionError(f"{len(rows)} train+dev subject(s) cannot fill {k} outer folds")
    result = optimise_groups(
        cov.frame["stratum"].to_numpy()[rows],
        X[rows],
        np.ones(k),
        seed=np.random.SeedSequence([seed, 1]),
        units=_units_of(pd.Index(subjects_in_folds), groups),
        **_search_params(params),
    )
    return pd.Series(result.groups + 1, index=subjects_in_folds, name="outer_fold")


def build_assignment(
    images: pd.DataFrame,
    rois: pd.DataFrame,
    subject_split: pd.Series,
    fold: pd.Series,
    params: dict,
    image_given: pd.Series | None = None,
    group_of: pd.Series | None = None,
) -> pd.DataFrame:
    """The assignment table from subject splits and folds (rules in the module docstring).

    image_given: image_id -> train/dev/eval from the source, or None.
    subject_split may hold `external` for subjects with only external images.
    group_of: subject_id -> group_id (None: each subject its own group).
    """
    enrich = in_subsets(images, params["enrichment_subsets"]).to_numpy()
    image_split = images["subject_id"].map(subject_split).to_numpy(dtype=object)
    if image_given is not None:
        own = images["image_id"].map(image_given).to_numpy(dtype=object)
        follows_subject = (own == "train") & np.isin(image_split, ["train", "dev"])
        keep_own = pd.notna(own) & ~follows_subject
        image_split = np.where(keep_own, own, image_split)
    image_split = np.where(enrich, "train", image_split)
    # an external image is held out whatever its subset or given split says
    image_split = np.where(in_external(images, params.get("external")).to_numpy(), EXTERNAL, image_split)
    image_rows = pd.DataFrame(
        {
            "level": "image",
            "subject_id": images["subject_id"].to_numpy(),
            "image_id": images["image_id"].to_numpy(),
            "roi_id": None,
            "split": image_split,
        }
    )
    split_of_image = image_rows.set_index("image_id")["split"]
    roi_rows = pd.DataFrame(
        {
            "level": "roi",
            "subject_id": rois["image_id"].map(images.set_index("image_id")["subject_id"]),
            "image_id": rois["image_id"],
            "roi_id": rois["roi_id"],
            "split": rois["image_id"].map(split_of_image),
        }
    )
    subject_rows = pd.DataFrame(
        {
            "level": "subject",
            "subject_id": subject_split.index,
            "image_id": None,
            "roi_id": None,
            "split": subject_split.to_numpy(),
        }
    )
    table = pd.concat([subject_rows, image_rows, roi_rows], ignore_index=True)
    fold_of = table["subject_id"].map(fold)
    table["outer_fold"] = fold_of.where(table["split"].isin(["train", "dev"])).astype("Int64")
    group = table["subject_id"].map(group_of) if group_of is not None else pd.Series(np.nan, index=table.index)
    table["group_id"] = group.where(group.notna(), table["subject_id"])
    order = {"subject": 0, "image": 1, "roi": 2}
    table = table.assign(_level=table["level"].map(order)).sort_values(
        ["subject_id", "_level", "image_id", "roi_id"], na_position="first", kind="stable"
    )
    return table.drop(columns="_level")[ASSIGNMENT_COLUMNS].reset_index(drop=True)


def duplicate_groups(
    images: pd.DataFrame, subjects: pd.DataFrame | None, params: dict, hashes: pd.DataFrame | None = None
) -> PartitionGroups:
    """The partition groups of the corpus (grouping.partition_groups) under the partition params.

    hashes: hashing.image_hashes of `images` (read from the images when None).
    With group_duplicates off every subject is its own group.
    """
    listed = list(subjects["subject_id"]) if subjects is not None else []
    if not params["group_duplicates"]:
        return identity_groups(list(images["subject_id"]) + listed)
    if hashes is None:
        hashes, _ = image_hashes(images, params["hash_size"])
    pairs = duplicate_pairs(hashes.reindex(images["image_id"]), params["near_duplicate_hamming"])
    return partition_groups(
        images,
        pairs,
        forced_train=in_subsets(images, params["enrichment_subsets"]),
        held_out=in_external(images, params["external"]),
        subject_ids=listed,
    )


def partition_tables(
    images: pd.DataFrame,
    rois: pd.DataFrame,
    subjects: pd.DataFrame | None,
    params: dict,
    seed: int,
    hashes: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Assignment table, balance table and balance summary from typed corpus tables.

    hashes: image hashes (hashing.image_hashes) for duplicate grouping; read
    from the images when None and partition.group_duplicates is on.
    """
    params = partition_params(params)
    groups = duplicate_groups(images, subjects, params, hashes)
    all_images, all_rois = images, rois
    external = in_external(images, params["external"])
    if external.any():
        if external.all():
            raise PartitionError("partition.external selects every image: no development corpus is left to split")
        # the development corpus alone is covariate-described, optimised and balanced
        images = images.loc[~external]
        rois = rois.loc[rois["image_id"].isin(set(images["image_id"]))]
        if subjects is not None:
            # drop only the external-only subjects: a listed subject without images stays as before
            gone = set(all_images.loc[external, "subject_id"]) - set(images["subject_id"])
            subjects = subjects.loc[~subjects["subject_id"].isin(gone)]
    cov = subject_covariates(
        images,
        rois,
        subjects,
        covariates=params["covariates"],
        numeric_covariates=params["numeric_covariates"],
        morphology=params["morphology"],
        age_bins=params["age_bins"],
        stratify_by=params["stratify_by"],
        min_level_subjects=params["min_level_subjects"],
    )
    given_subject, image_given = None, None
    enrich = in_subsets(images, params["enrichment_subsets"])
    if params["split_file"]:
        given_subject = _read_split_file(params["split_file"])
        # external-only subjects may be listed; their split comes from partition.external
        unknown = sorted(set(given_subject.index) - set(cov.frame.index) - set(all_images.loc[external, "subject_id"]))
        if unknown:
            raise PartitionError(
                f"{params['split_file']}: {len(unknown)} subject(s) not in the corpus: " + ", ".join(unknown[:50])
            )
    elif params["use_given_split"]:
        if "given_split" not in images.columns:
            raise PartitionError("partition.use_given_split is true but images.tsv has no given_split column")
        image_given = images.set_index("image_id")["given_split"].map(GIVEN_TO_SPLIT)
        core = images.loc[~enrich]
        given_subject = _subject_given_split(
            image_given.loc[core["image_id"]].set_axis(core.index), images["subject_id"], cov.frame.index
        )
    subject_split = assign_subjects(cov, images, params, seed, given_subject, groups)
    has_train_rows = set(subject_split.index[subject_split.isin(["train", "dev"])]) | set(
        images.loc[enrich, "subject_id"]
    )
    if image_given is not None:
        has_train_rows |= set(
            images.loc[images["image_id"].map(image_given).isin(["train", "dev"]).to_numpy(), "subject_id"]
        )
    fold = assign_folds(cov, pd.Index([s for s in cov.frame.index if s in has_train_rows]), params, seed, groups)
    external_only = sorted(set(all_images.loc[external, "subject_id"]) - set(subject_split.index))
    full_split = pd.concat([subject_split, pd.Series(EXTERNAL, index=pd.Index(external_only), dtype=object)])
    assignment = build_assignment(all_images, all_rois, full_split, fold, params, image_given, groups.group_of)
    main_folds = fold.loc[[s for s in fold.index if subject_split[s] in ("train", "dev")]]
    table, summary = balance_report(cov, subject_split, main_folds)
    summary["seed"] = int(seed)
    summary["mode"] = (
        "split_file" if params["split_file"] else ("given_split" if params["use_given_split"] else "optimised")
    )
    if params["group_duplicates"]:
        summary["duplicate_groups"] = groups.summary()
    if params["external"]:
        ext_images = all_images.loc[external]
        summary["external"] = {
            "column": params["external"]["column"],
            "values": [str(v) for v in params["external"]["values"]],
            "n_images": int(len(ext_images)),
            "n_subjects": int(ext_images["subject_id"].nunique()),
            "n_subjects_external_only": len(external_only),
        }
    return assignment, table, summary


def write_assignment(assignment: pd.DataFrame, out: str | Path) -> None:
    """Write assignment.tsv atomically (empty cells for missing IDs and eval folds)."""
    with atomic_path(out) as tmp:
        assignment.to_csv(tmp, sep="\t", index=False, na_rep="")


def read_assignment(path: str | Path) -> pd.DataFrame:
    """Read assignment.tsv back with outer_fold as a nullable integer.

    A table without group_id (written before duplicate grouping) reads as one
    group per subject.
    """
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in frame.columns and c != "group_id"]
    if missing:
        raise PartitionError(f"{path}: missing column(s) {', '.join(missing)}")
    if "group_id" not in frame.columns:
        frame["group_id"] = frame["subject_id"]
    frame = frame.replace("", None)
    frame["outer_fold"] = pd.to_numeric(frame["outer_fold"]).astype("Int64")
    return frame


def run_partition(
    images_tsv,
    rois_tsv,
    subjects_tsv,
    params: dict,
    seed: int,
    out_assignment,
    out_balance_tsv,
    out_balance_json,
    out_hashes=None,
    workers: int = 1,
) -> dict:
    """Partition stage: read the corpus tables, split by group, write assignment and balance.

    subjects_tsv may be None (subjects are then those of images.tsv). The images
    are hashed when group_duplicates is on or out_hashes is given; out_hashes
    (optional) keeps the hashes for the audit (hashing.write_hashes). Returns
    the balance summary (also in out_balance_json). workers : processes hashing
    the images (the outputs do not depend on it).
    """
    params = partition_params(params)
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    subjects = read_table(subjects_tsv, "subjects") if subjects_tsv else None
    hashes = None
    if params["group_duplicates"] or out_hashes:
        hashes, unreadable = image_hashes(images, params["hash_size"], workers)
    assignment, table, summary = partition_tables(images, rois, subjects, params, seed, hashes)
    if out_hashes:
        write_hashes(hashes, unreadable, out_hashes)
    write_assignment(assignment, out_assignment)
    write_balance(table, summary, out_balance_tsv, out_balance_json)
    return summary


def run_audit(
    images_tsv,
    rois_tsv,
    assignment_tsv,
    params: dict,
    out_json,
    out_table,
    hashes_tsv=None,
    inner_folds: int | None = None,
    seed: int | None = None,
) -> dict:
    """Audit stage: check the assignment for leaks at every level, write audit.json and the table, apply the policy.

    hashes_tsv: the partition's hash table (read instead of the images when
    given). inner_folds, seed: model.inner_folds and model.seed; with both, the
    inner folds of every outer fold are checked (folds.inner_folds). The report
    is written before the policy is applied, so with audit_policy fail the
    AuditError (listing every violation) leaves the files for a person to read.
    Returns the audit report.
    """
    params = partition_params(params)
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    assignment = read_assignment(assignment_tsv)
    hashes, unreadable = read_hashes(hashes_tsv, images, params["hash_size"]) if hashes_tsv else (None, None)
    report = audit_corpus(
        images,
        rois,
        assignment,
        declared_enrichment=params["declared_enrichment"],
        hamming=params["near_duplicate_hamming"],
        hash_size=params["hash_size"],
        policy=params["audit_policy"],
        hashes=hashes,
        unreadable=unreadable,
        inner_folds=inner_folds,
        seed=seed,
    )
    write_audit(report, out_json, out_table)
    enforce_policy(report, str(out_json))
    return report
