"""Quality gate: why an image or ROI cannot be measured, as stable codes with one sentence each.

Pure functions on arrays: the caller reads the image, computes the breast
region (`calcsig.segment.breast.breast_mask`, as the segment stage does) and
passes them in. An empty list means the image or ROI can be scored.
Thresholds are the `qc` config section (src/calcsig/schemas/config/qc.schema.yaml);
sizes are checked in pixels at the image's own spacing and in millimetres.

`gate` applies `qc.on_bad_image`: with `fail` it raises calcsig.errors.QCError
naming the image or ROI and every reason; with `skip` it returns False and the
caller records `qc_row(...)` in its QC table.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import jsonschema
import numpy as np
import yaml

from .config import fill_defaults
from .errors import ConfigError, QCError
from .paths import SCHEMA_DIR

# Every code `image_issues` and `roi_issues` can return, with what it means.
CODES = {
    "no_pixel_spacing": "the pixel spacing is missing, zero, negative or not finite",
    "image_too_small_px": "the shortest image side is below qc.min_image_side_px",
    "image_too_small_mm": "the shortest image side is below qc.min_image_side_mm",
    "non_finite_pixels": "the image holds NaN or infinite values",
    "constant_image": "every pixel has the same value: there is no content to measure",
    "breast_too_small": "the breast region covers less of the image than qc.min_breast_fraction",
    "breast_too_large": "the breast region covers more of the image than qc.max_breast_fraction",
    "roi_outside_image": "the ROI's box has no pixel inside its image",
    "roi_too_small_px": "the ROI's box is narrower than qc.min_roi_side_px",
    "roi_too_small_mm": "the ROI's box is narrower than qc.min_roi_side_mm",
    "roi_outside_breast": "less of the ROI than qc.min_roi_breast_overlap lies in the breast region",
    "image_failed_qc": "the ROI's image failed its own checks",
}
QC_COLUMNS = ["kind", "id", "status", "codes", "reasons"]
# the `qc` keys each check reads: the segment rule gets the first, the masks rule the second
IMAGE_QC_KEYS = ("on_bad_image", "min_image_side_px", "min_image_side_mm", "min_breast_fraction", "max_breast_fraction")
ROI_QC_KEYS = ("on_bad_image", "min_roi_side_px", "min_roi_side_mm", "min_roi_breast_overlap")
PASSED, FAILED = "ok", "failed_qc"


@dataclass(frozen=True)
class QCIssue:
    """One reason an image or ROI cannot be scored: a stable `code` (a key of CODES) and a sentence."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@functools.cache
def _schema() -> dict:
    return yaml.safe_load((SCHEMA_DIR / "config" / "qc.schema.yaml").read_text())


def qc_params(params: Mapping | None) -> dict:
    """The `qc` section with defaults filled in; ConfigError naming each wrong key."""
    filled = fill_defaults(dict(params or {}), _schema())
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(filled), key=lambda e: e.message)
    if errors:
        raise ConfigError(
            "\n".join(f"config key '{'.'.join(['qc', *map(str, e.absolute_path)])}': {e.message}" for e in errors)
        )
    return filled


