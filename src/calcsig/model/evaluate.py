"""Evaluation of the model stage: metrics, curves, operating points and comparisons into models.json and a TSV.

``models.json``:

- ``cohort``: counts of the cohort the models saw (included by label and
  split, excluded by reason), from the jobs' search records;
- ``models[name][level][set]`` (level roi | image | breast; set cv = the
  pooled outer-fold predictions, eval = the final model on eval, external =
  the final model on the external cohort, present when there are any):
  ``metrics`` {name: {value, ci_low, ci_high}}, ``confusion``,
  ``threshold_table``, ``benign_biopsies_avoided``, ``brier``,
  ``reliability``, ``net_benefit``, ``roc`` (101-point curve with a pointwise
  cluster-bootstrap band), ``pr`` and ``operating_points`` (``target`` and
  ``margin``: threshold, rule, sensitivity, specificity, benign biopsies
  avoided with its interval, confusion matrix);
  ``models[name]["roi"]["folds"][k]`` per outer fold (with ``roc`` without
  band); ``by_fine_class``, ``multiclass`` and ``skipped_folds`` as before;
- ``comparisons``: every pair of models per level and set
  (:mod:`calcsig.model.comparisons`);
- ``settings``: the parameters that shaped the numbers.

Every interval resamples clusters (the partition's ``group_id``, else the
subject), never single cases, with the same stratified bootstrap.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..tables import read_table
from . import comparisons as comparing
from . import curves, metrics, thresholds
from .data import EXTERNAL, model_names, resolve_params
from .flat_table import write_flat_table
from .levels import breast_level, image_level
from .records import write_json

log = logging.getLogger(__name__)

SETS = ("cv", "eval", EXTERNAL)
OPERATING_POINT_COLUMNS = {"target": ("predicted", "threshold"), "margin": ("predicted_margin", "threshold_margin")}
BREAST_FUSION = (
    "a breast (subject + laterality) is positive when any of its views is, i.e. when its highest view "
    "probability reaches the operating point's threshold: the published CC + MLO fusion with that threshold "
    "in place of 0.5"
)


def set_of(fold: pd.Series) -> np.ndarray:
    """Evaluation set of each prediction: eval and external as such, every outer fold pooled into cv."""
    fold = fold.astype(str).to_numpy()
    return np.where(np.isin(fold, ["eval", EXTERNAL]), fold, "cv").astype(object)


def _sets(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{set: rows} for cv, eval and external (a set may be empty)."""
    of = set_of(frame["fold"])
    return {s: frame[of == s] for s in SETS}


def _clusters(frame: pd.DataFrame) -> np.ndarray:
    return comparing.clusters_of(frame)


def _bootstrap_kw(params: dict) -> dict:
    return dict(n_boot=params["bootstrap_repeats"], level=params["ci_level"], seed=params["seed"])


def _rule(frame: pd.DataFrame, point: str, params: dict) -> str:
    if frame[OPERATING_POINT_COLUMNS[point][1]].isna().all():
        return "the most probable fine class is an actionable one (no threshold)"
    return thresholds.rule(point, params["target_sensitivity"], params["margin_sensitivity"])


def operating_point_report(frame: pd.DataFrame, point: str, params: dict) -> dict:
    """One operating point on one set: threshold, rule, sensitivity, specificity, benign biopsies avoided, confusion.

    ``threshold`` is the threshold the set's calls were made at; on cv, whose
    outer folds each chose their own, it is null and ``thresholds_by_fold``
    lists them. ``benign_biopsies_avoided`` is the fraction of benign cases
    called benign (the specificity), with its cluster-bootstrap interval;
    ``intervals`` gives sensitivity and specificity with theirs.
    """
    called, threshold_column = OPERATING_POINT_COLUMNS[point]
    y, p, yhat = frame["label"].to_numpy(), frame["probability"].to_numpy(), frame[called].to_numpy()
    with_ci = metrics.metrics_with_ci(y, p, yhat, _clusters(frame), **_bootstrap_kw(params))
    by_fold = frame.groupby("fold", sort=True)[threshold_column].first()
    unique = by_fold.dropna().unique()
    out = {
        "threshold": float(unique[0]) if len(unique) == 1 and len(by_fold) == 1 else None,
        "rule": _rule(frame, point, params),
        "sensitivity": with_ci["sensitivity"]["value"],
        "specificity": with_ci["specificity"]["value"],
        "benign_biopsies_avoided": with_ci["specificity"],
        "confusion": metrics.confusion(y, yhat),
        "intervals": {m: with_ci[m] for m in ("sensitivity", "specificity")},
    }
    if len(by_fold) > 1:
        out["thresholds_by_fold"] = {str(k): metrics.finite_or_none(v) for k, v in by_fold.items()}
    return out


