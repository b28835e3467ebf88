"""The self-contained HTML report: every table, metric and figure in one file.

Sections are built from the stage outputs as they are on disk (JSON metrics,
TSV tables, PNG figures); figures are embedded as data URIs so the page needs
nothing beside it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from . import __version__
from .paths import atomic_path

MAX_TABLE_ROWS = 60


@dataclass
class Section:
    """One part of the report: a title, a short explanation and its blocks of HTML."""

    title: str
    caption: str = ""
    blocks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table_html(frame: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> str:
    """A pandas table as HTML, numbers to 4 significant digits, long tables cut with a note."""
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{'' if pd.isna(v) else _fmt(v)}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    note = f"<p class='note'>first {max_rows} of {len(frame)} rows</p>" if len(frame) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}"


def flatten(document, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, scalar) pairs of a nested JSON document; lists of scalars are joined."""
    if isinstance(document, dict):
        pairs = []
        for key, value in document.items():
            pairs += flatten(value, f"{prefix}{key}.")
        return pairs
    if isinstance(document, list):
        if all(not isinstance(v, (dict, list)) for v in document):
            text = ", ".join(_fmt(v) for v in document[:20]) + (" ..." if len(document) > 20 else "")
            return [(prefix.rstrip("."), f"[{len(document)}] {text}" if document else "[]")]
        pairs = []
        for i, value in enumerate(document[:MAX_TABLE_ROWS]):
            pairs += flatten(value, f"{prefix}{i}.")
        return pairs
    return [(prefix.rstrip("."), document)]


def json_html(path: str | Path) -> str:
    """A JSON file as a two-column key/value table."""
    with open(path) as fh:
        pairs = flatten(json.load(fh))
    return table_html(pd.DataFrame(pairs, columns=["key", "value"]), max_rows=400)


def tsv_html(path: str | Path, max_rows: int = MAX_TABLE_ROWS) -> str:
    return table_html(pd.read_csv(path, sep="\t"), max_rows)


def image_html(path: str | Path, alt: str = "") -> str:
    """A PNG embedded as a data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    caption = html.escape(alt)
    img = f"<img alt='{caption}' src='data:image/png;base64,{data}'/>"
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def corpus_section(images_tsv, rois_tsv, subjects_tsv) -> Section:
    """Counts of the corpus by source, site, label and fine class."""
    images = pd.read_csv(images_tsv, sep="\t", keep_default_na=False, na_values=[""])
    rois = pd.read_csv(rois_tsv, sep="\t", keep_default_na=False, na_values=[""])
    subjects = pd.read_csv(subjects_tsv, sep="\t", keep_default_na=False, na_values=[""])
    summary = pd.DataFrame(
        {
            "subjects": [len(subjects)],
            "images": [len(images)],
            "rois": [len(rois)],
            "actionable_rois": [int((rois["label"] == "actionable").sum())],
            "benign_rois": [int((rois["label"] == "benign").sum())],
        }
    )
    section = Section(
        "Corpus", "What went in: subjects, images and labelled regions of interest.", [table_html(summary)]
    )
    for column in ("site", "density"):
        if column in images and images[column].notna().any():
            merged = rois.merge(images[["image_id", column]], on="image_id", how="left")
            counts = pd.crosstab(merged[column].fillna("missing"), merged["label"]).reset_index()
            section.blocks.append(f"<h3>ROIs by {column} and label</h3>" + table_html(counts))
    if "fine_class" in rois and rois["fine_class"].notna().any():
        counts = rois["fine_class"].fillna("missing").value_counts().rename_axis("fine_class").reset_index()
        section.blocks.append("<h3>ROIs by fine class</h3>" + table_html(counts))
    return section


_TEMPLATE = jinja2.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#f2f2f2}
.warning{background:#fff0f0;border:2px solid #c00;padding:0.5em 1em;margin:1em 0}
.note,.caption{color:#555;font-size:0.9em}img{max-width:100%}nav a{margin-right:1em}
</style></head><body>
<h1>{{ title }}</h1>
<p class="caption">calcsig {{ version }} &middot; seed {{ seed }} &middot; config digest {{ config_digest }}</p>
<nav>{% for s in sections %}<a href="#s{{ loop.index }}">{{ s.title }}</a>{% endfor %}</nav>
{% for s in sections %}<section id="s{{ loop.index }}"><h2>{{ s.title }}</h2>
{% for w in s.warnings %}<div class="warning">{{ w }}</div>{% endfor %}
<p class="caption">{{ s.caption }}</p>
{% for b in s.blocks %}{{ b }}{% endfor %}</section>{% endfor %}
</body></html>
""")


def render_report(sections: list[Section], out_html: str | Path, title: str, config: dict) -> None:
    """Write the report page atomically.

    The page carries the config's digest instead of a date, so the same config
    and seed give the same bytes.
    """
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    page = _TEMPLATE.render(
        title=title, sections=sections, version=__version__, seed=config.get("seed"), config_digest=digest
    )
    with atomic_path(out_html) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")


def splits_section(balance_tsv, balance_json, audit_json, audit_tsv) -> Section:
    """The split's balance and the leak audit; every finding is shown as a warning."""
    with open(balance_json) as fh:
        balance = json.load(fh)
    with open(audit_json) as fh:
        audit = json.load(fh)
    section = Section(
        "Splits and leak audit",
        "Subjects are assigned whole to train, dev and eval (and outer folds inside train+dev); "
        "an external cohort, when configured, is a split of its own. "
        "The audit looks for subjects in several splits, duplicated images and label conflicts.",
    )
    for kind in ("subject_overlap", "exact_duplicates", "near_duplicates", "label_conflicts"):
        found = audit.get(kind, [])
        if found:
            section.warnings.append(f"{kind.replace('_', ' ')}: {len(found)} finding(s); see the audit table below")
    scopes = balance.get("summary", {}).get("scopes", {})
    if scopes:
        rows = [
            {
                "scope": scope,
                "subjects": ", ".join(f"{g} {n}" for g, n in s.get("n_subjects", {}).items()),
                "worst |SMD|": s.get("worst_abs_smd"),
                "where": f"{s.get('worst_covariate')} = {s.get('worst_level')}"
                f" ({' vs '.join(s.get('worst_pair') or [])})",
                "label deviation (pp)": s.get("label_max_deviation_pp"),
            }
            for scope, s in scopes.items()
        ]
        section.blocks.append("<h3>Balance summary</h3>" + table_html(pd.DataFrame(rows)))
    section.blocks.append("<h3>Balance per covariate level</h3>" + tsv_html(balance_tsv, max_rows=120))
    section.blocks.append("<h3>Audit</h3>" + tsv_html(audit_tsv, max_rows=200))
    return section


def segmentation_section(metrics_json, froc_png, gallery_png) -> Section:
    section = Section(
        "Segmentation",
        "HDoG microcalcification detection on the held-out images, against "
        "pixel truth (FROC) and cluster annotations where present.",
    )
    section.blocks += [
        json_html(metrics_json),
        image_html(froc_png, "FROC"),
        image_html(gallery_png, "Detections on held-out crops"),
    ]
    return section


def features_section(rois_parquet) -> Section:
    """How many objects each ROI yielded, and the QC counts of the extraction."""
    rois = pd.read_parquet(rois_parquet)
    section = Section(
        "Features",
        "Per-object radiomics and region properties, per-ROI topology and "
        "distribution descriptors. QC counts record what could not be computed and why.",
    )
    if len(rois):
        counts = rois["n_objects"].describe().to_frame().T.reset_index(drop=True)
        section.blocks.append("<h3>Objects per ROI</h3>" + table_html(counts))
        empty = int((rois["n_objects"] == 0).sum())
        if empty:
            section.warnings.append(f"{empty} ROI(s) have no detected calcification (recorded; the run went on)")
        qc = [c for c in rois.columns if c.startswith("qc_") and pd.api.types.is_numeric_dtype(rois[c])]
        if qc:
            section.blocks.append("<h3>QC totals</h3>" + table_html(rois[qc].sum().rename("total").reset_index()))
    return section


def models_section(models_json, models_tsv) -> Section:
    section = Section(
        "Models",
        "Metrics with 95% bootstrap confidence intervals (resampling subjects), per model, "
        "level and set: pooled outer-fold cross-validation and the eval split, "
        "predicted once by the final model. Comparisons are paired on the same cases.",
    )
    table = pd.read_csv(models_tsv, sep="\t")
    section.blocks.append("<h3>Metrics</h3>" + table_html(table, max_rows=400))
    with open(models_json) as fh:
        document = json.load(fh)
    for name, model in document.get("models", {}).items():
        for set_name, block in (model.get("multiclass") or {}).items():
            if isinstance(block, dict) and block.get("confusion"):
                confusion = pd.DataFrame(block["confusion"], columns=[f"predicted {c}" for c in block["labels"]])
                confusion.insert(0, "true class", block["labels"])
                section.blocks.append(
                    f"<h3>{html.escape(name)}: fine-class confusion ({html.escape(set_name)})</h3>"
                    + table_html(confusion)
                )
    comparisons = document.get("comparisons")
    if comparisons:
        pairs = flatten(comparisons)
        section.blocks.append(
            "<h3>Model comparisons</h3>"
            + table_html(pd.DataFrame(pairs, columns=["comparison", "value"]), max_rows=400)
        )
    return section
