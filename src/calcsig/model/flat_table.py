"""models.tsv: the flat table of models.json, one row per figure.

Columns ``TSV_COLUMNS``: one row per metric (model, level, set, metric,
value, ci_low, ci_high), per operating-point figure (metric
``<point>:<figure>``: threshold, sensitivity, specificity,
benign_biopsies_avoided), per multi-class figure (level ``roi_multiclass``)
and per comparison test (model = a, versus = b, test, p_value, p_adjusted,
and quote = yes on the test to report for each difference: Obuchowski for
the AUC where it applies, else the clustered bootstrap; DeLong and McNemar
are no, as they assume independent cases).
"""

from __future__ import annotations

import pandas as pd

from ..paths import atomic_path
from . import clustered, metrics

LEVELS = ("roi", "image", "breast")
SETS = ("cv", "eval", "external")
TSV_COLUMNS = [
    "model",
    "versus",
    "level",
    "set",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "test",
    "p_value",
    "p_adjusted",
    "quote",
]


def write_flat_table(result: dict, out_tsv) -> None:
    """Write models.tsv from the models.json document `result` (module docstring)."""
    models = result["models"]
    rows = [
        {"model": name, "level": level, "set": s, "metric": m, **vals}
        for name, entry in models.items()
        for level in LEVELS
        if level in entry
        for s in SETS
        if s in entry[level]
        for m, vals in entry[level][s]["metrics"].items()
    ]
    rows += [
        {"model": name, "level": level, "set": s, "metric": f"{point}:{figure}", **vals}
        for name, entry in models.items()
        for level in LEVELS
        if level in entry
        for s in SETS
        if s in entry[level]
        for point, op in entry[level][s]["operating_points"].items()
        for figure, vals in (
            ("threshold", {"value": op["threshold"]}),
            ("sensitivity", op["intervals"]["sensitivity"]),
            ("specificity", op["intervals"]["specificity"]),
            ("benign_biopsies_avoided", op["benign_biopsies_avoided"]),
        )
    ]
    rows += [
        {"model": name, "level": "roi_multiclass", "set": s, "metric": m, **vals}
        for name, entry in models.items()
        if "multiclass" in entry
        for s, block in entry["multiclass"].items()
        for m, vals in _multiclass_rows(block)
    ]
    rows += list(_comparison_rows(result["comparisons"]))
    with atomic_path(out_tsv) as tmp:
        pd.DataFrame(rows, columns=TSV_COLUMNS).to_csv(tmp, sep="\t", index=False, na_rep="")


def _comparison_rows(comparisons: list[dict]):
    """Flat rows of the comparison tests; quote = yes on the one to report for each difference."""
    for c in comparisons:
        base = {"model": c["a"], "versus": c["b"], "level": c["level"], "set": c["set"]}
        block = c.get("clustered", {})
        has_obuchowski = "obuchowski" in block
        for key in (k for k in clustered.DIFFERENCES if k in block):
            r = block[key]
            quote = key != "auc_difference" or not has_obuchowski
            yield {**base, "metric": key, "test": "clustered_bootstrap", "quote": "yes" if quote else "no", **_row(r)}
        if has_obuchowski:
            r = block["obuchowski"]
            yield {
                **base,
                "metric": "auc_difference",
                "test": "obuchowski",
                "quote": "yes",
                **_row({**r, "value": r["difference"]}),
            }
        if "delong" in c:
            r = c["delong"]
            yield {
                **base,
                "metric": "auc_difference",
                "test": "delong",
                "quote": "no",
                **_row({**r, "value": r["difference"]}),
            }
        r = c["mcnemar"]
        yield {
            **base,
            "metric": "accuracy_difference",
            "test": "mcnemar",
            "quote": "no",
            **_row({**r, "value": r["accuracy_difference"]}),
        }


def _row(r: dict) -> dict:
    return {k: r.get(k) for k in ("value", "ci_low", "ci_high", "p_value", "p_adjusted")}


def _multiclass_rows(block: dict):
    """(metric name, {value, ci_low, ci_high}) rows of one multi-class block for the flat TSV."""
    for score, vals in block["macro"].items():
        yield f"macro_{score}", vals
    yield "accuracy", block["accuracy"]
    for cls, scores in block["per_class"].items():
        for score in metrics.MULTICLASS_SCORES:
            yield f"{score}:{cls}", scores[score]
