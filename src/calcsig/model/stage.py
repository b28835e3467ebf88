"""Entry points of the model and evaluate stages: file paths and plain parameters in, files out.

- :func:`run_outer_fold` one model on one outer fold (or the final model on eval);
- :func:`run_final` the final model: refit on train+dev, eval (and the external
  cohort, fold ``external``, when the partition has one) predicted once;
- :func:`gather_predictions` concatenate the per-job predictions;
- :func:`evaluate_models` metrics with CIs at ROI, image and breast level, and
  the comparison tests, into ``models.json`` and a flat TSV.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..cohort import read_cohort
from ..paths import REPO_ROOT, SCHEMA_DIR, atomic_path
from ..tables import read_table
from . import baselines, metrics, stats
from .aggregation import ObjectTable
from .multiclass import TooFewClasses, fit_predict_fold_multiclass
from .nested_cv import fit_predict_fold
from .pipeline import build_pipeline

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["roi_id", "subject_id", "image_id", "model", "fold", "label", "probability", "predicted"]
# extra columns of the multi-class model's rows (missing, i.e. null, for the other models)
MULTICLASS_COLUMNS = ["true_class", "predicted_class", "class_probabilities"]
GLOBAL_PREFIXES = ("n_objects", "topo_", "hc_", "dist_")
EXTERNAL = "external"  # split of the external cohort in assignment.tsv and fold of its predictions
MODEL_KINDS = ("bag_of_objects", "mean_std", "mask_brf", "no_enrichment", "fine_class")


# ---------------------------------------------------------------- parameters


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


def load_grid(params: dict, model_name: str) -> dict:
    """The named grid of the grid file for one model (no_enrichment and fine_class use the main model's grid)."""
    path = Path(params["grid_file"])
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    with open(path) as fh:
        grids = yaml.safe_load(fh)
    if params["grid"] not in grids:
        raise ValueError(f"{path}: no grid named {params['grid']!r} (has {sorted(grids)})")
    section = params["main_model"] if model_name in ("no_enrichment", "fine_class") else model_name
    grid = grids[params["grid"]].get(section)
    if grid is None:
        raise ValueError(f"{path}: grid {params['grid']!r} has no entry for model {section!r}")
    if section == "mean_std":
        grid = {k: v for k, v in grid.items() if not k.startswith("aggregate__n_clusters")}
    return {k: list(v) for k, v in grid.items()}


# ---------------------------------------------------------------- data


def load_model_data(
    objects_parquet,
    rois_parquet,
    corpus_rois_tsv,
    images_tsv,
    assignment_tsv,
    global_prefixes=GLOBAL_PREFIXES,
    cohort_tsv=None,
):
    """(cases, object table, images, global feature names): one row per ROI of the partition
    (of the cohort's included ROIs when `cohort_tsv` is given, with the cohort's labels).

    `cases` has roi_id, the global feature columns (numeric columns of the
    ROI table starting with one of `global_prefixes`; ``qc_*`` columns
    describe the extraction, not the calcifications, and are left out by
    default), and the bookkeeping columns subject_id, image_id, label (0/1),
    fine_class (the corpus's, None where unknown), split, outer_fold.
    """
    assignment = pd.read_csv(assignment_tsv, sep="\t", dtype=str, keep_default_na=False)
    assignment = assignment[assignment["level"] == "roi"].copy()
    corpus = read_table(corpus_rois_tsv, "rois")
    images = read_table(images_tsv, "images")
    roi_feats = pd.read_parquet(rois_parquet)
    roi_feats["roi_id"] = roi_feats["roi_id"].astype(str)
    globals_ = [c for c in roi_feats.columns if c.startswith(tuple(global_prefixes))]
    text = [
        c
        for c in globals_
        if not (pd.api.types.is_numeric_dtype(roi_feats[c]) or pd.api.types.is_bool_dtype(roi_feats[c]))
    ]
    if text:
        log.warning("%s: non-numeric column(s) not used as features: %s", rois_parquet, text)
        globals_ = [c for c in globals_ if c not in text]
    cases = assignment[["roi_id", "subject_id", "image_id", "split", "outer_fold"]].astype(str)
    if cohort_tsv is not None:
        cohort = read_cohort(cohort_tsv).set_index("roi_id")
        cases = cases[cases["roi_id"].map(cohort["included"]).fillna(False).astype(bool)]
        corpus = corpus.set_index(corpus["roi_id"].astype(str))
        corpus.loc[cohort.index, "label"] = cohort["label"]
        corpus = corpus.reset_index(drop=True)
    missing = sorted(set(cases["roi_id"]) - set(roi_feats["roi_id"]))
    if missing:
        raise ValueError(
            f"{rois_parquet}: no feature row for {len(missing)} ROI(s) of the partition, e.g. {missing[:5]}"
        )
    labels = corpus.set_index(corpus["roi_id"].astype(str))["label"]
    unlabelled = sorted(set(cases["roi_id"]) - set(labels.index))
    if unlabelled:
        raise ValueError(f"{corpus_rois_tsv}: no label for {len(unlabelled)} ROI(s), e.g. {unlabelled[:5]}")
    cases["label"] = (cases["roi_id"].map(labels) == "actionable").astype(int)
    if "fine_class" in corpus.columns:
        fine = corpus.set_index(corpus["roi_id"].astype(str))["fine_class"]
        cases["fine_class"] = cases["roi_id"].map(fine.where(fine.notna() & (fine.astype(str) != ""), None))
    else:
        cases["fine_class"] = None
    subj = images.set_index(images["image_id"].astype(str))["subject_id"].astype(str)
    blank = cases["subject_id"] == ""
    cases.loc[blank, "subject_id"] = cases.loc[blank, "image_id"].map(subj)
    feats = roi_feats[["roi_id", *globals_]].drop_duplicates("roi_id")
    cases = cases.merge(feats, on="roi_id", how="left").reset_index(drop=True)
    objects = pd.read_parquet(objects_parquet)
    return cases, ObjectTable(objects), images, globals_


def _estimator(model_name: str, params: dict, objects: ObjectTable, masks):
    seed, n_jobs = params["seed"], params["n_jobs"]
    if model_name in ("bag_of_objects", "mean_std", "no_enrichment", "fine_class"):
        aggregation = params["main_model"] if model_name in ("no_enrichment", "fine_class") else model_name
        pipe = build_pipeline(
            objects,
            aggregation,
            families=tuple(params["families"]),
            seed=seed,
            n_jobs=n_jobs,
            smote_k_neighbors=params["smote_k_neighbors"],
            enn_n_neighbors=params["enn_n_neighbors"],
            # no SMOTE-ENN for fine classes: interpolating within tiny classes mostly adds noise,
            # and macro-F1 model selection already weighs every class equally
            resample=params["resample"] and model_name != "fine_class",
        )
        if aggregation == "bag_of_objects":
            pipe.set_params(aggregate__n_init=params["kmeans_n_init"])
        return pipe
    if model_name == "mask_brf":
        if masks is None:
            raise ValueError("model mask_brf needs the ROI masks (masks_dir, a mapping or a callable)")
        return baselines.build_mask_forest_pipeline(
            masks,
            size=params["mask_size"],
            seed=seed,
            n_jobs=n_jobs,
            n_estimators=params["brf_n_estimators"],
        )
    raise ValueError(f"unknown model {model_name!r}; expected one of {MODEL_KINDS}")


def fold_cases(cases: pd.DataFrame, fold) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training cases, held-out cases) of outer fold `fold` (1..K), or of the final model (`"eval"`).

    The final model's held-out cases are the eval and the external ROIs; an
    outer fold never touches external ROIs (they are neither trained on nor
    predicted there).
    """
    dev = cases["split"].isin(["train", "dev"])
    if str(fold) == "eval":
        return cases[dev], cases[cases["split"].isin(["eval", EXTERNAL])]
    folds = set(cases.loc[dev, "outer_fold"])
    if str(fold) not in folds:
        raise ValueError(f"outer fold {fold!r} not in the partition (folds {sorted(folds)})")
    held = dev & (cases["outer_fold"] == str(fold))
    return cases[dev & ~held], cases[held]


def _fold_labels(test: pd.DataFrame, fold) -> np.ndarray:
    """The predictions' fold column: the fold, or ``external`` for external ROIs (final model only)."""
    return np.where(test["split"].to_numpy() == EXTERNAL, EXTERNAL, str(fold)).astype(object)


