"""Fold orchestration: one model on one outer fold (or the final model), and gathering the predictions.

- :func:`run_outer_fold` / :func:`run_final`: file paths in, the job's
  ``predictions.parquet`` and ``search.json`` out;
- :func:`predict_cases`: the same on loaded data (:class:`calcsig.model.data.ModelData`);
- :func:`gather_predictions`: one predictions table for every job.

Prediction rows (``PREDICTION_COLUMNS``): roi_id, subject_id, group_id,
image_id, model, fold (outer fold number, ``eval`` or ``external``), label,
probability, then each operating point's call and the threshold it was made
at: predicted / threshold (the exact target) and predicted_margin /
threshold_margin (the margin point). The fine-class model has no threshold
(its calls are the most probable class's; thresholds are null) and adds
``MULTICLASS_COLUMNS``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import atomic_path
from . import baselines, thresholds
from .aggregation import OBJECTS
from .data import EXTERNAL, MODEL_KINDS, ModelData, load_grid, load_model_data, resolve_params
from .fitting import CaseSet
from .multiclass import TooFewClasses, fit_predict_fold_multiclass
from .nested_cv import fit_predict_fold
from .pipeline import build_mask_forest, build_pipeline
from .records import write_json

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = [
    "roi_id",
    "subject_id",
    "group_id",
    "image_id",
    "model",
    "fold",
    "label",
    "probability",
    "predicted",
    "threshold",
    "predicted_margin",
    "threshold_margin",
]
# extra columns of the multi-class model's rows (missing, i.e. null, for the other models)
MULTICLASS_COLUMNS = ["true_class", "predicted_class", "class_probabilities"]


def build_estimator(model_name: str, params: dict):
    """The unfitted pipeline of a model, from the resolved parameters."""
    seed, n_jobs = params["seed"], params["n_jobs"]
    if model_name in ("bag_of_objects", "mean_std", "no_enrichment", "fine_class"):
        aggregation = params["main_model"] if model_name in ("no_enrichment", "fine_class") else model_name
        return build_pipeline(
            aggregation,
            n_init=params["kmeans_n_init"],
            families=tuple(params["families"]),
            seed=seed,
            n_jobs=n_jobs,
            smote_k_neighbors=params["smote_k_neighbors"],
            enn_n_neighbors=params["enn_n_neighbors"],
            # no SMOTE-ENN for fine classes: interpolating within tiny classes mostly adds noise,
            # and macro-F1 model selection already weighs every class equally
            resample=params["resample"] and model_name != "fine_class",
        )
    if model_name == "mask_brf":
        return build_mask_forest(seed=seed, n_jobs=n_jobs, n_estimators=params["brf_n_estimators"])
    raise ValueError(f"unknown model {model_name!r}; expected one of {MODEL_KINDS}")


def fold_cases(cases: pd.DataFrame, fold) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training cases, held-out cases) of outer fold `fold` (1..K), or of the final model (`"eval"`).

    The final model's held-out cases are the eval and the external ROIs; an
    outer fold never touches external ROIs (they are neither trained on nor
    predicted there). Rows keep the index of `cases`.
    """
    dev = cases["split"].isin(["train", "dev"])
    if str(fold) == "eval":
        return cases[dev], cases[cases["split"].isin(["eval", EXTERNAL])]
    folds = set(cases.loc[dev, "outer_fold"])
    if str(fold) not in folds:
        raise ValueError(f"outer fold {fold!r} not in the partition (folds {sorted(folds)})")
    held = dev & (cases["outer_fold"] == str(fold))
    return cases[dev & ~held], cases[held]


def case_set(data: ModelData, rows: pd.DataFrame, model_name: str, params: dict, masks=None) -> CaseSet:
    """The cases of `rows` (rows of ``data.cases``) as a model's inputs: X, labels, groups, ids.

    The mask forest's X is the resized masks' pixels; every other model's X
    is the global features with the ROI's objects in an ``objects`` column.
    """
    positions = data.cases.index.get_indexer(rows.index)
    ids = rows["roi_id"].to_numpy()
    if model_name == "mask_brf":
        if masks is None:
            raise ValueError("model mask_brf needs the ROI masks (masks_dir, a mapping or a callable)")
        X = baselines.mask_pixels(ids, masks, params["mask_size"])
    else:
        X = rows[data.global_columns].assign(**{OBJECTS: data.objects[positions]})
    return CaseSet(X=X, y=rows["label"].to_numpy().astype(int), groups=rows["group_id"].to_numpy(), ids=ids)


