"""Section 4, features: counts per family, extraction QC, and the most important features with their meaning."""

from __future__ import annotations

import pandas as pd

from .blocks import Heading, Note, Section, Table, fixed, number, unavailable
from .inputs import Inputs

# Column prefixes of the feature tables (docs/contracts.md, Features) and what each family is.
FAMILIES = {
    "fg_": ("objects", "foreground radiomics (shape, intensity, texture of each calcification)"),
    "bg_": ("objects", "background-band radiomics (the tissue around each calcification)"),
    "rp_": ("objects", "region properties (size, elongation, solidity; BI-RADS morphology)"),
    "topo_": ("ROI", "multiscale graph topology of the cluster (per dilation scale)"),
    "hc_": ("ROI", "handcrafted cluster descriptors (spread of sizes and positions)"),
    "dist_": ("ROI", "distribution descriptors (BI-RADS distribution: grouped, linear, segmental, regional)"),
    "qc_": ("ROI", "quality-control counts of the extraction"),
}


def family_counts(objects_columns: list[str] | None, roi_columns: list[str] | None) -> list[list[str]]:
    rows = []
    for prefix, (table, meaning) in FAMILIES.items():
        columns = objects_columns if table == "objects" else roi_columns
        if columns is None:
            continue
        n = sum(c.startswith(prefix) for c in columns)
        rows.append([prefix.rstrip("_"), table, number(n), meaning])
    return rows


def importance_values(search: dict | None) -> tuple[pd.Series, str] | None:
    """Feature importances recorded by the model stage, largest first, and their kind (e.g. gain).

    Accepted under `feature_importance`: {name: value}, {"kind": ..., "values": {name: value}},
    or a list of {"feature", "importance"}.
    """
    if not search or not search.get("feature_importance"):
        return None
    recorded = search["feature_importance"]
    kind = "importance"
    if isinstance(recorded, dict) and "values" in recorded:
        kind = str(recorded.get("kind", kind))
        recorded = recorded["values"]
    if isinstance(recorded, list):
        recorded = {r["feature"]: r["importance"] for r in recorded}
    series = pd.Series(recorded, dtype=float).sort_values(ascending=False, kind="stable")
    return series, kind


def meaning(feature: str, catalogue: dict[str, str]) -> str:
    """The catalogue description of a model feature: its own column, or the longest column name it contains
    (model features are aggregations of object columns, e.g. mean__fg_glcm_Contrast)."""
    if feature in catalogue:
        return catalogue[feature]
    matches = [c for c in catalogue if c in feature]
    if not matches:
        return ""
    column = max(matches, key=len)
    return f"{catalogue[column]} ({column}, aggregated)"


def load_catalogue(inputs: Inputs) -> dict[str, str]:
    """Column -> description from the run's feature catalogue (written by the features stage, as docs/features.md)."""
    if not inputs.has("catalogue"):
        return {}
    catalogue = pd.read_csv(inputs.path("catalogue"), sep="\t", dtype=str, keep_default_na=False)
    return dict(zip(catalogue["column"], catalogue["description"]))


def importance_blocks(inputs: Inputs, config: dict) -> list:
    main = (inputs.json("models") or {}).get("main_model") or config.get("model", {}).get("main_model")
    recorded = importance_values(inputs.json("importance"))
    if recorded is None:
        because = (
            inputs.why_absent("importance")
            if not inputs.has("importance")
            else "the model stage records no feature_importance in the final main model's search.json"
        )
        return [unavailable("Top features by importance", because)]
    values, kind = recorded
    top = values.head(config.get("report", {}).get("top_features", 15))
    catalogue = load_catalogue(inputs)
    rows = [[name, fixed(value, 3), meaning(name, catalogue) or "\u2013"] for name, value in top.items()]
    caption = (
        f"The {len(top)} most important of {len(values)} features of the final {main} model "
        f"(fitted on train + dev), by {kind} as recorded by the model stage; meanings from the feature catalogue "
        "(docs/features.md)."
    )
    return [Table(["feature", kind, "meaning"], rows, caption=caption, css="compact")]


def features_section(inputs: Inputs, config: dict) -> Section:
    section = Section("features", "4. Features")
    objects = inputs.parquet_shape("objects")
    rois = inputs.parquet("features")
    if objects is None and rois is None:
        section.blocks.append(unavailable("Features", inputs.why_absent("features")))
        return section
    section.blocks.append(Heading("Families", "features-families"))
    rows = family_counts(objects[1] if objects else None, list(rois.columns) if rois is not None else None)
    n_objects = objects[0] if objects else None
    caption = (
        f"Feature columns per family: {number(n_objects)} objects in "
        f"{number(len(rois) if rois is not None else None)} ROIs."
    )
    section.blocks.append(Table(["family", "table", "columns", "what it describes"], rows, caption=caption))
    if rois is not None and len(rois):
        counts = rois["n_objects"]
        empty = int((counts == 0).sum())
        section.blocks.append(
            Note(
                f"Objects per ROI: median {number(float(counts.median()))}, range {number(int(counts.min()))}"
                f"\u2013{number(int(counts.max()))}; {number(empty)} ROI(s) without any detected calcification "
                "(kept, with the values for an empty ROI).",
                tone="caption",
            )
        )
        section.blocks.append(Heading("Extraction quality control", "features-qc"))
        qc = [c for c in rois.columns if c.startswith("qc_") and pd.api.types.is_numeric_dtype(rois[c])]
        qc_rows = [[c, number(int(rois[c].sum())), number(int((rois[c] > 0).sum()))] for c in qc]
        section.blocks.append(
            Table(
                ["QC count", "total", "ROIs affected"],
                qc_rows,
                caption="What could not be computed and why (docs/features.md explains each count).",
                css="compact",
            )
        )
    section.blocks.append(Heading("Most important features", "features-importance"))
    section.blocks += importance_blocks(inputs, config)
    return section
