"""Concatenate the per-ROI feature tables into one table of objects and one of ROIs."""

from __future__ import annotations

import pandas as pd

from ..paths import atomic_path


def _concat(paths, key: list[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in paths]
    non_empty = [f for f in frames if len(f)]
    table = pd.concat(non_empty, ignore_index=True) if non_empty else (frames[0].iloc[:0] if frames else pd.DataFrame())
    if len(table) and table.duplicated(key).any():
        dup = table.loc[table.duplicated(key, keep=False), key].drop_duplicates().head(10).to_dict("records")
        raise ValueError(f"feature tables repeat {key}: {dup}")
    return table.sort_values(key, kind="stable").reset_index(drop=True) if len(table) else table


def gather_feature_tables(object_paths, roi_paths, out_objects, out_rois) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per object (all ROIs) and one row per ROI, sorted by ID, written atomically.

    ROIs with no object contribute a header-only objects table; their ROI row
    (n_objects 0) is kept, so the model sees every ROI.
    """
    objects = _concat(object_paths, ["roi_id", "object_id"])
    rois = _concat(roi_paths, ["roi_id"])
    for table, out in ((objects, out_objects), (rois, out_rois)):
        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
    return objects, rois


def write_feature_catalogue(radiomics_foreground, radiomics_background, n_scales: int, out_tsv) -> pd.DataFrame:
    """Every feature column of this run with its table, family, unit and meaning (TSV, as docs/features.md).

    radiomics_foreground, radiomics_background : the run's pyradiomics settings files;
    n_scales : the number of dilation scales (masks.dilation_scales_mm).
    """
    from .radiomics_fast import CroppedExtractor
    from .table import feature_catalogue

    catalogue = feature_catalogue(
        CroppedExtractor(radiomics_foreground, "fg_"), CroppedExtractor(radiomics_background, "bg_"), n_scales
    )
    with atomic_path(out_tsv) as tmp:
        catalogue.to_csv(tmp, sep="\t", index=False)
    return catalogue
