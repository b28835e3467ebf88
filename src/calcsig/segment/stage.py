"""Entry points of the `segment` stage: file paths and a params dict in, files out.

`params` is the `segment` config section (see workflow/schemas/config/segment.schema.yaml);
missing keys take the schema defaults.
"""

from __future__ import annotations

import functools
import json
import zipfile
from pathlib import Path

import joblib
import jsonschema
import numpy as np
import pandas as pd
import yaml

from calcsig.errors import ConfigError
from calcsig.paths import SCHEMA_DIR, atomic_path
from calcsig.segment.candidates import Candidates, detect_candidates, object_geometry
from calcsig.segment.evaluate import ImageEval
from calcsig.segment.selector import CandidateSelector, train_selector

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
    "selector_score",
]


@functools.cache
def section_schema(section: str) -> dict:
    """JSON Schema of one config section (workflow/schemas/config/<section>.schema.yaml)."""
    return yaml.safe_load((SCHEMA_DIR / "config" / f"{section}.schema.yaml").read_text())


def section_params(section: str, params: dict | None) -> dict:
    """`params` validated against the section schema, with defaults filled in."""
    schema = section_schema(section)
    filled = {k: v["default"] for k, v in schema["properties"].items()}
    filled.update(params or {})
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(filled), key=str)
    if errors:
        raise ConfigError(
            f"config section '{section}': "
            + "; ".join(f"{'/'.join(map(str, e.path)) or '(section)'}: {e.message}" for e in errors)
        )
    return filled


def segment_params(params: dict | None) -> dict:
    """The `segment` section with defaults (idempotent)."""
    return section_params("segment", params)


def load_selector(path: str | Path) -> CandidateSelector:
    """A selector saved by `train_selector_files`."""
    selector = joblib.load(path)
    if not isinstance(selector, CandidateSelector):
        raise ConfigError(f"{path}: not a calcsig CandidateSelector (got {type(selector).__name__})")
    return selector


def segment_image(
    image: np.ndarray, pixel_spacing_mm: float, params: dict | None = None, selector: CandidateSelector | None = None
) -> tuple[Candidates, pd.DataFrame]:
    """Segment one image: breast, HDoG candidates, then the selector if given.

    Returns the kept candidates (labels relabelled 1..n in the table's order) and
    the object table (columns `OBJECT_COLUMNS`; `selector_score` empty without a
    selector). Centroids in px (x = column) and mm from the top-left corner.
    """
    p = segment_params(params)
    cand = detect_candidates(image, pixel_spacing_mm, p, with_features=selector is not None)
    n = int(cand.labels.max())
    score = np.full(n, np.nan)
    if selector is not None and n:
        score = selector.score_candidates(cand.features)
        keep = score >= p["selector_threshold"]
        lut = np.zeros(n + 1, dtype=np.int32)
        lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        cand.labels = lut[cand.labels]
        cand.hdog.dog_response = cand.hdog.dog_response[keep]
        cand.hdog.scale_px = cand.hdog.scale_px[keep]
        cand.centroid_yx_px = cand.centroid_yx_px[keep]
        cand.area_px = cand.area_px[keep]
        cand.features = cand.features[keep]
        score = score[keep]
        n = int(keep.sum())
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
            "selector_score": score,
        },
        columns=OBJECT_COLUMNS,
    )
    return cand, table


def _spacing(image_spacing: float | None, given: float | None, path) -> float:
    spacing = given if given is not None else image_spacing
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
) -> None:
    """Write the label image (compressed npz) and object table (TSV), each atomically."""
    arrays = {
        "labels": labels.astype(np.int32, copy=False),
        "breast": breast.astype(bool, copy=False),
        "pixel_spacing_mm": np.float64(pixel_spacing_mm),
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
    selector_path: str | Path | None = None,
    pixel_spacing_mm: float | None = None,
) -> int:
    """Segment the image at `image_path`; write `out_npz` (labels, breast,
    pixel_spacing_mm) and `out_tsv` (one row per object, header only when none).

    pixel_spacing_mm : overrides the file's own spacing (e.g. from images.tsv).
    Returns the number of objects written.
    """
    from calcsig.imageio import read_image

    data = read_image(image_path)
    spacing = _spacing(data.pixel_spacing_mm, pixel_spacing_mm, image_path)
    selector = load_selector(selector_path) if selector_path else None
    cand, table = segment_image(data.pixels, spacing, params, selector)
    write_segmentation(cand.labels, cand.breast, spacing, table, out_npz, out_tsv)
    return len(table)