def predict_cases(cases, objects, images, globals_, params, fold, model_name, masks=None):
    """Nested-CV fit on the fold's training cases and prediction of its held-out cases.

    Returns (predictions DataFrame per contract, run record dict).
    """
    params = resolve_params(params)
    train, test = fold_cases(cases, fold)
    record = {"model": model_name, "fold": str(fold), "n_train": int(len(train)), "n_test": int(len(test))}
    if (test["split"] == EXTERNAL).any():
        record["n_external"] = int((test["split"] == EXTERNAL).sum())
    if model_name == "no_enrichment":
        en = params["enrichment"]
        drop = baselines.enrichment_mask(images, train["image_id"], en["column"], en["value"])
        record["enrichment_removed"] = int(drop.sum())
        train = train[~drop]
        log.info("no_enrichment: %d training ROI(s) of %s=%s removed", drop.sum(), en["column"], en["value"])
    shared = set(train["subject_id"]) & set(test["subject_id"])
    if shared:
        log.warning("%d subject(s) on both sides of fold %s (declared enrichment?)", len(shared), fold)
    record["subjects_on_both_sides"] = sorted(shared)
    columns = ["roi_id", *globals_]
    if model_name == "fine_class":
        pred, extra = _predict_fine_class(train, test, columns, params, objects, masks, fold)
        record.update(extra)
        return pred, record
    result = fit_predict_fold(
        _estimator(model_name, params, objects, masks),
        train[columns],
        train["label"].to_numpy(),
        train["subject_id"].to_numpy(),
        test[columns],
        load_grid(params, model_name),
        inner_folds=params["inner_folds"],
        target_sensitivity=params["target_sensitivity"],
        seed=params["seed"],
    )
    record.update(result.record())
    pred = pd.DataFrame(
        {
            "roi_id": test["roi_id"].to_numpy(),
            "subject_id": test["subject_id"].to_numpy(),
            "image_id": test["image_id"].to_numpy(),
            "model": model_name,
            "fold": _fold_labels(test, fold),
            "label": test["label"].to_numpy().astype(int),
            "probability": result.probability.astype(float),
            "predicted": result.predicted.astype(int),
        }
    )
    return pred, record


