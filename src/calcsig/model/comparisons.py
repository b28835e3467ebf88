"""Paired comparisons of every pair of models, per level and set, with multiplicity control.

For every pair (a, b) of models (a before b in the run's model order, the
main model first), every level (roi, image, breast) and every set (cv, eval,
external) with cases both models predicted, on those shared cases:

- ``clustered``: differences a - b in AUC and in accuracy, sensitivity and
  specificity at the exact-target operating point (each model's own calls),
  by the paired cluster bootstrap, and Obuchowski's clustered ROC
  comparison where it applies (two or more clusters with each class); see
  :mod:`calcsig.model.clustered`. Clusters are the partition's groups
  (``group_id``: subjects, merged where images are duplicates), else subjects;
- ``delong`` and ``mcnemar``: the classical tests, which assume independent
  cases and so give p-values that are too small here; kept, and labelled so.

``quote`` says which to report: the clustered ones. Within a family (one
set, one level, one statistic and one model ``a``: e.g. the main model's
clustered AUC differences against every baseline on eval ROIs) the p-values
are adjusted by Holm's method; raw (``p_value``) and adjusted
(``p_adjusted``) are both kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import clustered, stats

LEVEL_KEYS = {"roi": "roi_id", "image": "image_id", "breast": "breast_id"}
P_ADJUSTMENT = "holm"
P_ADJUSTMENT_FAMILY = (
    "per set, level, statistic and model a: the comparisons of one model (the main model first) against "
    "every other model on the same set and level form one family"
)
QUOTE = {
    "auc_difference": "clustered.obuchowski (clustered.auc_difference where Obuchowski does not apply)",
    "accuracy_difference": "clustered.accuracy_difference",
    "sensitivity_difference": "clustered.sensitivity_difference",
    "specificity_difference": "clustered.specificity_difference",
}


def clusters_of(frame: pd.DataFrame) -> np.ndarray:
    """The cluster of each case: ``group_id`` when the predictions carry it, else ``subject_id``."""
    column = "group_id" if "group_id" in frame.columns and frame["group_id"].notna().all() else "subject_id"
    return frame[column].astype(str).to_numpy()


def compare_pair(a: pd.DataFrame, b: pd.DataFrame, key: str, params: dict) -> dict:
    """The comparison of two models' predictions of one level and set, on the cases both have."""
    cols = [key, "fold", "subject_id", *(["group_id"] if "group_id" in a.columns else []), "label"]
    both = a[cols + ["probability", "predicted"]].merge(
        b[[key, "fold", "label", "probability", "predicted"]], on=[key, "fold"], suffixes=("", "_b")
    )
    if (both["label"] != both["label_b"]).any():
        raise ValueError("the two models' predictions disagree on case labels")
    out = {"n": int(len(both)), "n_subjects": int(both["subject_id"].nunique())}
    if len(both) == 0:
        return out
    y = both["label"].to_numpy().astype(int)
    groups = clusters_of(both)
    out["n_clusters"] = int(len(np.unique(groups)))
    # a's columns keep their names, b's carry the suffix _b
    pa, pb = both["probability"].to_numpy(), both["probability_b"].to_numpy()
    ya, yb = both["predicted"].to_numpy(), both["predicted_b"].to_numpy()
    level = params["ci_level"]
    block = clustered.paired_bootstrap(
        y, pa, pb, ya, yb, groups, n_boot=params["bootstrap_repeats"], level=level, seed=params["seed"]
    )
    if clustered.obuchowski_applies(y, groups):
        block["obuchowski"] = clustered.obuchowski_test(y, pa, pb, groups, level=level)
    out["clustered"] = block
    if 0 < y.sum() < len(y):
        out["delong"] = {**stats.delong_test(y, pa, pb, level=level), "assumes_independent_cases": True}
    out["mcnemar"] = {
        **stats.mcnemar_test(y, ya, yb, exact_below=params["mcnemar_exact_below"], level=level),
        "assumes_independent_cases": True,
    }
    out["quote"] = "clustered"
    return out


def _sets(frame: pd.DataFrame, set_of) -> dict[str, pd.DataFrame]:
    labels = set_of(frame["fold"])
    return {s: frame[labels == s] for s in ("cv", "eval", "external")}


def compare_models(per_level: dict, order: list[str], params: dict, set_of) -> list[dict]:
    """Every pair of models in `order` (a before b), per level and set, with Holm-adjusted p-values.

    `per_level` is {model: {level: predictions of that level}}; `set_of`
    maps a fold column to the set names cv / eval / external.
    """
    names = [m for m in order if m in per_level]
    comparisons = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for level, key in LEVEL_KEYS.items():
                sets_a, sets_b = _sets(per_level[a][level], set_of), _sets(per_level[b][level], set_of)
                for s in ("cv", "eval", "external"):
                    result = compare_pair(sets_a[s], sets_b[s], key, params)
                    if result["n"]:
                        comparisons.append({"a": a, "b": b, "level": level, "set": s, **result})
    adjust(comparisons)
    return comparisons


def _tests(comparison: dict):
    """(statistic name, result dict holding p_value) of every test in one comparison."""
    for name, result in comparison.get("clustered", {}).items():
        yield f"clustered.{name}", result
    for name in ("delong", "mcnemar"):
        if name in comparison:
            yield name, comparison[name]


def adjust(comparisons: list[dict]) -> None:
    """Add ``p_adjusted`` (Holm, within the families of the module docstring) beside every ``p_value``, in place."""
    families: dict[tuple, list[dict]] = {}
    for c in comparisons:
        for statistic, result in _tests(c):
            families.setdefault((c["set"], c["level"], statistic, c["a"]), []).append(result)
    for members in families.values():
        adjusted = stats.holm([m.get("p_value") for m in members])
        for m, p in zip(members, adjusted):
            m["p_adjusted"] = float(p) if np.isfinite(p) else None
