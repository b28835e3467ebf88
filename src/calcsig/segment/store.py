"""Candidates on disk: detect them on an image file, and store and read them.

The `segment` rule detects HDoG candidates on each image once and stores them
with their selector features (`results/segment/{image_id}.npz` and `.tsv`);
the selector is trained from, and the masks and evaluation stages score, those
stored candidates, so a change to the selector never reruns detection.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from calcsig.errors import ConfigError
from calcsig.paths import atomic_path
from calcsig.segment.candidates import FEATURE_NAMES, Candidates, detect_candidates

OBJECT_COLUMNS = [
    "object_id",
    "centroid_x_px",
    "centroid_y_px",
    "centroid_x_mm",
    "centroid_y_mm",
    "area_px",
    "area_mm2",
    "scale_mm",
    "dog_response",
]
# the selector's inputs, stored with each candidate so the selector never reruns detection
SELECTOR_FEATURE_COLUMNS = [f"sel_{name}" for name in FEATURE_NAMES]
log = logging.getLogger(__name__)
CANDIDATE_COLUMNS = OBJECT_COLUMNS + SELECTOR_FEATURE_COLUMNS


def candidate_table(cand: Candidates, pixel_spacing_mm: float) -> pd.DataFrame:
    """One row per candidate (columns `CANDIDATE_COLUMNS`); centroids in px (x = column) and mm."""
    n = int(cand.labels.max())
    table = pd.DataFrame(
        {
            "object_id": np.arange(1, n + 1, dtype=np.int64),
            "centroid_x_px": cand.centroid_yx_px[:, 1],
            "centroid_y_px": cand.centroid_yx_px[:, 0],
            "centroid_x_mm": cand.centroid_yx_px[:, 1] * pixel_spacing_mm,
            "centroid_y_mm": cand.centroid_yx_px[:, 0] * pixel_spacing_mm,
            "area_px": cand.area_px.astype(np.int64),
            "area_mm2": cand.area_px * pixel_spacing_mm**2,
            "scale_mm": cand.hdog.scale_px * pixel_spacing_mm,
            "dog_response": cand.hdog.dog_response,
        },
        columns=OBJECT_COLUMNS,
    )
    features = pd.DataFrame(np.asarray(cand.features).reshape(n, len(FEATURE_NAMES)), columns=SELECTOR_FEATURE_COLUMNS)
    return pd.concat([table, features], axis=1)


def segment_image(
    image: np.ndarray, pixel_spacing_mm: float, params: dict | None = None
) -> tuple[Candidates, pd.DataFrame]:
    """Breast region and HDoG candidates of one image, with the candidate table (`CANDIDATE_COLUMNS`)."""
    cand = detect_candidates(image, pixel_spacing_mm, params)
    return cand, candidate_table(cand, pixel_spacing_mm)


def image_spacing(file_spacing: float | None, given: float | None, path) -> float:
    """The pixel spacing to use: the one given (e.g. from images.tsv), else the file's own."""
    spacing = given if given is not None else file_spacing
    if spacing is None or not spacing > 0:
        raise ConfigError(f"{path}: pixel spacing unknown (the file does not say and none was given)")
    return float(spacing)


def write_segmentation(
    labels: np.ndarray,
    breast: np.ndarray,
    pixel_spacing_mm: float,
    table: pd.DataFrame,
    out_npz: str | Path,
    out_tsv: str | Path,
    extra: dict | None = None,
) -> None:
    """Write the label image (compressed npz) and candidate table (TSV), each atomically.

    extra : further arrays stored in the npz (e.g. the truth of inserted lesions).
    """
    arrays = {
        "labels": labels.astype(np.int32, copy=False),
        "breast": breast.astype(bool, copy=False),
        "pixel_spacing_mm": np.float64(pixel_spacing_mm),
        **(extra or {}),
    }
    # A standard compressed npz (np.load reads it), written at zlib level 1: the
    # label image is mostly zeros, and level 1 is several times faster than
    # savez_compressed's level 6 for a few per cent more bytes.
    with atomic_path(out_npz) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, value in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="", float_format="%.6g")


def segment_image_file(
    image_path: str | Path,
    params: dict | None,
    out_npz: str | Path,
    out_tsv: str | Path,
    pixel_spacing_mm: float | None = None,
) -> int:
    """Detect the candidates of the image at `image_path`; write `out_npz` (labels,
    breast, pixel_spacing_mm) and `out_tsv` (one row per candidate, header only when none).

    params : `segment` keys of `CANDIDATE_KEYS`.
    pixel_spacing_mm : overrides the file's own spacing (e.g. from images.tsv).
    Returns the number of candidates written.
    """
    from calcsig.imageio import read_image

    data = read_image(image_path)
    spacing = image_spacing(data.pixel_spacing_mm, pixel_spacing_mm, image_path)
    cand, table = segment_image(data.pixels, spacing, params)
    if cand.upsampling_factor > 1:
        log.info(
            "%s: %.4g mm pixels upsampled x%d for detection (working spacing %.4g mm)",
            image_path,
            spacing,
            cand.upsampling_factor,
            spacing / cand.upsampling_factor,
        )
    write_segmentation(cand.labels, cand.breast, spacing, table, out_npz, out_tsv)
    return len(table)


def read_segmentation(npz_path: str | Path) -> dict:
    """labels, breast, pixel_spacing_mm from a segment npz."""
    with np.load(npz_path) as z:
        return {"labels": z["labels"], "breast": z["breast"], "pixel_spacing_mm": float(z["pixel_spacing_mm"])}


def read_candidates(tsv_path: str | Path) -> pd.DataFrame:
    """The candidate table of one image (columns `CANDIDATE_COLUMNS`)."""
    table = pd.read_csv(tsv_path, sep="\t")
    missing = [c for c in CANDIDATE_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"{tsv_path}: candidate table lacks {', '.join(missing)} (written by an older calcsig?)")
    return table


def segmented_images(manifests) -> list[str]:
    """IDs of the images segment batch `manifests` wrote candidates for (the quality gate may skip some)."""
    from calcsig.batch import read_manifests

    table = read_manifests(manifests)
    return sorted(table.loc[table["npz"] != "", "image_id"]) if len(table) else []