def _predict_fine_class(train, test, columns, params, objects, masks, fold) -> tuple[pd.DataFrame, dict]:
    """The multi-class model on one fold: contract rows plus true_class, predicted_class, class_probabilities.

    When the training set has fewer than two fine classes that can be
    cross-validated, the fold is skipped: no rows (with the full set of
    columns) and the reason under ``skipped`` in the record.
    """
    base = {
        "roi_id": test["roi_id"].to_numpy(),
        "subject_id": test["subject_id"].to_numpy(),
        "image_id": test["image_id"].to_numpy(),
        "model": "fine_class",
        "fold": _fold_labels(test, fold),
        "label": test["label"].to_numpy().astype(int),
    }
    try:
        result = fit_predict_fold_multiclass(
            _estimator("fine_class", params, objects, masks),
            train[columns],
            train["fine_class"].to_numpy(),
            train["label"].to_numpy(),
            train["subject_id"].to_numpy(),
            test[columns],
            load_grid(params, "fine_class"),
            inner_folds=params["inner_folds"],
            seed=params["seed"],
        )
    except TooFewClasses as err:
        reason = f"fine_class skipped on fold {fold}: {err}"
        log.warning(reason)
        empty = pd.DataFrame(
            {k: (v[:0] if isinstance(v, np.ndarray) else np.array([], dtype=object)) for k, v in base.items()}
        )
        empty["probability"] = np.array([], dtype=float)
        empty["predicted"] = np.array([], dtype=int)
        for c in MULTICLASS_COLUMNS:
            empty[c] = np.array([], dtype=object)
        return empty, {"skipped": reason}
    true_class = test["fine_class"].astype(object).where(test["fine_class"].notna(), None).to_numpy()
    pred = pd.DataFrame(
        {
            **base,
            "probability": result.probability.astype(float),
            "predicted": result.predicted.astype(int),
            "true_class": true_class,
            "predicted_class": result.predicted_class.astype(object),
            # one JSON column rather than one per class: other models' rows and other folds'
            # class sets concatenate cleanly
            "class_probabilities": [
                json.dumps(dict(zip(result.classes, map(float, row)))) for row in result.class_probability
            ],
        }
    )
    return pred, result.record


