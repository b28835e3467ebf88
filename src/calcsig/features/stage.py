"""Features stage entry point: one ROI's masks + image -> objects table + ROI table."""

from __future__ import annotations

import functools
import logging
import warnings
from collections import Counter
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import yaml
from scipy import ndimage as ndi

from calcsig.config import fill_defaults, resource_path
from calcsig.errors import ConfigError
from calcsig.features.distribution import (
    DISTRIBUTION_NAMES,
    HANDCRAFTED_NAMES,
    distribution_features,
    handcrafted_features,
    object_geometry,
)
from calcsig.features.radiomics_fast import CroppedExtractor, ExtractionCounts, object_band_crop
from calcsig.features.regionprops import REGIONPROPS_NAMES, region_properties
from calcsig.features.table import object_columns, roi_columns
from calcsig.features.topology import multiscale_topology, topology_names
from calcsig.paths import SCHEMA_DIR, atomic_path

logger = logging.getLogger(__name__)

MASK_KEYS = (
    "offset_yx",
    "pixel_spacing_mm",
    "foreground",
    "object_ids",
    "n_dropped_small",
    "background_band_px",
    "dilation_radii_px",
    "min_distance_px",
)


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    return yaml.safe_load((SCHEMA_DIR / "config" / "features.schema.yaml").read_text())


def features_params(params: dict | None) -> dict:
    """The `features` config section with defaults filled in, validated (ConfigError otherwise)."""
    filled = fill_defaults(params or {}, _schema())
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(filled), key=str)
    if errors:
        raise ConfigError(
            "config section 'features': "
            + "; ".join(f"{'/'.join(map(str, e.path)) or '(section)'}: {e.message}" for e in errors)
        )
    return filled


@functools.lru_cache(maxsize=8)
def radiomics_extractor(params_file: str, prefix: str) -> CroppedExtractor:
    """One extractor per parameter file and process, reused for every ROI; the file is relative to the working
    directory, or one shipped with calcsig (`resources/...`)."""
    path = resource_path(params_file)
    if not path.is_file():
        raise ConfigError(f"config key 'features.radiomics_*': parameter file {path} does not exist")
    return CroppedExtractor(path, prefix)


def local_features(
    image: np.ndarray,
    foreground: np.ndarray,
    spacing_mm: float,
    band_px: float,
    fg: CroppedExtractor | None,
    bg: CroppedExtractor | None,
    regionprops: bool = True,
) -> tuple[np.ndarray, dict]:
    """Per-object features of one ROI.

    Parameters
    ----------
    image : 2-D intensities over the ROI crop (any numeric dtype; used as float64).
    foreground : int label image of the same shape, objects 1..n.
    spacing_mm : pixel spacing in mm.
    band_px : background band width in pixels (the band of object i: pixels within
        band_px of i, no foreground pixel; computed on a crop).
    fg, bg : extractors for the object and its band, or None to skip the family.

    Returns
    -------
    (n, n_features) array, columns fg names, bg names, then the 13 region
    properties if `regionprops`; and the QC counts
    ``{"fg": ExtractionCounts, "bg": ExtractionCounts, "rp_nan_values": int}``.

    Parallelise over ROIs with processes (one Snakemake job per ROI), not threads:
    numpy warnings raised inside pyradiomics are collected with
    ``warnings.catch_warnings``, which is process-global.
    """
    image = np.asarray(image, dtype=np.float64)
    n = int(foreground.max()) if foreground.size else 0
    blocks = []
    counts = {"fg": ExtractionCounts(), "bg": ExtractionCounts(), "rp_nan_values": 0}
    boxes = ndi.find_objects(foreground, max_label=n) if n else []
    for extractor, family in ((fg, "fg"), (bg, "bg")):
        if extractor is None:
            continue
        # numpy inside pyradiomics warns on degenerate matrices ("Mean of empty
        # slice"); pyradiomics already turns those into NaN (counted), so the
        # warnings go to the log, once per message, instead of the console.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = _family_values(extractor, family, image, foreground, boxes, spacing_mm, band_px, counts[family])
        for message, times in Counter(str(w.message) for w in caught).items():
            logger.debug("%s radiomics: %d x numpy warning %r", family, times, message)
        blocks.append(values)
    if regionprops:
        rp = region_properties(foreground, spacing_mm) if n else np.zeros((0, len(REGIONPROPS_NAMES)))
        counts["rp_nan_values"] = int(np.isnan(rp).sum())
        blocks.append(rp)
    return (np.hstack(blocks) if blocks else np.zeros((n, 0))), counts


def _family_values(
    extractor: CroppedExtractor,
    family: str,
    image: np.ndarray,
    foreground: np.ndarray,
    boxes: list,
    spacing_mm: float,
    band_px: float,
    counts: ExtractionCounts,
) -> np.ndarray:
    """(n, features) of one radiomics family: the objects themselves ("fg") or their bands ("bg")."""
    values = np.full((len(boxes), len(extractor.feature_names)), np.nan)
    for i, box in enumerate(boxes):
        label = i + 1
        if box is None:  # label without pixels: nothing to describe
            counts.skipped_too_small += 1
            continue
        if family == "fg":
            values[i] = extractor.extract(image[box], foreground[box] == label, spacing_mm, counts)
        else:
            crop, band = object_band_crop(foreground, label, band_px, box)
            values[i] = extractor.extract(image[crop], band, spacing_mm, counts)
    return values


