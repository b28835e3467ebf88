"""Section 2, cohort and splits: the inclusion flow, the split's balance and the leak audit."""

from __future__ import annotations

import pandas as pd

from .blocks import (
    Cell,
    Details,
    Flow,
    Heading,
    Items,
    Note,
    Section,
    Table,
    number,
    unavailable,
)
from .inputs import Inputs

EXCLUSION_REASONS = {
    "not_calcification": "not a calcification finding",
    "no_location": "no location (box, circle or mask)",
    "no_pixels": "image has no pixels",
    "failed_qc": "failed quality control",
    "no_detected_object": "no calcification detected in the ROI",
    "outside_morphology": "morphology outside the study's scope",
    "outside_distribution": "distribution outside the study's scope",
    "unknown_label": "label unknown",
}
SPLIT_ORDER = ["train", "dev", "eval", "external"]
MAX_IDS_SHOWN = 200


def cohort_summary(inputs: Inputs) -> dict | None:
    """The cohort counts: the cohort stage's summary.json, else the copy in models.json."""
    summary = inputs.json("cohort_summary")
    if summary is None:
        summary = (inputs.json("models") or {}).get("cohort")
    return summary


def reason_text(reason: str) -> str:
    return EXCLUSION_REASONS.get(reason, reason.replace("_", " "))


def _ordered(counts: dict, order: list[str]) -> list[tuple[str, int]]:
    known = [(k, counts[k]) for k in order if k in counts]
    return known + sorted((k, v) for k, v in counts.items() if k not in order)


def flow_blocks(inputs: Inputs) -> list:
    summary = cohort_summary(inputs)
    if summary is None:
        return [
            unavailable(
                "Cohort flow",
                inputs.why_absent("cohort_summary")
                + ", and models.json carries no cohort counts either (the counts below are of the whole corpus)",
            )
        ]
    excluded = summary.get("excluded") or {}
    included = summary.get("included") or {}
    flow = Flow(
        start=("ROIs in the corpus", number(summary.get("n_corpus_rois"))),
        exclusions=[(reason_text(r), number(n)) for r, n in sorted(excluded.items(), key=lambda kv: (-kv[1], kv[0]))],
        excluded_total=number(sum(excluded.values())),
        end=("ROIs in the cohort", number(summary.get("n_included"))),
        breakdowns=[
            (
                "by label",
                [(k, number(v)) for k, v in _ordered(included.get("by_label") or {}, ["benign", "actionable"])],
            ),
            ("by split", [(k, number(v)) for k, v in _ordered(included.get("by_split") or {}, SPLIT_ORDER)]),
        ],
    )
    blocks = [flow]
    rois = inputs.tsv("cohort_rois")
    if rois is not None and "included" in rois:
        out = rois[~rois["included"].astype(str).str.lower().isin(["true", "1"])]
        if len(out):
            items = []
            for reason, group in out.groupby(out["reason"].fillna("unknown"), sort=True):
                ids = sorted(group["roi_id"].astype(str))
                shown = ", ".join(ids[:MAX_IDS_SHOWN])
                more = f" \u2026 and {len(ids) - MAX_IDS_SHOWN} more" if len(ids) > MAX_IDS_SHOWN else ""
                items.append(f"{reason_text(reason)} ({len(ids)}): {shown}{more}")
            blocks.append(Details("Excluded ROI IDs by reason (results/cohort/rois.tsv)", [Items(items, "ids")]))
    return blocks


def corpus_blocks(inputs: Inputs) -> list:
    """ROIs by split and label, and by the corpus' own covariates, folded."""
    rois, images = inputs.tsv("rois"), inputs.tsv("images")
    if rois is None:
        return [unavailable("Corpus composition", inputs.why_absent("rois"))]
    tables = []
    assignment = inputs.tsv("assignment")
    if assignment is not None and "level" in assignment:
        split = assignment[assignment["level"] == "roi"].set_index("roi_id")["split"]
        merged = rois.assign(split=rois["roi_id"].map(split).fillna("not assigned"))
        counts = pd.crosstab(merged["split"], merged["label"].fillna("missing"))
        counts = counts.reindex([s for s in SPLIT_ORDER + ["not assigned"] if s in counts.index])
        tables.append(_crosstab_table(counts, "split", "ROIs per split and label (all corpus ROIs)"))
    if images is not None:
        for column in ("site", "density"):
            if column in images and images[column].notna().any():
                merged = rois.merge(images[["image_id", column]], on="image_id", how="left")
                counts = pd.crosstab(merged[column].fillna("missing").astype(str), merged["label"].fillna("missing"))
                tables.append(_crosstab_table(counts, column, f"ROIs per {column} and label"))
    if "fine_class" in rois and rois["fine_class"].notna().any():
        counts = pd.crosstab(rois["fine_class"].fillna("missing"), rois["label"].fillna("missing"))
        tables.append(_crosstab_table(counts, "fine class", "ROIs per fine class and label"))
    return [Details("Corpus composition: ROIs per split, site, density and fine class", tables)] if tables else []


