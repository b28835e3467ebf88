"""The balance report: how alike the splits (and the outer folds) are.

One row per (scope, covariate, level). `scope` is ``split`` (groups train, dev,
eval) or ``outer_fold`` (groups fold_1 .. fold_K over the train+dev subjects).
Counts are subjects; each subject counts once, in the split of its subject row.
Columns:
- scope, covariate, kind (categorical | numeric | stratum), level;
- n_total; per group: ``n_<group>`` (subjects with the level, or with a
  non-missing value for numeric rows) and ``value_<group>`` (proportion of the
  group's subjects with the level, or the mean for numeric rows);
- ``smd_<g>_vs_<h>`` for every pair of groups (see optimiser.pairwise_smd;
  for a categorical level, the SMD of its indicator);
- max_abs_smd: the row's worst pair;
- cramers_v, chi2_p: per categorical covariate (same value on each of its level
  rows; empty for numeric rows and when the table is degenerate);
- is_worst: true on the row holding the scope's overall worst |SMD|.
The label stratum is reported (kind ``stratum``) but not counted in the worst
SMD: it is held on target by construction and judged by its deviation from the
corpus proportion in percentage points (`label_max_deviation_pp` in the JSON).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from ..paths import atomic_path
from .covariates import SubjectCovariates
from .optimiser import pairwise_smd


def cramers_v(table: np.ndarray) -> tuple[float, float]:
    """Cramér's V and the chi-square p-value of a (levels x groups) count table.

    Rows or columns that are all zero are dropped; a table left with fewer than
    two rows or columns gives (nan, nan).
    """
    table = np.asarray(table, float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return float("nan"), float("nan")
    chi2, p, _, _ = chi2_contingency(table, correction=False)
    v = np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    return float(v), float(p)


def _scope_rows(scope: str, cov: SubjectCovariates, group_of: pd.Series, group_names: list[str]) -> list[dict]:
    frame = cov.frame.loc[group_of.index]
    codes = group_of.map({g: i for i, g in enumerate(group_names)}).to_numpy(int)
    counts = np.bincount(codes, minlength=len(group_names))
    pairs = list(combinations(range(len(group_names)), 2))
    rows = []
    specs = [("stratum", "stratum", "stratum")] + [(c, c, "categorical") for c in cov.categorical]
    for column, name, kind in specs:
        values = frame[column].astype(str).to_numpy()
        levels = sorted(set(values))
        table = np.array(
            [[int(((values == lv) & (codes == g)).sum()) for g in range(len(group_names))] for lv in levels]
        )
        v, p = cramers_v(table)
        for li, level in enumerate(levels):
            x = (values == level).astype(float)[:, None]
            sums = np.array([[x[codes == g].sum()] for g in range(len(group_names))])
            smd = pairwise_smd(sums, sums, counts)[:, 0]
            row = {"scope": scope, "covariate": name, "kind": kind, "level": level, "n_total": int(table[li].sum())}
            for g, group in enumerate(group_names):
                row[f"n_{group}"] = int(table[li, g])
                row[f"value_{group}"] = table[li, g] / counts[g] if counts[g] else float("nan")
            for (g, h), d in zip(pairs, smd):
                row[f"smd_{group_names[g]}_vs_{group_names[h]}"] = float(d)
            row.update(max_abs_smd=float(np.abs(smd).max()) if smd.size else 0.0, cramers_v=v, chi2_p=p)
            rows.append(row)
    for name in cov.numeric:
        raw = frame[name].to_numpy(float)
        x = np.where(np.isnan(raw), np.nanmean(cov.frame[name].to_numpy(float)), raw)
        sums = np.array([[x[codes == g].sum()] for g in range(len(group_names))])
        sq = np.array([[(x[codes == g] ** 2).sum()] for g in range(len(group_names))])
        smd = pairwise_smd(sums, sq, counts)[:, 0]
        row = {
            "scope": scope,
            "covariate": name,
            "kind": "numeric",
            "level": "mean",
            "n_total": int((~np.isnan(raw)).sum()),
        }
        for g, group in enumerate(group_names):
            in_g = codes == g
            row[f"n_{group}"] = int((in_g & ~np.isnan(raw)).sum())
            row[f"value_{group}"] = float(np.nanmean(raw[in_g])) if (in_g & ~np.isnan(raw)).any() else float("nan")
        for (g, h), d in zip(pairs, smd):
            row[f"smd_{group_names[g]}_vs_{group_names[h]}"] = float(d)
        row.update(
            max_abs_smd=float(np.abs(smd).max()) if smd.size else 0.0, cramers_v=float("nan"), chi2_p=float("nan")
        )
        rows.append(row)
    return rows


def balance_report(cov: SubjectCovariates, split_of: pd.Series, fold_of: pd.Series) -> tuple[pd.DataFrame, dict]:
    """Balance table (see module docstring) and its JSON summary.

    split_of: subject_id -> train/dev/eval for every subject; fold_of:
    subject_id -> outer fold number (1..K) for the subjects in train+dev.
    The summary holds, per scope, the worst |SMD| with its covariate, level and
    pair, the label proportions per group and their worst deviation from the
    corpus in percentage points, and the covariates skipped, pooled or missing.
    """
    split_names = [s for s in ("train", "dev", "eval") if (split_of == s).any()]
    folds = sorted(int(f) for f in fold_of.unique())
    fold_names = [f"fold_{f}" for f in folds]
    rows = _scope_rows("split", cov, split_of, split_names)
    if len(fold_names):
        rows += _scope_rows("outer_fold", cov, fold_of.map(lambda f: f"fold_{int(f)}"), fold_names)
    table = pd.DataFrame(rows)
    table["is_worst"] = False
    summary: dict = {"scopes": {}}
    for scope, groups, assign in (
        ("split", split_names, split_of),
        ("outer_fold", fold_names, fold_of.map(lambda f: f"fold_{int(f)}")),
    ):
        part = table[(table["scope"] == scope) & (table["kind"] != "stratum")]
        entry: dict = {"groups": groups, "n_subjects": {g: int((assign == g).sum()) for g in groups}}
        if not part.empty:
            worst_index = part["max_abs_smd"].idxmax()
            table.loc[worst_index, "is_worst"] = True
            worst = table.loc[worst_index]
            smd_columns = [c for c in table.columns if c.startswith("smd_") and not pd.isna(worst[c])]
            pair = max(smd_columns, key=lambda c: abs(worst[c]))
            entry.update(
                worst_abs_smd=float(worst["max_abs_smd"]),
                worst_covariate=worst["covariate"],
                worst_level=worst["level"],
                worst_pair=pair[len("smd_") :].split("_vs_"),
            )
        else:
            entry.update(worst_abs_smd=0.0, worst_covariate=None, worst_level=None, worst_pair=None)
        strata = cov.frame.loc[assign.index, "stratum"]
        corpus = strata.value_counts(normalize=True)
        proportions = {
            g: strata[assign == g].value_counts(normalize=True).reindex(corpus.index, fill_value=0.0) for g in groups
        }
        entry["label_proportions"] = {g: {k: float(v) for k, v in p.items()} for g, p in proportions.items()}
        entry["label_proportions"]["corpus"] = {k: float(v) for k, v in corpus.items()}
        entry["label_max_deviation_pp"] = float(
            max((100 * (p - corpus).abs().max() for p in proportions.values()), default=0.0)
        )
        summary["scopes"][scope] = entry
    summary["covariates"] = {
        "categorical": cov.categorical,
        "numeric": cov.numeric,
        "skipped": cov.skipped,
        "missing_subjects": cov.missing_counts,
        "pooled_into_other": cov.pooled,
    }
    summary["worst_abs_smd"] = max(e["worst_abs_smd"] for e in summary["scopes"].values())
    return table, summary


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_balance(table: pd.DataFrame, summary: dict, out_tsv: str | Path, out_json: str | Path) -> None:
    """Write balance.tsv and balance.json (summary plus the rows), each atomically."""
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="", float_format="%.6g")
    document = {"summary": summary, "rows": table.to_dict(orient="records")}
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(_json_safe(document), indent=2) + "\n")
