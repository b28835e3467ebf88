"""Column names of the feature tables and the generated catalogue docs/features.md.

Regenerate the catalogue after changing a radiomics YAML or a family:
``python -m calcsig.features.table docs/features.md`` (a test checks it is current).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from calcsig.features.distribution import DISTRIBUTION_NAMES, HANDCRAFTED_NAMES
from calcsig.features.radiomics_fast import CroppedExtractor
from calcsig.features.regionprops import REGIONPROPS_NAMES
from calcsig.features.topology import GRAPH_FEATURES, topology_names

FOREGROUND_YAML = "resources/radiomics_foreground.yaml"
BACKGROUND_YAML = "resources/radiomics_background.yaml"
DEFAULT_N_SCALES = 8

QC_NAMES = (
    "qc_n_dropped_small",
    "qc_fg_skipped_too_small",
    "qc_bg_skipped_too_small",
    "qc_fg_constant_intensity",
    "qc_bg_constant_intensity",
    "qc_fg_nan_values",
    "qc_bg_nan_values",
    "qc_rp_nan_values",
    "qc_radiomics_messages",
    "qc_nan_features",
)

_QC_DESCRIPTIONS = {
    "qc_n_dropped_small": "objects removed by the masks stage's minimum-area filter (not in the objects table)",
    "qc_fg_skipped_too_small": "objects pyradiomics cannot describe (one pixel, or spanning one row or column): "
    "all fg_ values NaN",
    "qc_bg_skipped_too_small": "bands pyradiomics cannot describe (empty: the object is surrounded by other "
    "objects or the ROI border; one pixel; one row or column): all bg_ values NaN",
    "qc_fg_constant_intensity": "objects of one intensity (texture features degenerate; pyradiomics gives its "
    "defined values, NaN where none)",
    "qc_bg_constant_intensity": "bands of one intensity (as above)",
    "qc_fg_nan_values": "NaN fg_ values among objects that were extracted (feature undefined for those pixels)",
    "qc_bg_nan_values": "NaN bg_ values among bands that were extracted",
    "qc_rp_nan_values": "NaN rp_ values (a label without pixels)",
    "qc_radiomics_messages": "pyradiomics WARNING/ERROR log records (the text is in the rule's log)",
    "qc_nan_features": "which features were NaN inside extracted masks and how often, `name=count` joined by "
    "`;` (empty when none)",
}

_GRAPH_DESCRIPTIONS = {
    "n_components": "number of connected components (0 objects: 0)",
    "mean_degree": "average vertex degree (0 or 1 object: 0)",
    "max_degree": "maximum vertex degree (0 or 1 object: 0)",
    "mean_eccentricity": "vertex eccentricity within its component (edges), averaged over vertices (isolated: 0)",
    "diameter": "largest component diameter in edges (0 or 1 object: 0)",
    "mean_clustering": "average local clustering coefficient (degree < 2: 0, as networkx)",
    "giant_component_ratio": "vertices in the largest component / all vertices (0 objects: 0; 1 object: 1)",
    "isolated_fraction": "vertices without neighbour / all vertices (0 objects: 0; 1 object: 1)",
}

_HANDCRAFTED_DESCRIPTIONS = {
    "hc_area_std_mm2": ("mm2", "population standard deviation of object areas (< 2 objects: 0)"),
    "hc_centroid_xy_correlation": (
        "",
        "Pearson correlation of centroid x and y (< 2 objects or zero variance in x or y: 0)",
    ),
    "hc_mean_pairwise_distance_mm": ("mm", "mean distance between centroids over all pairs (< 2 objects: 0)"),
}

_DISTRIBUTION_DESCRIPTIONS = {
    "dist_n_objects": ("", "number of objects (BI-RADS: a group is >= 5 within 1 cm)"),
    "dist_extent_mm": ("mm", "largest distance across all object pixels (regional vs grouped; 0 objects: 0)"),
    "dist_hull_area_mm2": ("mm2", "convex-hull area of all object pixels (0 objects: 0)"),
    "dist_density_hull_per_cm2": ("1/cm2", "objects per cm2 of that hull (0 objects: 0)"),
    "dist_density_roi_per_cm2": ("1/cm2", "objects per cm2 of the ROI (diffuse vs grouped)"),
    "dist_elongation": ("", "1 - sqrt(l2/l1) of the centroid covariance: 0 round, 1 on a line (< 2 objects: 0)"),
    "dist_linearity": (
        "",
        "largest centroid distance / minimum-spanning-tree length: 1 strung along a line "
        "(linear), small for clumps and branches (< 2 objects: 0)",
    ),
    "dist_branching": (
        "",
        "fraction of spanning-tree vertices with degree >= 3 (segmental/ductal branching; < 4 objects: 0)",
    ),
    "dist_mst_mean_edge_mm": ("mm", "mean spanning-tree edge: typical neighbour spacing (< 2 objects: 0)"),
}

_REGIONPROPS_DESCRIPTIONS = {
    "rp_area_mm2": ("mm2", "pixel count x spacing^2"),
    "rp_convex_area_mm2": ("mm2", "convex-hull pixel count x spacing^2"),
    "rp_major_axis_length_mm": ("mm", "major axis of the ellipse with the same second moments"),
    "rp_minor_axis_length_mm": ("mm", "minor axis of that ellipse"),
    "rp_eccentricity": ("", "eccentricity of that ellipse (one pixel: 0)"),
    "rp_solidity": ("", "area / convex area"),
}

_UNITS = {  # pyradiomics features with physical units (spacing set to pixel_spacing_mm)
    "shape2D_MeshSurface": "mm2",
    "shape2D_PixelSurface": "mm2",
    "shape2D_Perimeter": "mm",
    "shape2D_PerimeterSurfaceRatio": "1/mm",
    "shape2D_MaximumDiameter": "mm",
}

_RADIOMICS_CLASSES = {
    "shape2D": "2-D shape",
    "firstorder": "first-order intensity statistics",
    "glcm": "gray-level co-occurrence matrix",
    "glrlm": "gray-level run-length matrix",
    "glszm": "gray-level size-zone matrix",
    "gldm": "gray-level dependence matrix",
    "ngtdm": "neighbouring gray-tone difference matrix",
}


def object_columns(fg_names, bg_names) -> list[str]:
    """Columns of ``{roi_id}.objects.parquet`` for the given radiomics names."""
    return ["roi_id", "object_id", *fg_names, *bg_names, *REGIONPROPS_NAMES]


def roi_columns(n_scales: int, families: dict) -> list[str]:
    """Columns of ``{roi_id}.roi.parquet``; families switched off contribute none."""
    cols = ["roi_id", "n_objects"]
    if families["topology"]:
        cols += topology_names(n_scales)
    if families["handcrafted"]:
        cols += list(HANDCRAFTED_NAMES)
    if families["distribution"]:
        cols += list(DISTRIBUTION_NAMES)
    return cols + list(QC_NAMES)


def feature_catalogue(fg: CroppedExtractor, bg: CroppedExtractor, n_scales: int = DEFAULT_N_SCALES) -> pd.DataFrame:
    """Every output column with its table, family, unit and meaning."""
    rows = [
        ("objects", "id", "roi_id", "", "ROI id (rois.tsv)"),
        ("objects", "id", "object_id", "", "segment object id (masks object_ids)"),
    ]
    for extractor, family, where in ((fg, "fg", "the object"), (bg, "bg", "the object's background band")):
        for name in extractor.feature_names:
            cls, feature = name[len(family) + 1 :].split("_", 1)
            rows.append(
                (
                    "objects",
                    family,
                    name,
                    _UNITS.get(f"{cls}_{feature}", ""),
                    f"pyradiomics {_RADIOMICS_CLASSES[cls]}: {feature}, on {where}",
                )
            )
    for name in REGIONPROPS_NAMES:
        unit, text = _REGIONPROPS_DESCRIPTIONS.get(name, ("", f"Hu moment invariant {name[-1]} (one pixel: 0)"))
        rows.append(("objects", "rp", name, unit, text))
    rows += [("roi", "id", "roi_id", "", "ROI id"), ("roi", "id", "n_objects", "", "objects in the ROI")]
    for k in range(1, n_scales + 1):
        for feature in GRAPH_FEATURES:
            rows.append(
                (
                    "roi",
                    "topo",
                    f"topo_s{k}_{feature}",
                    "edges" if feature in ("mean_eccentricity", "diameter") else "",
                    f"scale {k}: {_GRAPH_DESCRIPTIONS[feature]}",
                )
            )
    for names, family, table in (
        (HANDCRAFTED_NAMES, "hc", _HANDCRAFTED_DESCRIPTIONS),
        (DISTRIBUTION_NAMES, "dist", _DISTRIBUTION_DESCRIPTIONS),
    ):
        for name in names:
            unit, text = table[name]
            rows.append(("roi", family, name, unit, text))
    for name in QC_NAMES:
        rows.append(("roi", "qc", name, "", _QC_DESCRIPTIONS[name]))
    return pd.DataFrame(rows, columns=["table", "family", "column", "unit", "description"])


_INTRO = """\
# Features