def _crosstab_table(counts: pd.DataFrame, index_name: str, caption: str) -> Table:
    columns = [index_name] + [str(c) for c in counts.columns] + ["total"]
    rows = [[str(i)] + [number(int(v)) for v in row] + [number(int(sum(row)))] for i, row in counts.iterrows()]
    return Table(columns, rows, caption=caption)


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(column, group a, group b) of every SMD column of a balance table."""
    out = []
    for column in frame.columns:
        if column.startswith("smd_") and "_vs_" in column:
            a, b = column[len("smd_") :].split("_vs_", 1)
            out.append((column, a, b))
    return out


def _groups(frame: pd.DataFrame) -> list[str]:
    return [c[len("n_") :] for c in frame.columns if c.startswith("n_") and c != "n_total" and frame[c].notna().any()]


def balance_blocks(inputs: Inputs, threshold: float) -> list:
    balance = inputs.tsv("balance")
    if balance is None:
        return [unavailable("Balance of the split", inputs.why_absent("balance"))]
    blocks = [
        Note(
            f"Worst |standardised mean difference| over the levels of each covariate, per pair of splits "
            f"(and, for the outer folds, the worst pair of folds). Values above {threshold:g} "
            f"(report.smd_threshold) are marked.",
            tone="caption",
        )
    ]
    full = []
    summaries = ((inputs.json("balance_json") or {}).get("summary") or {}).get("scopes") or {}
    for scope, frame in balance.groupby("scope", sort=False):
        frame = frame.dropna(axis=1, how="all")
        pairs = _pairs(frame)
        if not pairs:
            continue
        fold_scope = all(a.startswith("fold_") for _, a, _ in pairs)
        columns = ["covariate"] + (["worst pair of folds"] if fold_scope else [f"{a} vs {b}" for _, a, b in pairs])
        rows = []
        for covariate, levels in frame.groupby("covariate", sort=False):
            if fold_scope:
                worst = levels[[c for c, _, _ in pairs]].abs().max()
                column = worst.idxmax() if worst.notna().any() else None
                cells = [_smd_cell(levels, column, threshold, show_pair=True)]
            else:
                cells = [_smd_cell(levels, c, threshold) for c, _, _ in pairs]
            rows.append([covariate] + cells)
        label = "outer folds (inside train + dev)" if fold_scope else "splits"
        info = summaries.get(scope) or {}
        caption = f"Balance between {label}"
        if info.get("label_max_deviation_pp") is not None:
            caption += f"; label proportions deviate from the corpus by at most {info['label_max_deviation_pp']:.1f} pp"
        if info.get("n_subjects"):
            caption += "; subjects " + ", ".join(f"{g} {n}" for g, n in info["n_subjects"].items())
        blocks.append(Table(columns, rows, caption=caption, css="compact"))
        full.append(_full_balance_table(frame, pairs, threshold, caption=f"All levels, {label}"))
    blocks.append(Details("Full balance table: counts and proportions (or means) per level", full))
    return blocks


def _smd_cell(levels: pd.DataFrame, column: str | None, threshold: float, show_pair: bool = False) -> Cell:
    if column is None or levels[column].isna().all():
        return Cell("\u2013")
    values = levels[column].abs()
    at = values.idxmax()
    worst = float(values[at])
    text = f"{worst:.3f}"
    if show_pair:
        a, b = column[len("smd_") :].split("_vs_", 1)
        text += f" ({a.replace('fold_', '')} vs {b.replace('fold_', '')})"
    return Cell(text, "over" if worst > threshold else "", title=f"worst at level {levels.at[at, 'level']}")


def _full_balance_table(frame: pd.DataFrame, pairs, threshold: float, caption: str) -> Table:
    groups = _groups(frame)
    columns = ["covariate", "level"] + [f"{g}: n \u00b7 value" for g in groups]
    columns += [f"SMD {a.replace('fold_', 'f')}\u2013{b.replace('fold_', 'f')}" for _, a, b in pairs]
    extra = [c for c in ("cramers_v", "chi2_p") if c in frame.columns]
    columns += ["Cram\u00e9r's V" if c == "cramers_v" else "\u03c7\u00b2 p" for c in extra]
    rows = []
    for _, row in frame.iterrows():
        cells = [str(row["covariate"]), str(row["level"])]
        for g in groups:
            n, value = row.get(f"n_{g}"), row.get(f"value_{g}")
            cells.append(f"{number(_int(n))} \u00b7 {number(value, 2)}")
        for column, _, _ in pairs:
            value = row[column]
            over = pd.notna(value) and abs(value) > threshold
            cells.append(Cell(number(value, 2), "over" if over else ""))
        cells += [number(row[c], 2) for c in extra]
        rows.append(cells)
    return Table(columns, rows, caption=caption, css="compact small")


def _int(value):
    return int(value) if pd.notna(value) else None


def audit_blocks(inputs: Inputs) -> tuple[list, list[str]]:
    """The audit's blocks and, when it found anything, one alert line per kind of finding."""
    audit, table = inputs.json("audit"), inputs.tsv("audit_table")
    if audit is None:
        return [unavailable("Leak audit", inputs.why_absent("audit"))], []
    summary = audit.get("summary") or {}
    findings = table[table["status"] != "count"] if table is not None else pd.DataFrame()
    kinds = ("subject_overlap", "fold_overlap", "exact_duplicates", "near_duplicates", "label_conflicts")
    counts = {k: len(audit.get(k) or []) for k in kinds + ("unreadable_images",)}
    alerts = []
    for kind, n in counts.items():
        if n:
            leaks = [e for e in audit.get(kind) or [] if isinstance(e, dict) and e.get("leak")]
            if kind == "subject_overlap":
                leaks = [e for e in audit[kind] if not e.get("declared")]
            text = f"{n} {kind.replace('_', ' ')} finding(s)"
            if leaks or kind == "fold_overlap":
                text += f", {len(leaks) or n} of them a leak"
            alerts.append(text)
    blocks = []
    if alerts:
        policy = audit.get("policy", "?")
        blocks.append(
            Note(
                f"The leak audit found: {'; '.join(alerts)} (policy: {policy}). Every finding is listed below "
                "with its exact IDs.",
                tone="alert",
            )
        )
        rows = [
            [Cell(str(r["status"]), "leak" if r["status"] == "LEAK" else "")]
            + [str(r[c]) if pd.notna(r[c]) else "" for c in ("check", "items", "splits", "detail")]
            for _, r in findings.iterrows()
        ]
        blocks.append(Table(["status", "check", "IDs", "splits", "detail"], rows, caption="Audit findings (audit.tsv)"))
    else:
        hashed, images = summary.get("images_hashed"), summary.get("images")
        how = ""
        if hashed is not None and images is not None and hashed < images:
            how = f" ({number(hashed)} of {number(images)} images compared by their pixels, the rest by metadata)"
        elif hashed is not None:
            how = f" ({number(hashed)} images compared by their pixels)"
        blocks.append(
            Note(
                "The leak audit found nothing: no subject in more than one split or outer fold, no exact or near "
                f"duplicate image, no label conflict{how}."
            )
        )
    if counts["unreadable_images"]:
        ids = [e.get("image_id", str(e)) if isinstance(e, dict) else str(e) for e in audit["unreadable_images"]]
        blocks.append(Note(f"Unreadable images (audited by metadata only): {', '.join(map(str, ids))}", "alert"))
    return blocks, alerts


def cohort_section(inputs: Inputs, config: dict) -> Section:
    threshold = config.get("report", {}).get("smd_threshold", 0.1)
    section = Section("cohort", "2. Cohort and splits")
    section.blocks += [Heading("Cohort flow", "cohort-flow")] + flow_blocks(inputs) + corpus_blocks(inputs)
    section.blocks += [Heading("Balance of the split", "cohort-balance")] + balance_blocks(inputs, threshold)
    audit, _ = audit_blocks(inputs)
    section.blocks += [Heading("Leak audit", "cohort-audit")] + audit
    return section


def split_sizes(inputs: Inputs) -> dict[str, int]:
    """Subjects per split from the assignment (for the run summary)."""
    assignment = inputs.tsv("assignment")
    if assignment is None or "level" not in assignment:
        return {}
    subjects = assignment[assignment["level"] == "subject"]
    counts = subjects["split"].value_counts().to_dict()
    return dict(_ordered(counts, SPLIT_ORDER))


__all__ = ["cohort_section", "cohort_summary", "audit_blocks", "split_sizes", "reason_text"]
