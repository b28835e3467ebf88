"""Model-stage parameters, grids and data: what a model job reads before it fits anything.

- :func:`resolve_params` the ``model`` config section completed from its schema;
- :func:`model_names` / :func:`outer_folds` the workflow's wildcards;
- :func:`load_grid` one model's hyper-parameter grid from the grid file the caller names;
- :func:`load_model_data` the cases (the cohort's included ROIs, with the
  partition's split, outer fold and group) and their features.
"""

from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..cohort import cohort_summary, read_cohort
from ..errors import TableError
from ..paths import SCHEMA_DIR
from ..tables import read_table
from .aggregation import objects_by_roi

log = logging.getLogger(__name__)

GLOBAL_PREFIXES = ("n_objects", "topo_", "hc_", "dist_")
EXTERNAL = "external"  # split of the external cohort in assignment.tsv and fold of its predictions
MODEL_KINDS = ("bag_of_objects", "mean_std", "mask_brf", "no_enrichment", "fine_class")


def _schema_defaults(schema: dict) -> dict:
    out = {}
    for key, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            out[key] = _schema_defaults(prop)
        elif "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
    return out


@functools.cache
def _defaults() -> dict:
    with open(SCHEMA_DIR / "config" / "model.schema.yaml") as fh:
        return _schema_defaults(yaml.safe_load(fh))


def resolve_params(params: dict | None) -> dict:
    """The model section with every missing key filled from the schema's defaults."""
    params = dict(params or {})
    unknown = set(params) - set(_defaults())
    if unknown:
        raise ValueError(f"unknown model parameter(s): {sorted(unknown)}")
    out = copy.deepcopy(_defaults())
    for key, value in params.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key].update(value)
        else:
            out[key] = value
    if out["seed"] is None:  # the workflow passes the top-level seed; on its own the library uses 0
        out["seed"] = 0
    if out["margin_sensitivity"] > out["target_sensitivity"]:
        raise ValueError(
            f"model.margin_sensitivity ({out['margin_sensitivity']}) must not exceed model.target_sensitivity "
            f"({out['target_sensitivity']})"
        )
    return out


def model_names(params: dict | None) -> list[str]:
    """The models this configuration runs, main model first (for the workflow's wildcards)."""
    p = resolve_params(params)
    names = [p["main_model"]]
    for name in ("mean_std", "mask_brf"):
        if p["baselines"][name] and name not in names:
            names.append(name)
    if p["baselines"]["enrichment_ablation"]:
        names.append("no_enrichment")
    if p["multiclass"]:
        # whether the corpus has enough fine classes is only known at run time (the job may skip)
        names.append("fine_class")
    return names


def outer_folds(assignment_tsv) -> list[str]:
    """The outer fold labels of a partition ("1".."K"), in numeric order (for the workflow's wildcards)."""
    a = pd.read_csv(assignment_tsv, sep="\t", dtype=str, keep_default_na=False)
    folds = {f for f in a.loc[a["split"].isin(["train", "dev"]), "outer_fold"] if f}
    return sorted(folds, key=lambda f: (len(f), f))


def grid_section(params: dict, model_name: str) -> str:
    """The grid file entry a model searches (no_enrichment and fine_class use the main model's)."""
    return params["main_model"] if model_name in ("no_enrichment", "fine_class") else model_name


def load_grid(grid_file, params: dict, model_name: str) -> dict:
    """The grid named ``params["grid"]`` in `grid_file` for one model, as {parameter: list of values}."""
    path = Path(grid_file)
    if not path.exists():
        raise FileNotFoundError(f"{path}: grid file not found (config model.grid_file)")
    with open(path) as fh:
        grids = yaml.safe_load(fh) or {}
    if params["grid"] not in grids:
        raise ValueError(f"{path}: no grid named {params['grid']!r} (has {sorted(grids)}; config model.grid)")
    section = grid_section(params, model_name)
    grid = grids[params["grid"]].get(section)
    if grid is None:
        raise ValueError(f"{path}: grid {params['grid']!r} has no entry for model {section!r}")
    if section == "mean_std":
        grid = {k: v for k, v in grid.items() if not k.startswith("aggregate__n_clusters")}
    return {k: list(v) for k, v in grid.items()}