Generated by `python -m calcsig.features.table docs/features.md` from the
radiomics parameter files and the code; do not edit by hand (a test checks that
this page is current). Contract: docs/contracts.md, section Features.

Per ROI the features stage writes `{{roi_id}}.objects.parquet` (one row per
object: {n_obj} columns) and `{{roi_id}}.roi.parquet` (one row: {n_roi} columns
with the default 8 dilation scales).

## Which pyradiomics features, and why

pyradiomics {version}, 2-D, image type Original, fixed bin count (16 bins on the
object, 32 on the band: mammograms come in 12-16-bit device units, so a fixed
bin width would make the number of gray levels depend on the device; see the
comments in the YAML files). Every non-deprecated feature of the enabled
classes is kept except exact duplicates:

- foreground ({n_fg} features, `resources/radiomics_foreground.yaml`): shape2D
  (7 of 9), firstorder (18), glcm (23 of 24), glrlm (16), glszm (16), gldm (14),
  ngtdm (5). Dropped: glcm SumAverage (= 2 x JointAverage for pyradiomics'
  symmetric GLCM), shape2D MajorAxisLength and MinorAxisLength (identical to
  rp_major_axis_length_mm and rp_minor_axis_length_mm). Deprecated features
  (firstorder StandardDeviation = sqrt(Variance), shape2D
  SphericalDisproportion = 1 / Sphericity, and glcm and gldm duplicates or
  constants) are never enabled.