def _fold_labels(test: pd.DataFrame, fold) -> np.ndarray:
    """The predictions' fold column: the fold, or ``external`` for external ROIs (final model only)."""
    return np.where(test["split"].to_numpy() == EXTERNAL, EXTERNAL, str(fold)).astype(object)


def _base_rows(test: pd.DataFrame, fold, model_name: str) -> dict:
    return {
        "roi_id": test["roi_id"].to_numpy(),
        "subject_id": test["subject_id"].to_numpy(),
        "group_id": test["group_id"].to_numpy(),
        "image_id": test["image_id"].to_numpy(),
        "model": model_name,
        "fold": _fold_labels(test, fold),
        "label": test["label"].to_numpy().astype(int),
    }


def predict_cases(data: ModelData, params, fold, model_name, grid_file, masks=None):
    """Nested-CV fit on the fold's training cases and prediction of its held-out cases.

    Returns (predictions DataFrame with ``PREDICTION_COLUMNS``, run record dict).
    """
    params = resolve_params(params)
    if model_name not in MODEL_KINDS:
        raise ValueError(f"unknown model {model_name!r}; expected one of {MODEL_KINDS}")
    train, test = fold_cases(data.cases, fold)
    record = {
        "model": model_name,
        "fold": str(fold),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "cohort": data.cohort_summary,
    }
    if (test["split"] == EXTERNAL).any():
        record["n_external"] = int((test["split"] == EXTERNAL).sum())
    if model_name == "no_enrichment":
        en = params["enrichment"]
        drop = baselines.enrichment_mask(data.images, train["image_id"], en["column"], en["value"])
        record["enrichment_removed"] = int(drop.sum())
        train = train[~drop]
        log.info("no_enrichment: %d training ROI(s) of %s=%s removed", drop.sum(), en["column"], en["value"])
    shared = set(train["group_id"]) & set(test["group_id"])
    if shared:
        log.warning("%d subject group(s) on both sides of fold %s (declared enrichment?)", len(shared), fold)
    record["subjects_on_both_sides"] = sorted(shared)
    grid = load_grid(grid_file, params, model_name)
    train_set = case_set(data, train, model_name, params, masks)
    test_set = case_set(data, test, model_name, params, masks)
    if model_name == "fine_class":
        pred, extra = _predict_fine_class(train, test, train_set, test_set, grid, params, fold)
        record.update(extra)
        return pred, record
    result = fit_predict_fold(
        build_estimator(model_name, params),
        train_set,
        test_set,
        grid,
        inner_folds=params["inner_folds"],
        target_sensitivity=params["target_sensitivity"],
        margin_sensitivity=params["margin_sensitivity"],
        seed=params["seed"],
    )
    record.update(result.record())
    record["operating_point_rules"] = {
        p: thresholds.rule(p, params["target_sensitivity"], params["margin_sensitivity"])
        for p in thresholds.OPERATING_POINTS
    }
    points = result.search.operating_points
    pred = pd.DataFrame(
        {
            **_base_rows(test, fold, model_name),
            "probability": result.probability.astype(float),
            "predicted": result.predicted.astype(int),
            "threshold": np.full(len(test), points["target"]["threshold"], dtype=float),
            "predicted_margin": result.predicted_margin.astype(int),
            "threshold_margin": np.full(len(test), points["margin"]["threshold"], dtype=float),
        }
    )
    return pred, record