def set_report(frame: pd.DataFrame, params: dict) -> dict:
    """Everything reported for one model, level and set."""
    y, p, yhat = frame["label"].to_numpy(), frame["probability"].to_numpy(), frame["predicted"].to_numpy()
    clusters = _clusters(frame)
    kw = _bootstrap_kw(params)
    report = metrics.full_report(y, p, yhat, clusters, calibration_bins=params["calibration_bins"], **kw)
    report["roc"] = curves.roc_with_band(y, p, clusters, **kw)
    report["pr"] = curves.pr_curve(y, p)
    report["operating_points"] = {
        point: operating_point_report(frame, point, params) for point in OPERATING_POINT_COLUMNS
    }
    return report


def fold_report(frame: pd.DataFrame, params: dict) -> dict:
    """The short report of one outer fold: metrics with intervals, confusion, ROC without band."""
    y, p, yhat = frame["label"].to_numpy(), frame["probability"].to_numpy(), frame["predicted"].to_numpy()
    return {
        "n": int(len(y)),
        "metrics": metrics.metrics_with_ci(y, p, yhat, _clusters(frame), **_bootstrap_kw(params)),
        "confusion": metrics.confusion(y, yhat),
        "roc": curves.roc_on_grid(y, p),
    }


def _read_predictions(predictions_parquets) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in predictions_parquets]
    pred = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    pred["fold"] = pred["fold"].astype(str)
    if "predicted_margin" not in pred.columns:  # predictions from before the margin point: one call only
        pred["predicted_margin"] = pred["predicted"]
    for column in ("threshold", "threshold_margin"):
        if column not in pred.columns:
            pred[column] = np.nan
    return pred


def _search_records(predictions_parquets) -> list[dict]:
    """The ``search.json`` written beside each per-job predictions file (none beside a gathered file)."""
    records = []
    for p in predictions_parquets:
        search = Path(p).with_name("search.json")
        if search.exists():
            records.append(json.loads(search.read_text()))
    return records


def _cohort(records: list[dict]) -> dict | None:
    summaries = [r["cohort"] for r in records if "cohort" in r]
    if not summaries:
        return None
    if any(s != summaries[0] for s in summaries[1:]):
        raise ValueError("the model jobs saw different cohorts: rerun them on the same cohort table")
    return summaries[0]