def read_truth_labels(path: str | Path) -> np.ndarray:
    """Ground-truth label image (PNG/TIFF/npy; 0 background, 1..n objects) as int32."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path).astype(np.int32)
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img).astype(np.int32)


def train_selector_files(
    image_paths,
    truth_paths,
    params: dict | None,
    out_model: str | Path,
    circles=None,
    normal=None,
    pixel_spacings_mm=None,
) -> CandidateSelector:
    """Train the candidate selector on training-split images and save it (joblib).

    image_paths : images; truth_paths : per image a label-image path or None.
    circles : per image a list of (x, y, radius) px calcification circles (weak labels) or None.
    normal : per image True for a normal film (all its candidates are negatives).
    pixel_spacings_mm : per image spacing overriding the file's, or None.
    An image with neither truth, circles nor `normal` contributes nothing.
    """
    from calcsig.imageio import read_image

    n = len(image_paths)
    truth_paths = list(truth_paths) if truth_paths is not None else [None] * n
    circles = list(circles) if circles is not None else [None] * n
    normal = list(normal) if normal is not None else [False] * n
    spacings = list(pixel_spacings_mm) if pixel_spacings_mm is not None else [None] * n

    def samples():
        for path, truth, circ, norm, spacing in zip(image_paths, truth_paths, circles, normal, spacings):
            if truth is None and not circ and not norm:
                continue
            data = read_image(path)
            yield {
                "image": data.pixels,
                "pixel_spacing_mm": _spacing(data.pixel_spacing_mm, spacing, path),
                "truth": read_truth_labels(truth) if truth else None,
                "circles": circ,
                "normal": bool(norm),
            }

    selector = train_selector(samples(), params)
    with atomic_path(out_model) as tmp:
        joblib.dump(selector, tmp)
    return selector


def read_segmentation(npz_path: str | Path) -> dict:
    """labels, breast, pixel_spacing_mm from a segment npz."""
    with np.load(npz_path) as z:
        return {"labels": z["labels"], "breast": z["breast"], "pixel_spacing_mm": float(z["pixel_spacing_mm"])}


def write_json(obj: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


__all__ = [
    "segment_image",
    "segment_image_file",
    "train_selector_files",
    "segment_params",
    "load_selector",
    "read_segmentation",
    "read_truth_labels",
    "object_geometry",
    "OBJECT_COLUMNS",
]


def _circles_by_image(rois: pd.DataFrame) -> dict[str, list[tuple[float, float, float]]]:
    """Calcification circles (x, y, radius px) per image from rois.tsv."""
    out: dict[str, list] = {}
    if rois.empty:
        return out
    abn = rois.get("abnormality", pd.Series("", index=rois.index)).fillna("").astype(str).str.lower()
    sel = (rois["shape"] == "circle") & abn.str.contains("calc")
    for _, row in rois[sel].iterrows():
        out.setdefault(str(row["image_id"]), []).append(
            (float(row["center_x"]), float(row["center_y"]), float(row["radius_px"]))
        )
    return out


def _load_eval_image(
    image_id: str,
    segment_dir: Path,
    truth_path,
    circles,
    normal: bool,
    selector_threshold: float,
    use_selector: bool = True,
) -> ImageEval:
    seg = read_segmentation(segment_dir / f"{image_id}.npz")
    table = pd.read_csv(segment_dir / f"{image_id}.tsv", sep="\t")
    has_score = use_selector and (bool(table["selector_score"].notna().any()) if len(table) else False)
    scores = (table["selector_score"] if has_score else table["dog_response"]).to_numpy(dtype=np.float64)
    return ImageEval(
        image_id,
        seg["labels"],
        scores,
        seg["breast"],
        seg["pixel_spacing_mm"],
        truth=read_truth_labels(truth_path) if truth_path else None,
        circles_px=np.asarray(circles, float) if circles else None,
        normal=normal,
        keep=scores >= selector_threshold if has_score else None,
    )


def evaluate_segmentation_files(
    images_tsv: str | Path,
    rois_tsv: str | Path,
    segment_dir: str | Path,
    params: dict | None,
    out_json: str | Path,
    out_froc_png: str | Path | None = None,
    out_gallery_png: str | Path | None = None,
    image_ids=None,
    plain_hdog_from_scores: bool = False,
) -> dict:
    """Evaluate segment outputs against the corpus's truth; write metrics JSON and figures.

    images_tsv, rois_tsv : corpus tables. Pixel truth = images with `truth_mask_path`;
        cluster truth = circle ROIs whose `abnormality` mentions calcification;
        normal films = images of those sources without any ROI row.
    segment_dir : holds `{image_id}.npz` and `.tsv` from `segment_image_file`.
    image_ids : the images to evaluate (e.g. the held-out split); all when None.
    plain_hdog_from_scores : when the segment output kept every HDoG candidate
        (segmented with `selector_threshold: 0`), plain HDoG is the same
        candidates ranked by `dog_response`; it is evaluated alongside, reported
        under `plain_hdog` and drawn on the same FROC figure.
    The FROC score is `selector_score` when present, else `dog_response`; the
    operating point keeps objects with `selector_score >= selector_threshold`
    (all objects without a selector). Segmenting with `selector_threshold: 0`
    therefore gives the selector's whole FROC curve and still the operating point.
    JSON keys: `tpr_at_0.4_fp_per_cm2` (pixel truth), `cluster_sensitivity`,
    `false_clusters_per_normal_image` (cluster truth), `froc` (curve corners), ...
    """
    from calcsig.segment.evaluate import evaluate_images, plot_froc, plot_gallery
    from calcsig.tables import read_table

    p = segment_params(params)
    images = read_table(images_tsv, "images")
    rois = read_table(rois_tsv, "rois")
    if image_ids is not None:
        wanted = {str(i) for i in image_ids}
        images = images[images["image_id"].astype(str).isin(wanted)]
    circles = _circles_by_image(rois)
    with_roi = set(rois["image_id"].astype(str))
    cluster_sources = set(images.loc[images["image_id"].astype(str).isin(circles), "source"].astype(str))
    truth_col = images["truth_mask_path"] if "truth_mask_path" in images else pd.Series(None, index=images.index)

    def load(use_selector: bool = True):
        out = []
        for (_, row), truth in zip(images.iterrows(), truth_col):
            iid = str(row["image_id"])
            normal = str(row["source"]) in cluster_sources and iid not in with_roi
            truth = truth if isinstance(truth, str) and truth else None
            if truth or iid in circles or normal:
                out.append(
                    _load_eval_image(
                        iid, Path(segment_dir), truth, circles.get(iid), normal, p["selector_threshold"], use_selector
                    )
                )
        return out

    kwargs = dict(
        distance_mm=p["match_distance_mm"],
        iou_min=p["match_iou"],
        fp_rate=p["fp_per_cm2"],
        cluster_min_objects=p["cluster_min_objects"],
        cluster_diameter_mm=p["cluster_diameter_mm"],
    )
    evals = load()
    metrics, froc = evaluate_images(evals, **kwargs)
    metrics["n_images"] = len(evals)
    curves = {}
    if froc is not None:
        metrics["froc"] = froc.corners()
        curves["segment"] = froc
    if plain_hdog_from_scores:
        base_metrics, base_froc = evaluate_images(load(use_selector=False), **kwargs)
        if base_froc is not None:
            base_metrics["froc"] = base_froc.corners()
            curves["plain HDoG"] = base_froc
        metrics["plain_hdog"] = base_metrics
    write_json(metrics, out_json)
    if out_froc_png is not None:
        plot_froc(curves, out_froc_png, p["fp_per_cm2"])
    if out_gallery_png is not None:
        plot_gallery(_gallery_panels(evals, images, p), out_gallery_png)
    return metrics


def _gallery_panels(evals, images: pd.DataFrame, p: dict) -> list[dict]:
    """Crops centred on a truth object or annotated circle (else the top detection);
    detections drawn at the operating point."""
    from calcsig.imageio import read_image

    paths = dict(zip(images["image_id"].astype(str), images["path"].astype(str)))
    panels = []
    for im in evals[: p["gallery_size"]]:
        if im.truth is not None and im.truth.max() > 0:
            _, centroid, _ = object_geometry(im.truth)
            cy, cx = centroid[0]
        elif im.circles_px is not None:
            cx, cy = im.circles_px[0][:2]
        elif im.pred.max() > 0:
            _, centroid, _ = object_geometry(im.pred)
            cy, cx = centroid[int(np.argmax(im.scores))]
        else:
            continue
        half = int(round(p["gallery_crop_mm"] / im.pixel_spacing_mm / 2))
        h, w = im.pred.shape
        y0, x0 = max(int(cy) - half, 0), max(int(cx) - half, 0)
        y1, x1 = min(int(cy) + half, h), min(int(cx) + half, w)
        pixels = read_image(paths[im.image_id]).pixels
        pred = im.pred[y0:y1, x0:x1]
        if im.keep is not None:  # draw the operating point, not every scored candidate
            pred = np.where(np.r_[False, im.keep][pred], pred, 0)
        panels.append(
            {
                "title": im.image_id,
                "image": pixels[y0:y1, x0:x1],
                "truth": None if im.truth is None else im.truth[y0:y1, x0:x1],
                "pred": pred,
            }
        )
    return panels