def read_masks(path: str | Path) -> dict:
    """The arrays of a masks npz (docs/contracts.md), checked for the keys this stage needs."""
    with np.load(path) as data:
        missing = [k for k in MASK_KEYS if k not in data]
        if missing:
            raise ValueError(f"{path}: masks file lacks {', '.join(missing)}")
        return {k: data[k] for k in data.files}


def roi_features(image: np.ndarray, masks: dict, params: dict, roi_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Objects table and one-row ROI table of one ROI from its image crop and masks arrays."""
    p = features_params(params)
    families = p["families"]
    foreground = np.asarray(masks["foreground"], dtype=np.int32)
    spacing = float(masks["pixel_spacing_mm"])
    radii = np.asarray(masks["dilation_radii_px"], dtype=np.float64)
    object_ids = np.asarray(masks["object_ids"]).astype(np.int64)
    n = int(foreground.max()) if foreground.size else 0
    if len(object_ids) != n:
        raise ValueError(f"ROI {roi_id}: {len(object_ids)} object_ids for labels 1..{n}")
    fg = radiomics_extractor(p["radiomics_foreground"], "fg_") if families["foreground_radiomics"] else None
    bg = radiomics_extractor(p["radiomics_background"], "bg_") if families["background_radiomics"] else None

    values, counts = local_features(
        image, foreground, spacing, float(masks["background_band_px"]), fg, bg, families["regionprops"]
    )
    columns = object_columns(fg.feature_names if fg else [], bg.feature_names if bg else [])
    if not families["regionprops"]:
        columns = columns[: len(columns) - len(REGIONPROPS_NAMES)]
    objects = pd.DataFrame(values, columns=columns[2:])
    objects.insert(0, "object_id", object_ids)
    objects.insert(0, "roi_id", pd.Series([roi_id] * n, dtype="string"))

    row: dict = {"roi_id": roi_id, "n_objects": n}
    if families["topology"]:
        row.update(zip(topology_names(len(radii)), multiscale_topology(masks["min_distance_px"], radii)))
    centroids, areas = object_geometry(foreground, spacing)
    if families["handcrafted"]:
        row.update(zip(HANDCRAFTED_NAMES, handcrafted_features(centroids, areas)))
    if families["distribution"]:
        row.update(zip(DISTRIBUTION_NAMES, distribution_features(foreground, spacing, centroids)))
    nan_features = {**counts["fg"].nan_by_feature, **counts["bg"].nan_by_feature}
    row.update(
        {
            "qc_n_dropped_small": int(masks["n_dropped_small"]),
            "qc_fg_skipped_too_small": counts["fg"].skipped_too_small,
            "qc_bg_skipped_too_small": counts["bg"].skipped_too_small,
            "qc_fg_constant_intensity": counts["fg"].constant_intensity,
            "qc_bg_constant_intensity": counts["bg"].constant_intensity,
            "qc_fg_nan_values": counts["fg"].nan_values,
            "qc_bg_nan_values": counts["bg"].nan_values,
            "qc_rp_nan_values": counts["rp_nan_values"],
            "qc_radiomics_messages": counts["fg"].messages + counts["bg"].messages,
            "qc_nan_features": ";".join(f"{k}={v}" for k, v in sorted(nan_features.items())),
        }
    )
    roi = pd.DataFrame([row], columns=roi_columns(len(radii), families))
    roi["roi_id"] = roi["roi_id"].astype("string")
    roi["qc_nan_features"] = roi["qc_nan_features"].astype("string")
    for name in roi.columns:
        if name.startswith(("n_objects", "qc_")) and name != "qc_nan_features":
            roi[name] = roi[name].astype(np.int64)
    if counts["fg"].skipped_too_small or counts["bg"].skipped_too_small:
        logger.info(
            "ROI %s: %d objects and %d bands too small for pyradiomics (features NaN)",
            roi_id,
            counts["fg"].skipped_too_small,
            counts["bg"].skipped_too_small,
        )
    return objects, roi


def extract_roi_features(
    masks_npz: str | Path,
    image_path: str | Path,
    params: dict | None,
    out_objects_parquet: str | Path,
    out_roi_parquet: str | Path,
    roi_id: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features stage for one ROI: read masks and image, write both parquet tables atomically.

    masks_npz : ``results/masks/{roi_id}.npz`` (docs/contracts.md);
    image_path : the ROI's image (read with calcsig.imageio.read_image, cropped to
        the masks' offset and shape);
    params : the `features` config section (defaults from features.schema.yaml);
    roi_id : defaults to the masks file's stem.
    Returns (objects, roi) as written.
    """
    from calcsig.imageio import read_image

    masks_npz = Path(masks_npz)
    roi_id = roi_id if roi_id is not None else masks_npz.stem
    masks = read_masks(masks_npz)
    pixels = read_image(image_path).pixels
    y0, x0 = (int(v) for v in masks["offset_yx"])
    h, w = masks["foreground"].shape
    crop = pixels[y0 : y0 + h, x0 : x0 + w]
    if crop.shape != (h, w):
        raise ValueError(
            f"{masks_npz}: ROI crop {h}x{w} at (y={y0}, x={x0}) does not fit image {image_path} of shape {pixels.shape}"
        )
    objects, roi = roi_features(crop, masks, params or {}, roi_id)
    for table, target in ((objects, out_objects_parquet), (roi, out_roi_parquet)):
        with atomic_path(target) as tmp:
            table.to_parquet(tmp, index=False)
    logger.info(
        "ROI %s: %d objects, %d object columns, %d ROI columns", roi_id, len(objects), objects.shape[1], roi.shape[1]
    )
    return objects, roi
