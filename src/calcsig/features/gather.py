"""Concatenate the per-ROI feature tables into one table of objects and one of ROIs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..paths import atomic_path


def read_tables(paths, workers: int = 1) -> pd.DataFrame:
    """The parquet tables at `paths` one after the other (header-only ones add no row; all
    header-only: the first one's empty table), read by `workers` threads.

    The tables are joined as Arrow tables and converted to pandas once: with a few hundred
    feature columns, parsing each file's metadata and converting it costs more than its rows.
    Threads suffice: Arrow reads and decodes without holding the GIL.
    """
    paths = [str(p) for p in paths]
    if not paths:
        return pd.DataFrame()
    with ThreadPoolExecutor(max(1, min(int(workers), len(paths)))) as pool:
        tables = list(pool.map(lambda path: pq.ParquetFile(path).read(use_threads=False), paths))
    non_empty = [t for t in tables if t.num_rows]
    if not non_empty:
        return tables[0].to_pandas()
    # permissive: a column missing from a table is null there, and int widens to float, as pd.concat does
    return pa.concat_tables(non_empty, promote_options="permissive").to_pandas()


def _concat(paths, key: list[str], workers: int = 1) -> pd.DataFrame:
    table = read_tables(paths, workers)
    if len(table) and table.duplicated(key).any():
        dup = table.loc[table.duplicated(key, keep=False), key].drop_duplicates().head(10).to_dict("records")
        raise ValueError(f"feature tables repeat {key}: {dup}")
    return table.sort_values(key, kind="stable").reset_index(drop=True) if len(table) else table


def gather_feature_tables(
    object_paths, roi_paths, out_objects, out_rois, workers: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per object (all ROIs) and one row per ROI, sorted by ID, written atomically.

    ROIs with no object contribute a header-only objects table; their ROI row
    (n_objects 0) is kept, so the model sees every ROI. workers : threads reading the
    tables (the outputs do not depend on it).
    """
    objects = _concat(object_paths, ["roi_id", "object_id"], workers)
    rois = _concat(roi_paths, ["roi_id"], workers)
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