- background band ({n_bg} features, `resources/radiomics_background.yaml`): the
  same minus shape2D: the band's shape is the object's outline grown by a fixed
  width, so it repeats fg_/rp_ shape and adds only ROI-border clipping.

The published pipeline used 90 foreground and 87 background features; its
exact list is not available to us, so these counts are not an attempt to
reproduce it: the rule here is "all features of the 2-D classes, minus exact
duplicates and deprecated aliases", which is reproducible from the YAML files.

Objects pyradiomics cannot describe (one pixel; spanning a single row or
column; an empty band when an object is walled in by others or the ROI border)
get NaN for the whole family and are counted in `qc_fg_skipped_too_small` /
`qc_bg_skipped_too_small`; single features that pyradiomics returns as NaN are
counted in `qc_*_nan_values` and listed in `qc_nan_features`.

## How the local features are computed fast, with identical values

For segment-based extraction of the Original image, pyradiomics crops image and
mask to the mask's bounding box before any feature class runs, so a feature
depends only on that box. `calcsig.features.radiomics_fast.CroppedExtractor`
reads and validates the YAML once (with pyradiomics' own extractor), refuses
settings for which this is not exact (filters, normalisation, resampling,
resegmentation), and per object hands the feature classes the box crop of the
object (and of its band: the object's box grown by the band width, where the
band is computed with a distance transform on that crop only). It also
discretises each mask once instead of once per class and caches each class's
feature-name table. The values equal `RadiomicsFeatureExtractor.execute` on the
whole-ROI mask exactly (tests/test_features_radiomics.py, benchmarks/features.py;
figures in BENCHMARKS.md). The checkMask rule is reproduced: a mask that
pyradiomics would refuse gets NaN for the family, counted in QC.

## Degenerate ROIs

Zero or one object never gives NaN in the ROI table: the graph, handcrafted
and distribution values for those cases are listed in each description below
(chosen as the value meaning "no spread / no structure"). An ROI without
objects has a header-only objects table.

## Columns

| table | family | column | unit | description |
|---|---|---|---|---|
"""


def render_markdown(catalogue: pd.DataFrame, n_fg: int, n_bg: int) -> str:
    """docs/features.md from :func:`feature_catalogue`."""
    import radiomics

    counts = catalogue.groupby("table").size()
    text = _INTRO.format(
        n_obj=counts["objects"], n_roi=counts["roi"], version=radiomics.__version__, n_fg=n_fg, n_bg=n_bg
    )
    lines = [f"| {r.table} | {r.family} | `{r.column}` | {r.unit} | {r.description} |" for r in catalogue.itertuples()]
    return text + "\n".join(lines) + "\n"


def default_catalogue_markdown(resources: str | Path = "resources") -> str:
    """docs/features.md for the shipped parameter files (in `resources`) and 8 dilation scales."""
    fg = CroppedExtractor(Path(resources) / Path(FOREGROUND_YAML).name, "fg_")
    bg = CroppedExtractor(Path(resources) / Path(BACKGROUND_YAML).name, "bg_")
    return render_markdown(feature_catalogue(fg, bg), len(fg.feature_names), len(bg.feature_names))


def main(argv: list[str]) -> int:
    """`python -m calcsig.features.table docs/features.md` from the repository root."""
    target = Path(argv[0]) if argv else Path("docs") / "features.md"
    target.write_text(default_catalogue_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