def _predict_fine_class(train, test, train_set, test_set, grid, params, fold) -> tuple[pd.DataFrame, dict]:
    """The multi-class model on one fold: contract rows plus true_class, predicted_class, class_probabilities.

    When the training set has fewer than two fine classes that can be
    cross-validated, the fold is skipped: no rows (with the full set of
    columns) and the reason under ``skipped`` in the record.
    """
    try:
        result = fit_predict_fold_multiclass(
            build_estimator("fine_class", params),
            train_set,
            train["fine_class"].to_numpy(),
            test_set,
            grid,
            inner_folds=params["inner_folds"],
            seed=params["seed"],
        )
    except TooFewClasses as err:
        reason = f"fine_class skipped on fold {fold}: {err}"
        log.warning(reason)
        return _empty_predictions(), {"skipped": reason}
    true_class = test["fine_class"].astype(object).where(test["fine_class"].notna(), None).to_numpy()
    pred = pd.DataFrame(
        {
            **_base_rows(test, fold, "fine_class"),
            "probability": result.probability.astype(float),
            "predicted": result.predicted.astype(int),
            "threshold": np.full(len(test), np.nan),
            "predicted_margin": result.predicted.astype(int),
            "threshold_margin": np.full(len(test), np.nan),
            "true_class": true_class,
            "predicted_class": result.predicted_class.astype(object),
            # one JSON column rather than one per class: other models' rows and other folds'
            # class sets concatenate cleanly
            "class_probabilities": [
                json.dumps(dict(zip(result.classes, map(float, row)))) for row in result.class_probability
            ],
        }
    )
    record = {
        **result.record,
        "operating_point_rules": {
            p: "the most probable fine class is an actionable one (no threshold)" for p in thresholds.OPERATING_POINTS
        },
    }
    return pred, record


def _empty_predictions() -> pd.DataFrame:
    dtypes = {c: object for c in PREDICTION_COLUMNS + MULTICLASS_COLUMNS}
    dtypes.update({"label": int, "predicted": int, "predicted_margin": int})
    dtypes.update({"probability": float, "threshold": float, "threshold_margin": float})
    return pd.DataFrame({c: np.array([], dtype=t) for c, t in dtypes.items()})


def run_outer_fold(
    *,
    objects,
    rois,
    assignment,
    images,
    grid,
    params,
    fold,
    model_name,
    out_dir,
    cohort,
    masks_dir=None,
) -> dict:
    """One model on one outer fold: writes ``out_dir/predictions.parquet`` and ``out_dir/search.json``.

    Inputs are file paths: the gathered features (`objects`, `rois`), the
    partition (`assignment`), images.tsv, the grid file (`grid`), and the
    cohort table (`cohort`, see :mod:`calcsig.cohort`). `fold` is the outer fold
    number (1..K) or ``"eval"`` for the final model. `masks_dir` (directory of
    ``{roi_id}.npz``) is needed by ``mask_brf`` only. Returns the paths written.
    """
    p = resolve_params(params)
    data = load_model_data(
        objects=objects,
        rois=rois,
        assignment=assignment,
        images=images,
        cohort=cohort,
        global_prefixes=p["global_prefixes"],
    )
    pred, record = predict_cases(data, params, fold, model_name, grid, masks_dir)
    out_dir = Path(out_dir)
    paths = {"predictions": out_dir / "predictions.parquet", "search": out_dir / "search.json"}
    with atomic_path(paths["predictions"]) as tmp:
        pred.to_parquet(tmp, index=False)
    write_json(paths["search"], record)
    return paths


def run_final(**inputs) -> dict:
    """The final model: inner search and refit on all of train+dev, eval (and external) predicted once.

    Takes the keyword arguments of :func:`run_outer_fold` except `fold`.
    """
    return run_outer_fold(fold="eval", **inputs)


def gather_predictions(predictions_parquets, out_parquet) -> pd.DataFrame:
    """Concatenate per-job predictions into results/model/predictions.parquet (checked for duplicates)."""
    frames = [pd.read_parquet(p) for p in predictions_parquets]
    # a skipped job's file has no rows: leave it out so it cannot change the columns' types
    frame = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    dup = frame.duplicated(["roi_id", "model", "fold"])
    if dup.any():
        raise ValueError(f"duplicate predictions for {int(dup.sum())} (roi, model, fold) row(s)")
    frame = frame.sort_values(["model", "fold", "roi_id"]).reset_index(drop=True)
    with atomic_path(out_parquet) as tmp:
        frame.to_parquet(tmp, index=False)
    return frame