def evaluate_models(predictions_parquets, images_tsv, params, out_json, out_tsv, corpus_rois_tsv=None) -> dict:
    """Metrics, curves, operating points and comparisons of every model (module docstring) into JSON and TSV.

    `predictions_parquets` is one gathered predictions file or the list of
    per-job files (then the ``search.json`` beside each gives the cohort
    counts and the reasons of skipped jobs). When the corpus ROI table is
    given, the call rate per fine class is added (and image ids are taken
    from it if the predictions lack them). The TSV is the flat table of
    :mod:`calcsig.model.flat_table`.
    """
    params = resolve_params(params)
    if isinstance(predictions_parquets, (str, Path)):
        predictions_parquets = [predictions_parquets]
    records = _search_records(predictions_parquets)
    skipped = _skip_reasons(records)
    pred = _read_predictions(predictions_parquets)
    images = read_table(images_tsv, "images")
    if "image_id" not in pred.columns and corpus_rois_tsv is None:
        raise ValueError("predictions have no image_id column: pass corpus_rois_tsv to map ROIs to images")
    fine = None
    if corpus_rois_tsv is not None:
        corpus = read_table(corpus_rois_tsv, "rois")
        by_roi = corpus.set_index(corpus["roi_id"].astype(str))
        if "image_id" not in pred.columns:
            pred["image_id"] = pred["roi_id"].astype(str).map(by_roi["image_id"])
        if "fine_class" in corpus.columns and corpus["fine_class"].notna().any():
            fine = by_roi["fine_class"]
    models, per_level = {}, {}
    for name, mp in pred.groupby("model", sort=True):
        image = image_level(mp)
        levels = {"roi": mp, "image": image, "breast": breast_level(image, images)}
        per_level[name] = levels
        entry = {}
        for level, frame in levels.items():
            sets = _sets(frame)
            entry[level] = {s: set_report(f, params) for s, f in sets.items() if len(f)}
            if level == "roi":
                entry[level]["folds"] = {k: fold_report(f, params) for k, f in sets["cv"].groupby("fold", sort=True)}
        if fine is not None:
            entry["by_fine_class"] = _by_fine_class(mp, fine)
        if {"true_class", "predicted_class"} <= set(mp.columns) and mp["true_class"].notna().any():
            entry["multiclass"] = _multiclass_report(mp, params)
        if name in skipped:
            entry["skipped_folds"] = skipped[name]
        models[name] = entry
    for name, reasons in skipped.items():
        if name not in models:
            models[name] = {"skipped": "; ".join(reasons[k] for k in sorted(reasons))}
            log.warning("model %s has no predictions: %s", name, models[name]["skipped"])
    order = [m for m in model_names(params) if m in per_level] + sorted(set(per_level) - set(model_names(params)))
    result = {"main_model": params["main_model"]}
    cohort = _cohort(records)
    if cohort is not None:
        result["cohort"] = cohort
    result["settings"] = _settings(params)
    result["models"] = models
    result["comparisons"] = comparing.compare_models(per_level, order, params, set_of)
    result = write_json(out_json, result)
    write_flat_table(result, out_tsv)
    return result


def _settings(params: dict) -> dict:
    keys = (
        "target_sensitivity",
        "margin_sensitivity",
        "bootstrap_repeats",
        "ci_level",
        "seed",
        "mcnemar_exact_below",
        "grid",
    )
    return {
        **{k: params[k] for k in keys},
        "operating_points": {
            p: thresholds.rule(p, params["target_sensitivity"], params["margin_sensitivity"])
            for p in thresholds.OPERATING_POINTS
        },
        "breast_fusion": BREAST_FUSION,
        "clusters": "group_id of the partition (duplicate-aware subject groups) when present, else subject_id",
        "p_adjustment": comparing.P_ADJUSTMENT,
        "p_adjustment_family": comparing.P_ADJUSTMENT_FAMILY,
        "quote": comparing.QUOTE,
    }


def _skip_reasons(records: list[dict]) -> dict[str, dict[str, str]]:
    """{model: {fold: reason}} of the jobs whose search record says they were skipped."""
    out: dict[str, dict[str, str]] = {}
    for rec in records:
        if rec.get("skipped"):
            out.setdefault(str(rec["model"]), {})[str(rec["fold"])] = str(rec["skipped"])
    return out


def _multiclass_report(pred: pd.DataFrame, params: dict) -> dict:
    """Fine-class metrics per set (pooled outer folds, eval) over the ROIs whose true class is known."""
    known = pred[pred["true_class"].notna() & pred["predicted_class"].notna()]
    labels = sorted(set(known["true_class"].astype(str)) | set(known["predicted_class"].astype(str)))
    out = {}
    for s, f in _sets(known).items():
        if len(f):
            out[s] = metrics.multiclass_metrics_with_ci(
                f["true_class"].astype(str),
                f["predicted_class"].astype(str),
                _clusters(f),
                f["label"].to_numpy(),
                labels=labels,
                **_bootstrap_kw(params),
            )
    return out


def _by_fine_class(pred: pd.DataFrame, fine: pd.Series) -> dict:
    """Per set and fine class: number of ROIs and the fraction called actionable."""
    df = pred.assign(
        fine_class=pred["roi_id"].astype(str).map(fine).fillna("unknown").astype(str), set=set_of(pred["fold"])
    )
    out = {}
    for (s, fc), g in df.groupby(["set", "fine_class"], sort=True):
        out.setdefault(s, {})[fc] = {"n": int(len(g)), "called_actionable": float(g["predicted"].mean())}
    return out