def run_outer_fold(
    objects_parquet,
    rois_parquet,
    corpus_rois_tsv,
    images_tsv,
    assignment_tsv,
    params,
    fold,
    model_name,
    out_dir,
    masks_dir=None,
    cohort_tsv=None,
) -> dict:
    """One model on one outer fold: writes ``out_dir/predictions.parquet`` and ``out_dir/search.json``.

    `fold` is the outer fold number (1..K) or ``"eval"`` for the final model.
    `masks_dir` (directory of ``{roi_id}.npz``) is needed by ``mask_brf`` only.
    Returns the paths written.
    """
    p = resolve_params(params)
    cases, objects, images, globals_ = load_model_data(
        objects_parquet, rois_parquet, corpus_rois_tsv, images_tsv, assignment_tsv, p["global_prefixes"], cohort_tsv
    )
    pred, record = predict_cases(cases, objects, images, globals_, params, fold, model_name, masks_dir)
    out_dir = Path(out_dir)
    paths = {"predictions": out_dir / "predictions.parquet", "search": out_dir / "search.json"}
    with atomic_path(paths["predictions"]) as tmp:
        pred.to_parquet(tmp, index=False)
    with atomic_path(paths["search"]) as tmp:
        tmp.write_text(json.dumps(_jsonable(record), indent=2))
    return paths


def run_final(
    objects_parquet,
    rois_parquet,
    corpus_rois_tsv,
    images_tsv,
    assignment_tsv,
    params,
    model_name,
    out_dir,
    masks_dir=None,
) -> dict:
    """The final model: inner search and refit on all of train+dev, eval predicted once."""
    return run_outer_fold(
        objects_parquet,
        rois_parquet,
        corpus_rois_tsv,
        images_tsv,
        assignment_tsv,
        params,
        "eval",
        model_name,
        out_dir,
        masks_dir,
    )


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


# ---------------------------------------------------------------- evaluation

SETS = ("cv", "eval", EXTERNAL)


def _set_of(fold: pd.Series) -> np.ndarray:
    """Evaluation set of each prediction: eval and external as such, every outer fold pooled into cv."""
    fold = fold.astype(str).to_numpy()
    return np.where(np.isin(fold, ["eval", EXTERNAL]), fold, "cv").astype(object)