def image_issues(
    pixels: np.ndarray, pixel_spacing_mm: float | None, breast: np.ndarray | None, params: Mapping | None = None
) -> list[QCIssue]:
    """Why an image cannot be scored (empty when it can).

    Parameters
    ----------
    pixels : (H, W) array
        The image as read (calcsig.imageio.read_image).
    pixel_spacing_mm : float
        Pixel edge in mm.
    breast : (H, W) bool array or None
        Breast region from calcsig.segment.breast.breast_mask with the run's
        segment.skin_margin_mm and border_margin_mm; None skips the area check.
    params : the `qc` config section (defaults for missing keys).

    Checks: spacing known; shortest side at least qc.min_image_side_px pixels
    and qc.min_image_side_mm mm; finite, non-constant pixels; breast region
    between qc.min_breast_fraction and qc.max_breast_fraction of the image
    (checked only on non-constant images: a constant image has no outline).
    """
    p = qc_params(params)
    pixels = np.asarray(pixels)
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {pixels.shape}")
    issues = []
    height, width = pixels.shape
    side_px = min(height, width)
    spacing_known = _positive_finite(pixel_spacing_mm)
    if not spacing_known:
        issues.append(QCIssue("no_pixel_spacing", f"pixel spacing {pixel_spacing_mm!r} mm is not a positive number"))
    if side_px < p["min_image_side_px"]:
        issues.append(
            QCIssue(
                "image_too_small_px",
                f"the image is {width} x {height} pixels; its shortest side is below "
                f"qc.min_image_side_px = {p['min_image_side_px']}",
            )
        )
    if spacing_known and side_px * pixel_spacing_mm < p["min_image_side_mm"]:
        issues.append(
            QCIssue(
                "image_too_small_mm",
                f"the image is {width * pixel_spacing_mm:.3g} x {height * pixel_spacing_mm:.3g} mm; its shortest "
                f"side is below qc.min_image_side_mm = {p['min_image_side_mm']:g} mm",
            )
        )
    if pixels.size == 0:
        return issues
    if np.issubdtype(pixels.dtype, np.floating) and not np.isfinite(pixels).all():
        issues.append(QCIssue("non_finite_pixels", f"{int((~np.isfinite(pixels)).sum())} pixel(s) are NaN or infinite"))
        return issues
    low, high = pixels.min(), pixels.max()
    if low == high:
        issues.append(QCIssue("constant_image", f"every pixel is {low.item()}: there is no content to measure"))
        return issues
    if breast is not None:
        breast = np.asarray(breast, dtype=bool)
        if breast.shape != pixels.shape:
            raise ValueError(f"breast mask of shape {breast.shape} does not match the image's {pixels.shape}")
        fraction = float(breast.mean())
        if fraction < p["min_breast_fraction"]:
            issues.append(
                QCIssue(
                    "breast_too_small",
                    f"the breast region covers {fraction:.3f} of the image, below qc.min_breast_fraction = "
                    f"{p['min_breast_fraction']:g}",
                )
            )
        elif fraction > p["max_breast_fraction"]:
            issues.append(
                QCIssue(
                    "breast_too_large",
                    f"the breast region covers {fraction:.3f} of the image, above qc.max_breast_fraction = "
                    f"{p['max_breast_fraction']:g}",
                )
            )
    return issues


def roi_issues(
    roi: Mapping,
    pixel_spacing_mm: float,
    breast: np.ndarray,
    params: Mapping | None = None,
    mask: np.ndarray | None = None,
) -> list[QCIssue]:
    """Why a ROI cannot be scored (empty when it can).

    Parameters
    ----------
    roi : mapping
        The ROI's rois.tsv row: `shape` and x_min, y_min, x_max, y_max (half-open,
        pixels), and center_x, center_y, radius_px for circles.
    pixel_spacing_mm : float
        Pixel edge of its image, in mm.
    breast : (H, W) bool array
        The image's breast region (as stored by the segment stage).
    params : the `qc` config section (defaults for missing keys).
    mask : (H, W) array or None
        The ROI's mask for shape `mask` (nonzero = inside); its box is used otherwise.

    Checks: the box has pixels inside the image; its shortest side is at least
    qc.min_roi_side_px pixels and qc.min_roi_side_mm mm; at least
    qc.min_roi_breast_overlap of its pixels (disk for a circle, mask for a mask
    ROI, else the box) lie in the breast region. An image-level ROI (shape
    `image`) is the whole image and is not checked.
    """
    p = qc_params(params)
    if roi.get("shape") == "image":
        return []
    breast = np.asarray(breast, dtype=bool)
    height, width = breast.shape
    box = _roi_box(roi)
    if box is None:
        return [QCIssue("roi_outside_image", "the ROI has neither a box nor a circle")]
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return [QCIssue("roi_too_small_px", f"the ROI covers no pixel (box [{x0},{x1}) x [{y0},{y1}))")]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return [
            QCIssue(
                "roi_outside_image",
                f"box [{x0},{x1}) x [{y0},{y1}) has no pixel inside the image of {width} x {height} pixels",
            )
        ]
    issues = []
    side_px = min(cx1 - cx0, cy1 - cy0)
    if side_px < p["min_roi_side_px"]:
        issues.append(
            QCIssue(
                "roi_too_small_px",
                f"the ROI is {cx1 - cx0} x {cy1 - cy0} pixels; its shortest side is below "
                f"qc.min_roi_side_px = {p['min_roi_side_px']}",
            )
        )
    if side_px * pixel_spacing_mm < p["min_roi_side_mm"]:
        issues.append(
            QCIssue(
                "roi_too_small_mm",
                f"the ROI is {(cx1 - cx0) * pixel_spacing_mm:.3g} x {(cy1 - cy0) * pixel_spacing_mm:.3g} mm; its "
                f"shortest side is below qc.min_roi_side_mm = {p['min_roi_side_mm']:g} mm",
            )
        )
    region = _roi_region(roi, (cx0, cy0, cx1, cy1), mask, breast.shape)
    n_region = int(region.sum())
    if n_region == 0:
        issues.append(QCIssue("roi_too_small_px", "no pixel centre lies inside the ROI"))
        return issues
    overlap = float((region & breast[cy0:cy1, cx0:cx1]).sum() / n_region)
    if overlap < p["min_roi_breast_overlap"]:
        issues.append(
            QCIssue(
                "roi_outside_breast",
                f"{overlap:.3f} of the ROI lies in the breast region, below qc.min_roi_breast_overlap = "
                f"{p['min_roi_breast_overlap']:g}; no calcification is detected outside it",
            )
        )
    return issues


def image_failed_issue(image_id: str) -> QCIssue:
    """The reason recorded for each ROI of an image that failed its own checks."""
    return QCIssue("image_failed_qc", f"its image {image_id} failed the quality checks")


def gate(what: str, issues: list[QCIssue], on_bad_image: str) -> bool:
    """Apply qc.on_bad_image to the issues of one image or ROI: True when it is to be scored.

    what : names the item for a person, e.g. "image mdb212 (data/mdb212.png)".
    fail raises QCError listing every issue; skip returns False (record it with `qc_row`).
    """
    if on_bad_image not in ("fail", "skip"):
        raise ValueError(f"on_bad_image must be 'fail' or 'skip', got {on_bad_image!r}")
    if not issues:
        return True
    if on_bad_image == "skip":
        return False
    listed = "\n".join(f"  - {issue}" for issue in issues)
    raise QCError(f"{what} cannot be measured:\n{listed}")


def qc_row(kind: str, item_id: str, issues: list[QCIssue]) -> dict:
    """One row of a QC table (columns QC_COLUMNS): kind image|roi, id, status ok|failed_qc,
    codes and reasons joined by ';'."""
    if kind not in ("image", "roi"):
        raise ValueError(f"kind must be 'image' or 'roi', got {kind!r}")
    return {
        "kind": kind,
        "id": item_id,
        "status": FAILED if issues else PASSED,
        "codes": ";".join(issue.code for issue in issues),
        "reasons": "; ".join(issue.message for issue in issues),
    }


def _positive_finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _circle(roi: Mapping) -> tuple[float, float, float] | None:
    centre_x, centre_y, radius = (_number(roi.get(k)) for k in ("center_x", "center_y", "radius_px"))
    if roi.get("shape") != "circle" or None in (centre_x, centre_y, radius):
        return None
    return centre_x, centre_y, radius


def _roi_box(roi: Mapping) -> tuple[int, int, int, int] | None:
    """Half-open (x0, y0, x1, y1) in pixels: the table's box, else the pixels within a circle."""
    box = [_number(roi.get(k)) for k in ("x_min", "y_min", "x_max", "y_max")]
    if None not in box:
        return tuple(int(v) for v in box)
    circle = _circle(roi)
    if circle is None:
        return None
    centre_x, centre_y, radius = circle
    # the pixel centres within the radius, as calcsig.ingest.common.circle_box counts them
    return (
        math.ceil(centre_x - radius),
        math.ceil(centre_y - radius),
        math.floor(centre_x + radius) + 1,
        math.floor(centre_y + radius) + 1,
    )


def _roi_region(roi: Mapping, box: tuple[int, int, int, int], mask, shape) -> np.ndarray:
    """The ROI's own pixels within the (clipped) box, as a bool array over the box."""
    x0, y0, x1, y1 = box
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != shape:
            raise ValueError(f"ROI mask of shape {mask.shape} does not match the image's {shape}")
        return mask[y0:y1, x0:x1] != 0
    circle = _circle(roi)
    if circle is None:
        return np.ones((y1 - y0, x1 - x0), dtype=bool)
    centre_x, centre_y, radius = circle
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return (xs - centre_x) ** 2 + (ys - centre_y) ** 2 <= radius**2