@dataclass
class ModelData:
    """Everything a model job needs: one row of `cases` per included ROI, and its objects.

    `cases` has roi_id, subject_id, group_id (the partition's duplicate-aware
    group, else the subject), image_id, split, outer_fold, label (0/1),
    fine_class (None where unknown) and the global feature columns
    `global_columns`; `objects` is the per-ROI object DataFrames aligned with
    its rows (:func:`calcsig.model.aggregation.objects_by_roi`).
    """

    cases: pd.DataFrame
    objects: np.ndarray
    images: pd.DataFrame
    global_columns: list[str]
    cohort_summary: dict


def _global_columns(roi_feats: pd.DataFrame, prefixes, where) -> list[str]:
    names = [c for c in roi_feats.columns if c.startswith(tuple(prefixes))]
    text = [
        c
        for c in names
        if not (pd.api.types.is_numeric_dtype(roi_feats[c]) or pd.api.types.is_bool_dtype(roi_feats[c]))
    ]
    if text:
        log.warning("%s: non-numeric column(s) not used as features: %s", where, text)
    return [c for c in names if c not in text]


def load_model_data(
    *,
    objects,
    rois,
    assignment,
    images,
    cohort,
    global_prefixes=GLOBAL_PREFIXES,
) -> ModelData:
    """The cases of the model stage: the cohort's included ROIs, with partition, labels and features.

    `objects` / `rois` are the gathered feature tables (parquet), `assignment`
    the partition (assignment.tsv), `images` images.tsv, `cohort` the
    cohort table (results/cohort/rois.tsv, `calcsig.cohort`). Global features are the
    numeric columns of the ROI table starting with one of `global_prefixes`
    (``qc_*`` columns describe the extraction, not the calcifications, and are
    left out by default). An included ROI that the partition or the feature
    table lacks is an error naming the ROIs.
    """
    assign = pd.read_csv(assignment, sep="\t", dtype=str, keep_default_na=False)
    assign = assign[assign["level"] == "roi"].drop_duplicates("roi_id").set_index("roi_id")
    image_table = read_table(images, "images")
    roi_feats = pd.read_parquet(rois)
    roi_feats["roi_id"] = roi_feats["roi_id"].astype(str)
    table = read_cohort(cohort)
    where = str(cohort)
    included = table[table["included"]].copy()
    unassigned = sorted(set(included["roi_id"]) - set(assign.index))
    if unassigned:
        raise TableError(
            f"{assignment}",
            [f"ROI {r} is included in the cohort ({where}) but has no partition row" for r in unassigned],
        )
    unfeatured = sorted(set(included["roi_id"]) - set(roi_feats["roi_id"]))
    if unfeatured:
        raise TableError(
            f"{rois}",
            [f"ROI {r} is included in the cohort ({where}) but has no feature row" for r in unfeatured]
            + ["rerun the features stage for these ROIs, or exclude them in the cohort table"],
        )
    part = assign.loc[included["roi_id"]]
    cases = pd.DataFrame(
        {
            "roi_id": included["roi_id"].to_numpy(),
            "subject_id": np.where(included["subject_id"] != "", included["subject_id"], part["subject_id"]),
            "image_id": np.where(included["image_id"] != "", included["image_id"], part["image_id"]),
            "split": part["split"].to_numpy(),
            "outer_fold": part["outer_fold"].to_numpy(),
        }
    )
    blank = cases["subject_id"] == ""
    cases.loc[blank, "subject_id"] = cases.loc[blank, "image_id"].map(
        image_table.set_index(image_table["image_id"].astype(str))["subject_id"].astype(str)
    )
    group = part["group_id"].to_numpy() if "group_id" in part.columns else np.full(len(part), "")
    cases.insert(2, "group_id", np.where(group != "", group, cases["subject_id"].to_numpy()))
    cases["label"] = (included["label"].to_numpy() == "actionable").astype(int)
    fine = included["fine_class"].to_numpy(dtype=object)
    cases["fine_class"] = np.where(fine != "", fine, None)
    globals_ = _global_columns(roi_feats, global_prefixes, rois)
    feats = roi_feats[["roi_id", *globals_]].drop_duplicates("roi_id")
    cases = cases.merge(feats, on="roi_id", how="left").reset_index(drop=True)
    object_table = pd.read_parquet(objects)
    return ModelData(
        cases=cases,
        objects=objects_by_roi(object_table, cases["roi_id"]),
        images=image_table,
        global_columns=globals_,
        cohort_summary=cohort_summary(table),
    )