def _sets(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{set: rows} for cv, eval and external (a set may be empty)."""
    of = _set_of(frame["fold"])
    return {s: frame[of == s] for s in SETS}


def _report(frame: pd.DataFrame, params: dict, groups_col: str = "subject_id", full: bool = True) -> dict:
    kw = dict(n_boot=params["bootstrap_repeats"], level=params["ci_level"], seed=params["seed"])
    y, p, yhat, g = (
        frame["label"].to_numpy(),
        frame["probability"].to_numpy(),
        frame["predicted"].to_numpy(),
        frame[groups_col].astype(str).to_numpy(),
    )
    if full:
        return metrics.full_report(y, p, yhat, g, calibration_bins=params["calibration_bins"], **kw)
    return {
        "n": int(len(y)),
        "metrics": metrics.metrics_with_ci(y, p, yhat, g, **kw),
        "confusion": metrics.confusion(y, yhat),
    }


def _levels(pred: pd.DataFrame, images: pd.DataFrame, threshold: float) -> dict[str, pd.DataFrame]:
    img = baselines.image_level(pred)
    return {"roi": pred, "image": img, "breast": baselines.breast_level(img, images, threshold)}


def _compare(a: pd.DataFrame, b: pd.DataFrame, key: list[str], params: dict) -> dict:
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    if (both["label_a"] != both["label_b"]).any():
        raise ValueError("the two models' predictions disagree on case labels")
    out = {"n": int(len(both))}
    if len(both) == 0:
        return out
    y = both["label_a"].to_numpy()
    if 0 < y.sum() < len(y):
        out["delong"] = stats.delong_test(y, both["probability_a"], both["probability_b"], level=params["ci_level"])
    out["mcnemar"] = stats.mcnemar_test(
        y, both["predicted_a"], both["predicted_b"], exact_below=params["mcnemar_exact_below"], level=params["ci_level"]
    )
    return out


def evaluate_models(
    predictions_parquets, images_tsv, params, out_json, out_tsv, corpus_rois_tsv=None, cohort=None
) -> dict:
    """Metrics of every model at ROI, image and breast level, and paired tests against the main model.

    `predictions_parquets` is one gathered predictions file or a list of
    per-job files. models.json: ``models[name][level]["cv"|"eval"|"external"]``
    (pooled outer-fold predictions / eval predictions / the final model's
    external-cohort predictions, present only when there are any) with each metric as
    {value, ci_low, ci_high}, ``models[name]["roi"]["folds"][k]`` per outer
    fold, and ``comparisons`` (DeLong and McNemar of the main model against
    each baseline on the same cases, per level and set, external included, so
    the enrichment ablation is tested on the external cohort too). When the corpus ROI
    table is given, the call rate per fine class is added. A model with
    fine-class predictions (``true_class``/``predicted_class``) also gets
    ``models[name]["multiclass"]["cv"|"eval"]`` (macro and per-class
    precision, recall, F1 with CIs, accuracy, confusion matrix). Folds a job
    skipped (reason in the ``search.json`` beside its predictions) are listed
    under ``skipped_folds``; a model with no predictions at all is
    ``{"skipped": reason}``. The TSV is the flat table model, level, set,
    metric, value, ci_low, ci_high (level ``roi_multiclass`` for the
    multi-class metrics).
    """
    params = resolve_params(params)
    if isinstance(predictions_parquets, (str, Path)):
        predictions_parquets = [predictions_parquets]
    skipped = _skip_reasons(predictions_parquets)
    frames = [pd.read_parquet(p) for p in predictions_parquets]
    pred = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    pred["fold"] = pred["fold"].astype(str)
    images = read_table(images_tsv, "images")
    thr = params["breast_fusion_threshold"]
    if "image_id" not in pred.columns and corpus_rois_tsv is None:
        raise ValueError("predictions have no image_id column: pass corpus_rois_tsv to map ROIs to images")
    fine = None
    if corpus_rois_tsv is not None:
        corpus = read_table(corpus_rois_tsv, "rois")
        if "image_id" not in pred.columns:
            pred["image_id"] = (
                pred["roi_id"].astype(str).map(corpus.set_index(corpus["roi_id"].astype(str))["image_id"])
            )
        if "fine_class" in corpus.columns and corpus["fine_class"].notna().any():
            fine = corpus.set_index(corpus["roi_id"].astype(str))["fine_class"]
    models, per_level = {}, {}
    for name, mp in pred.groupby("model", sort=True):
        levels = _levels(mp, images, thr)
        per_level[name] = levels
        entry = {}
        for level, frame in levels.items():
            sets = _sets(frame)
            entry[level] = {s: _report(f, params) for s, f in sets.items() if len(f)}
            if level == "roi":
                entry[level]["folds"] = {
                    k: _report(f, params, full=False) for k, f in sets["cv"].groupby("fold", sort=True)
                }
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
    main = params["main_model"]
    comparisons = []
    if main in per_level:
        for other in sorted(per_level):
            if other == main:
                continue
            for level in ("roi", "image", "breast"):
                key = {"roi": ["roi_id", "fold"], "image": ["image_id", "fold"], "breast": ["breast_id", "fold"]}[level]
                sets_a, sets_b = _sets(per_level[main][level]), _sets(per_level[other][level])
                for s in SETS:
                    cols = key + ["label", "probability", "predicted"]
                    res = _compare(sets_a[s][cols], sets_b[s][cols], key, params)
                    if res["n"]:
                        comparisons.append({"a": main, "b": other, "level": level, "set": s, **res})
    result = {
        **({"cohort": cohort} if cohort is not None else {}),
        "main_model": main,
        "settings": {
            k: params[k]
            for k in (
                "target_sensitivity",
                "bootstrap_repeats",
                "ci_level",
                "seed",
                "mcnemar_exact_below",
                "breast_fusion_threshold",
                "grid",
            )
        },
        "models": models,
        "comparisons": comparisons,
    }
    result = _jsonable(result)
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    rows = [
        {"model": name, "level": level, "set": s, "metric": m, **vals}
        for name, entry in models.items()
        for level in ("roi", "image", "breast")
        if level in entry
        for s in SETS
        if s in entry[level]
        for m, vals in entry[level][s]["metrics"].items()
    ]
    rows += [
        {"model": name, "level": "roi_multiclass", "set": s, "metric": m, **vals}
        for name, entry in models.items()
        if "multiclass" in entry
        for s, block in entry["multiclass"].items()
        for m, vals in _multiclass_rows(block)
    ]
    with atomic_path(out_tsv) as tmp:
        pd.DataFrame(rows, columns=["model", "level", "set", "metric", "value", "ci_low", "ci_high"]).to_csv(
            tmp, sep="\t", index=False, na_rep=""
        )
    return result


def _skip_reasons(predictions_parquets) -> dict[str, dict[str, str]]:
    """{model: {fold: reason}} from the ``search.json`` written beside each per-job predictions file."""
    out: dict[str, dict[str, str]] = {}
    for p in predictions_parquets:
        search = Path(p).with_name("search.json")
        if search.exists():
            rec = json.loads(search.read_text())
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
                f["subject_id"].astype(str),
                f["label"].to_numpy(),
                labels=labels,
                n_boot=params["bootstrap_repeats"],
                level=params["ci_level"],
                seed=params["seed"],
            )
    return out


def _multiclass_rows(block: dict):
    """(metric name, {value, ci_low, ci_high}) rows of one multi-class block for the flat TSV."""
    for score, vals in block["macro"].items():
        yield f"macro_{score}", vals
    yield "accuracy", block["accuracy"]
    for cls, scores in block["per_class"].items():
        for score in metrics.MULTICLASS_SCORES:
            yield f"{score}:{cls}", scores[score]


def _by_fine_class(pred: pd.DataFrame, fine: pd.Series) -> dict:
    """Per set and fine class: number of ROIs and the fraction called actionable."""
    df = pred.assign(
        fine_class=pred["roi_id"].astype(str).map(fine).fillna("unknown").astype(str), set=_set_of(pred["fold"])
    )
    out = {}
    for (s, fc), g in df.groupby(["set", "fine_class"], sort=True):
        out.setdefault(s, {})[fc] = {"n": int(len(g)), "called_actionable": float(g["predicted"].mean())}
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj
