"""Section 5, models: discrimination, calibration, clinical utility, operating points, baselines, comparisons.

Every number and curve comes from results/metrics/models.json as the evaluate
stage wrote it; nothing is recomputed here. Parts whose keys the evaluation
does not (yet) write say so.
"""

from __future__ import annotations

from . import figures
from .blocks import (
    Cell,
    Details,
    Figure,
    Grid,
    Heading,
    Note,
    Section,
    Table,
    estimate,
    estimate_cell,
    fixed,
    level_text,
    number,
    percent,
    unavailable,
)
from .inputs import Inputs

SETS = {
    "cv": "cross-validation (pooled outer-fold predictions)",
    "eval": "eval split (final model, fitted on train + dev)",
    "external": "external cohort (final model)",
}
SET_SHORT = {"cv": "CV", "eval": "eval", "external": "external"}
PANEL_TITLE = {"cv": "CV (pooled outer folds)", "eval": "eval split", "external": "external cohort"}
LEVELS = {"roi": "ROI", "image": "image", "breast": "breast"}


def settings_of(document: dict, config: dict) -> dict:
    settings = dict(document.get("settings") or {})
    model = config.get("model", {})
    settings.setdefault("ci_level", model.get("ci_level"))
    settings.setdefault("target_sensitivity", model.get("target_sensitivity"))
    settings.setdefault("bootstrap_repeats", model.get("bootstrap_repeats"))
    return settings


def ci_phrase(settings: dict) -> str:
    repeats = settings.get("bootstrap_repeats")
    how = f"{number(repeats)} subject-level bootstrap resamples" if repeats else "a subject-level bootstrap"
    return f"{level_text(settings.get('ci_level'))} confidence intervals from {how}"


def main_model(document: dict, config: dict) -> str | None:
    return document.get("main_model") or config.get("model", {}).get("main_model")


def sets_of(level_block: dict) -> list[str]:
    return [s for s in SETS if isinstance(level_block.get(s), dict)]


def headline(inputs: Inputs, config: dict) -> list[tuple[str, str, str, str]]:
    """The main model's ROI-level ROC AUC with its interval on every set, for the run summary."""
    document = inputs.json("models")
    if not document:
        return []
    name = main_model(document, config)
    settings = settings_of(document, config)
    roi = (document.get("models") or {}).get(name, {}).get("roi") or {}
    cards = []
    for set_name in sets_of(roi):
        block = roi[set_name]
        auc = (block.get("metrics") or {}).get("roc_auc")
        if auc:
            detail = f"{SETS[set_name]}; {number(block.get('n'))} ROIs of {number(block.get('n_subjects'))} subjects"
            interval = (
                f"{level_text(settings.get('ci_level'))} CI {fixed(auc['ci_low'])}\u2013{fixed(auc['ci_high'])}"
                if auc.get("ci_low") is not None and auc.get("ci_high") is not None
                else ""
            )
            cards.append((f"{name}: ROC AUC, {SET_SHORT[set_name]}", fixed(auc.get("value")), interval, detail))
    return cards


# --- the baselines side by side --------------------------------------------------------------------------------


def comparison_table(document: dict, level: str, settings: dict, main: str) -> Table | None:
    models = document.get("models") or {}
    names = [main] + sorted(n for n in models if n != main)
    sets = sorted(
        {s for n in names for s in sets_of((models.get(n) or {}).get(level) or {})},
        key=list(SETS).index,
    )
    if not sets:
        return None
    metrics = [("roc_auc", "AUC"), ("sensitivity", "sens."), ("specificity", "spec.")]
    columns = (
        ["model"] + [f"{label} {SET_SHORT[s]}" for s in sets for _, label in metrics] + ["Brier " + "/".join(sets)]
    )
    rows = []
    for name in names:
        model = models.get(name) or {}
        if "skipped" in model:
            rows.append([Cell(name, "model"), Cell(f"skipped: {model['skipped']}")] + [""] * (len(columns) - 2))
            continue
        level_block = model.get(level) or {}
        cells = [Cell(name + (" (main)" if name == main else ""), "model")]
        for s in sets:
            block = level_block.get(s) or {}
            cells += [estimate_cell((block.get("metrics") or {}).get(key)) for key, _ in metrics]
        cells.append(" / ".join(fixed((level_block.get(s) or {}).get("brier"), 3) for s in sets))
        rows.append(cells)
    caption = (
        f"{LEVELS[level]} level: every model on the same cases; value over its {ci_phrase(settings)}. "
        f"Sensitivity and specificity at each model's own threshold, chosen on inner folds for a target "
        f"sensitivity of {number(settings.get('target_sensitivity'))}."
    )
    return Table(columns, rows, caption=caption, css="compact numbers")


# --- figures of one model at one level ---------------------------------------------------------------------------


def _fold_curves(model: dict) -> list[dict]:
    folds = (model.get("roi") or {}).get("folds") or {}
    return [f["roc"] for _, f in sorted(folds.items(), key=lambda kv: str(kv[0])) if (f or {}).get("roc")]


def roc_blocks(name: str, model: dict, level: str, settings: dict, fig_prefix: str) -> list:
    level_block = model.get(level) or {}
    panels = []
    for s in sets_of(level_block):
        block = level_block[s]
        roc = block.get("roc")
        if not roc:
            continue
        auc = (block.get("metrics") or {}).get("roc_auc")
        points = []
        for key, op in (block.get("operating_points") or {}).items():
            if op.get("sensitivity") is not None and op.get("specificity") is not None:
                points.append((1 - op["specificity"], op["sensitivity"], f"operating point: {key}"))
        panels.append(
            {
                "title": PANEL_TITLE[s],
                "curve": roc,
                "label": f"{name}, AUC {estimate(auc)}",
                "band_label": f"{level_text(settings.get('ci_level'))} pointwise band",
                "folds": _fold_curves(model) if (s == "cv" and level == "roi") else [],
                "points": points,
            }
        )
    if not panels:
        return [unavailable(f"ROC curves ({LEVELS[level]} level)", "models.json holds no roc curve for this model")]
    fig_id = f"{fig_prefix}-roc"
    has_band = any(p["curve"].get("tpr_ci_low") is not None for p in panels)
    caption = (
        f"ROC curves of {name} at {LEVELS[level]} level, "
        + ", ".join(p["title"] for p in panels)
        + (f"; shaded: {level_text(settings.get('ci_level'))} subject-bootstrap pointwise band" if has_band else "")
        + ("; thin lines: each outer fold's own curve" if any(p["folds"] for p in panels) else "")
        + ". Markers: the operating points."
    )
    return [Figure(fig_id, caption, svg=figures.to_svg(figures.roc_panels(panels), fig_id, f"ROC curves of {name}"))]


def pr_blocks(name: str, model: dict, level: str, fig_prefix: str) -> list:
    level_block = model.get(level) or {}
    panels = []
    for s in sets_of(level_block):
        block = level_block[s]
        if not block.get("pr"):
            continue
        prevalence = (
            block["n_positive"] / block["n"] if block.get("n") and block.get("n_positive") is not None else None
        )
        auc = (block.get("metrics") or {}).get("pr_auc")
        panels.append(
            {
                "title": PANEL_TITLE[s],
                "recall": block["pr"]["recall"],
                "precision": block["pr"]["precision"],
                "prevalence": prevalence,
                "label": f"{name}, PR AUC {estimate(auc)}",
            }
        )
    if not panels:
        return [unavailable(f"Precision-recall curves ({LEVELS[level]} level)", "models.json holds no pr curve")]
    fig_id = f"{fig_prefix}-pr"
    caption = (
        f"Precision-recall curves of {name} at {LEVELS[level]} level ("
        + ", ".join(SETS[s] for s in sets_of(level_block) if level_block[s].get("pr"))
        + "); dotted: the prevalence of actionable cases, the precision of a model without skill."
    )
    fig = figures.pr_panels(panels)
    return [Figure(fig_id, caption, svg=figures.to_svg(fig, fig_id, f"Precision-recall curves of {name}"))]


def calibration_blocks(name: str, model: dict, level: str, fig_prefix: str) -> list:
    level_block = model.get(level) or {}
    panels = [
        {"title": PANEL_TITLE[s], "bins": level_block[s]["reliability"], "brier": level_block[s].get("brier")}
        for s in sets_of(level_block)
        if level_block[s].get("reliability")
    ]
    if not panels:
        return [unavailable(f"Calibration ({LEVELS[level]} level)", "models.json holds no reliability bins")]
    fig_id = f"{fig_prefix}-calibration"
    caption = (
        f"Reliability diagrams of {name} at {LEVELS[level]} level ("
        + ", ".join(p["title"] for p in panels)
        + "): observed fraction of actionable cases against the mean predicted probability per equal-width bin "
        "(empty bins left out); beneath, the number of cases per bin. Brier score in each title."
    )
    fig = figures.reliability_panels(panels)
    return [Figure(fig_id, caption, svg=figures.to_svg(fig, fig_id, f"Calibration of {name}"))]


def decision_blocks(name: str, model: dict, level: str, fig_prefix: str) -> list:
    level_block = model.get(level) or {}
    panels = [
        {"title": PANEL_TITLE[s], "rows": level_block[s]["net_benefit"], "label": name}
        for s in sets_of(level_block)
        if level_block[s].get("net_benefit")
    ]
    if not panels:
        return [unavailable(f"Decision curves ({LEVELS[level]} level)", "models.json holds no net_benefit")]
    fig_id = f"{fig_prefix}-decision"
    caption = (
        f"Decision curves of {name} at {LEVELS[level]} level ("
        + ", ".join(p["title"] for p in panels)
        + "): net benefit of biopsying the cases the model calls actionable at each threshold probability, "
        "against biopsying every case (treat all) and none (treat none)."
    )
    fig = figures.decision_panels(panels)
    return [Figure(fig_id, caption, svg=figures.to_svg(fig, fig_id, f"Decision curves of {name}"))]


def operating_points(block: dict) -> dict[str, dict]:
    """The set's operating points; without `operating_points`, the model's own threshold as one point."""
    points = block.get("operating_points")
    if points:
        return points
    if block.get("confusion"):
        avoided = block.get("benign_biopsies_avoided") or {}
        return {
            "model threshold": {
                "rule": "the threshold chosen on inner folds",
                "sensitivity": (block.get("metrics") or {}).get("sensitivity", {}).get("value"),
                "specificity": (block.get("metrics") or {}).get("specificity", {}).get("value"),
                "benign_biopsies_avoided": {"value": avoided.get("fraction")} if avoided else None,
                "confusion": block["confusion"],
            }
        }
    return {}


def confusion_table(confusion: dict, caption: str) -> Table:
    tp, fp, tn, fn = (confusion.get(k) for k in ("tp", "fp", "tn", "fn"))
    return Table(
        ["truth \u2193 / called \u2192", "actionable", "benign"],
        [["actionable", number(tp), number(fn)], ["benign", number(fp), number(tn)]],
        caption=caption,
        css="confusion",
    )


def threshold_blocks(name: str, model: dict, level: str, settings: dict, fig_prefix: str) -> list:
    level_block = model.get(level) or {}
    blocks = []
    rows, matrices, panels = [], [], []
    for s in sets_of(level_block):
        block = level_block[s]
        points = operating_points(block)
        for key, op in points.items():
            avoided = op.get("benign_biopsies_avoided")
            rows.append(
                [
                    SET_SHORT[s],
                    key,
                    str(op.get("rule", "")),
                    fixed(op.get("threshold"), 3),
                    fixed(op.get("sensitivity")),
                    fixed(op.get("specificity")),
                    estimate(avoided) if isinstance(avoided, dict) else "\u2013",
                ]
            )
            if op.get("confusion"):
                matrices.append(confusion_table(op["confusion"], f"{SET_SHORT[s]}, {key}"))
        if block.get("threshold_table"):
            marks = [(op["threshold"], f"{key}") for key, op in points.items() if op.get("threshold") is not None]
            panels.append({"title": PANEL_TITLE[s], "rows": block["threshold_table"], "points": marks})
    if rows:
        blocks.append(
            Table(
                [
                    "set",
                    "operating point",
                    "how it was chosen",
                    "threshold",
                    "sens.",
                    "spec.",
                    "benign biopsies avoided",
                ],
                rows,
                caption=(
                    f"Operating points of {name} at {LEVELS[level]} level. Benign biopsies avoided: the fraction of "
                    f"benign cases called benign, with its {level_text(settings.get('ci_level'))} CI where recorded."
                ),
                css="compact",
            )
        )
    if not (level_block and any("operating_points" in level_block[s] for s in sets_of(level_block))):
        blocks.append(
            unavailable(
                "The target and margin operating points",
                "models.json has no operating_points yet; shown is the single threshold each model chose on its "
                "inner folds",
            )
        )
    if matrices:
        blocks.append(Note("Confusion matrices at each operating point (rows: truth; columns: call).", "caption"))
        blocks.append(Grid(matrices))
    if panels:
        fig_id = f"{fig_prefix}-thresholds"
        caption = (
            f"Threshold trade-off of {name} at {LEVELS[level]} level ("
            + ", ".join(p["title"] for p in panels)
            + "): sensitivity and specificity (the fraction of benign biopsies avoided) at each decision "
            "threshold; vertical lines: the operating points."
        )
        fig = figures.threshold_panels(panels)
        blocks.append(Figure(fig_id, caption, svg=figures.to_svg(fig, fig_id, f"Threshold trade-off of {name}")))
    else:
        blocks.append(unavailable("Threshold trade-off", "models.json holds no threshold_table"))
    return blocks


def model_figures(name: str, model: dict, level: str, settings: dict) -> list:
    prefix = f"fig-{name}-{level}"
    return (
        [Heading(f"Discrimination ({LEVELS[level]} level)", f"models-{level}-roc")]
        if level == "roi"
        else [Note(f"{LEVELS[level]} level", "caption")]
    ) + (
        roc_blocks(name, model, level, settings, prefix)
        + pr_blocks(name, model, level, prefix)
        + ([Heading("Calibration and clinical utility", "models-calibration")] if level == "roi" else [])
        + calibration_blocks(name, model, level, prefix)
        + decision_blocks(name, model, level, prefix)
        + ([Heading("Operating points and thresholds", "models-thresholds")] if level == "roi" else [])
        + threshold_blocks(name, model, level, settings, prefix)
    )


# --- paired comparisons --------------------------------------------------------------------------------------------


def _p(test: dict | None, key: str = "p_value") -> str:
    if not test or test.get(key) is None:
        return "\u2013"
    value = test[key]
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _p_cell(test: dict | None) -> Cell:
    if not test:
        return Cell("\u2013")
    adjusted = test.get("p_adjusted")
    return Cell(_p(test), sub=f"adj. {_p(test, 'p_adjusted')}" if adjusted is not None else "")


def _clustered_rows(comparisons: list[dict]) -> list[list]:
    rows = []
    for c in comparisons:
        cl = c.get("clustered") or {}
        quoted = c.get("quote", "clustered") == "clustered"
        rows.append(
            [
                f"{c['a']} vs {c['b']}",
                LEVELS.get(c.get("level"), c.get("level", "")),
                SET_SHORT.get(c.get("set"), c.get("set", "")),
                f"{number(c.get('n'))} ({number(c.get('n_subjects'))})",
                _quoted(estimate_cell(cl.get("auc_difference")), quoted),
                _quoted(_p_cell(cl.get("auc_difference")), quoted),
                estimate_cell(cl.get("sensitivity_difference")),
                estimate_cell(cl.get("specificity_difference")),
                _p_cell(cl.get("obuchowski")),
                Cell(_p(c.get("delong")), "independent"),
                Cell(_p(c.get("mcnemar")), "independent"),
            ]
        )
    return rows


CLUSTERED_COLUMNS = [
    "A vs B",
    "level",
    "set",
    "n (subjects)",
    "\u0394AUC",
    "p",
    "\u0394sens.",
    "\u0394spec.",
    "Obuchowski p",
    "DeLong p",
    "McNemar p",
]
INDEPENDENT_COLUMNS = [
    "A vs B",
    "level",
    "set",
    "n",
    "AUC A",
    "AUC B",
    "\u0394AUC (DeLong CI)",
    "DeLong p",
    "\u0394accuracy",
    "McNemar p",
]


def _independent_rows(comparisons: list[dict]) -> list[list]:
    rows = []
    for c in comparisons:
        d, m = c.get("delong") or {}, c.get("mcnemar") or {}
        rows.append(
            [
                f"{c['a']} vs {c['b']}",
                LEVELS.get(c.get("level"), c.get("level", "")),
                SET_SHORT.get(c.get("set"), c.get("set", "")),
                number(c.get("n")),
                fixed(d.get("auc_a")),
                fixed(d.get("auc_b")),
                estimate_cell({"value": d.get("difference"), "ci_low": d.get("ci_low"), "ci_high": d.get("ci_high")}),
                _p(d),
                estimate_cell(
                    {"value": m.get("accuracy_difference"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high")}
                ),
                f"{_p(m)} ({m.get('method', '')})" if m else "\u2013",
            ]
        )
    return rows


def comparisons_blocks(document: dict, settings: dict) -> list:
    """The paired comparisons, ROI level shown and the other levels folded; the clustered tests (subjects
    resampled) are the ones to quote, the DeLong and McNemar tests assume independent cases."""
    comparisons = document.get("comparisons") or []
    if not comparisons:
        return [unavailable("Paired comparisons", "models.json has no comparisons (a single model ran)")]
    clustered = any(c.get("clustered") for c in comparisons)
    columns, rows_of = (CLUSTERED_COLUMNS, _clustered_rows) if clustered else (INDEPENDENT_COLUMNS, _independent_rows)
    if clustered:
        adjustment = settings.get("p_adjustment")
        family = settings.get("p_adjustment_family")
        caption = (
            "Paired comparisons on the same cases. Quote the clustered tests (bold): they resample subjects, so "
            "several ROIs or images of one person count as one unit; p under the value: adjusted"
            + (f" ({adjustment}" + (f" over {family}" if family else "") + ")" if adjustment else "")
            + ". DeLong and McNemar (grey) assume independent cases, which cases of one subject are not; their "
            "p-values are optimistic and shown for comparison only."
        )
    else:
        caption = (
            f"Paired comparisons of the main model with each baseline on the same cases "
            f"({level_text(settings.get('ci_level'))} CIs). DeLong (AUC) and McNemar (accuracy at each "
            "model's threshold) both assume independent cases; ROIs and images of one subject are not "
            "independent, so these p-values are optimistic."
        )
    roi = [c for c in comparisons if c.get("level") == "roi"]
    rest = [c for c in comparisons if c.get("level") != "roi"]
    blocks = [Table(columns, rows_of(roi or comparisons), caption=caption, css="compact numbers")]
    if roi and rest:
        blocks.append(
            Details(
                "Comparisons at image and breast level",
                [Table(columns, rows_of(rest), caption="As above, at image and breast level.", css="compact numbers")],
            )
        )
    if not clustered:
        blocks.append(
            unavailable(
                "Clustered (subject-level) comparisons, the ones to quote",
                "models.json comparisons carry no clustered block yet",
            )
        )
    return blocks


def _quoted(cell: Cell, quoted: bool) -> Cell:
    if quoted:
        cell.css = (cell.css + " quoted").strip()
    return cell


# --- the fine-class model ------------------------------------------------------------------------------------------


def multiclass_blocks(document: dict, settings: dict) -> list:
    blocks = []
    for name, model in sorted((document.get("models") or {}).items()):
        for s, block in (model.get("multiclass") or {}).items():
            if not isinstance(block, dict) or not block.get("confusion"):
                continue
            labels = block["labels"]
            rows = [[label] + [number(v) for v in row] for label, row in zip(labels, block["confusion"])]
            macro = block.get("macro") or {}
            caption = (
                f"{name}, {SETS.get(s, s)}: fine-class confusion (rows: truth; columns: predicted). "
                f"Accuracy {estimate(block.get('accuracy'))}, macro F1 {estimate(macro.get('f1'))}, macro recall "
                f"{estimate(macro.get('recall'))} ({level_text(settings.get('ci_level'))} CIs)."
            )
            blocks.append(Table(["truth \u2193 / predicted \u2192"] + labels, rows, caption=caption, css="confusion"))
        by_class = model.get("by_fine_class") or {}
        if name == document.get("main_model") and by_class:
            for s, classes in by_class.items():
                rows = [[c, number(v.get("n")), percent(v.get("called_actionable"))] for c, v in classes.items()]
                blocks.append(
                    Table(
                        ["fine class", "ROIs", "called actionable"],
                        rows,
                        caption=f"{name}, {SETS.get(s, s)}: how often each fine class is called actionable.",
                        css="compact",
                    )
                )
    return [Grid(blocks)] if blocks else []


def models_section(inputs: Inputs, config: dict) -> Section:
    section = Section("models", "5. Models")
    document = inputs.json("models")
    if document is None:
        section.blocks.append(unavailable("Models", inputs.why_absent("models")))
        return section
    settings = settings_of(document, config)
    name = main_model(document, config)
    models = document.get("models") or {}
    main = models.get(name) or {}
    section.blocks.append(
        Note(
            f"Main model: {name}. Cross-validation pools the outer folds' held-out predictions; the eval split is "
            f"predicted once by the final model. Intervals: {ci_phrase(settings)}.",
            tone="caption",
        )
    )
    section.blocks.append(Heading("Main model and baselines", "models-table"))
    table = comparison_table(document, "roi", settings, name)
    section.blocks.append(table or unavailable("Model table", "models.json holds no ROI-level results"))
    others = [t for t in (comparison_table(document, lv, settings, name) for lv in ("image", "breast")) if t]
    if others:
        section.blocks.append(Details("Image and breast level: the same table", others))
    if "skipped" in main:
        section.blocks.append(unavailable(f"Figures of {name}", f"the model was skipped: {main['skipped']}"))
    else:
        section.blocks += model_figures(name, main, "roi", settings)
    section.blocks.append(Heading("Paired comparisons", "models-comparisons"))
    section.blocks += comparisons_blocks(document, settings)
    fine = multiclass_blocks(document, settings)
    if fine:
        section.blocks.append(Heading("Fine classes", "models-fine-class"))
        section.blocks += fine
    skipped = [
        f"{n}: fold(s) {', '.join(map(str, m['skipped_folds']))} skipped"
        for n, m in sorted(models.items())
        if m.get("skipped_folds")
    ]
    if skipped:
        section.blocks.append(
            Note("Skipped model jobs: " + "; ".join(skipped) + " (reasons in search.json).", "caption")
        )
    return section
