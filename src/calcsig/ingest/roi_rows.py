"""Rows of a user's label table: typed cells, ROI records and their geometry.

Shared by the adapters whose users write a table of findings (the CSV
manifest, the label table of a DICOM folder); the columns are documented in
docs/manifest.md. Every problem goes to the adapter's `Problems` with the
file name, the spreadsheet row number and the column.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..imageio import ImageReadError, read_image
from .common import Problems, box_inside, circle_box, mask_box

BOX_COLUMNS = ["x_min", "y_min", "x_max", "y_max"]
CIRCLE_COLUMNS = ["center_x", "center_y", "radius_px"]
ROI_COLUMNS = [
    "roi_id",
    *BOX_COLUMNS,
    *CIRCLE_COLUMNS,
    "mask_path",
    "fine_class",
    "abnormality",
    "calc_type",
    "calc_distribution",
]
LABELS = ("benign", "actionable")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TableRow:
    """One table row's cells (strings, '' when empty); problems go to the shared list with the row's reference."""

    def __init__(self, cells: dict, file: str, number: int, problems: Problems):
        self.cells, self.file, self.number, self.problems = cells, file, number, problems

    def text(self, column: str) -> str | None:
        value = self.cells.get(column, "")
        return value if value != "" else None

    def fail(self, column: str | None, message: str) -> None:
        self.problems.at(self.file, self.number, column, message)

    def number_in(
        self, column: str, low: float | None = None, positive: bool = False, integer: bool = False
    ) -> float | int | None:
        text = self.text(column)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            self.fail(column, f"{text!r} is not a number")
            return None
        if not math.isfinite(value):
            self.fail(column, f"{text!r} is not a finite number")
        elif integer and not value.is_integer():
            self.fail(column, f"{text!r} is not a whole number of pixels")
        elif positive and value <= 0:
            self.fail(column, f"{text!r} is not positive")
        elif low is not None and value < low:
            self.fail(column, f"{text!r} is below {low}")
        else:
            return int(value) if integer else value
        return None

    def identifier(self, column: str) -> str | None:
        text = self.text(column)
        if text is not None and not SAFE_ID.match(text):
            self.fail(
                column,
                f"{text!r} is not a file-safe ID (letters, digits, '.', '_', '-'; starting with a letter or digit)",
            )
        return text


def roi_records(
    rows: list[tuple[TableRow, str | None]], images: dict, folder: Path, source: str, problems: Problems
) -> list[dict]:
    """The ROIs of label rows, each paired with the ID of the image it names (None when unresolved).

    A row with an empty label is an image without a finding and gives no ROI.
    ROI geometry is checked against `images[image_id]` (its height and width
    when it has pixels); mask paths are relative to `folder`. Problems (an
    unknown label, a duplicate roi_id, an image with rows both with and
    without findings, bad geometry) go to `problems`.
    """
    rois: list[dict] = []
    roi_numbers: dict[str, list[int]] = {}
    count_per_image: dict[str, int] = {}
    no_finding_rows: dict[str, list[int]] = {}
    for row, image_id in rows:
        label = row.text("label")
        if label is None:
            given = [c for c in ROI_COLUMNS if row.text(c) is not None]
            if given:
                row.fail(
                    "label", f"is empty (an image without a finding) but ROI column(s) {', '.join(given)} are filled"
                )
            if image_id is not None:
                no_finding_rows.setdefault(image_id, []).append(row.number)
            continue
        if label not in LABELS:
            row.fail("label", f"unknown label {label!r}; expected benign, actionable, or empty for no finding")
            continue
        if image_id is None:
            continue
        count_per_image[image_id] = count_per_image.get(image_id, 0) + 1
        roi_id = row.identifier("roi_id") or f"{image_id}_{count_per_image[image_id]}"
        roi_numbers.setdefault(roi_id, []).append(row.number)
        roi = {
            "roi_id": roi_id,
            "image_id": image_id,
            "label": label,
            "fine_class": row.text("fine_class"),
            "abnormality": row.text("abnormality"),
            "calc_type": row.text("calc_type"),
            "calc_distribution": row.text("calc_distribution"),
            "source": source,
        }
        geometry = roi_geometry(row, images.get(image_id), folder)
        if geometry is not None:
            rois.append({**roi, **geometry})

    for image_id, numbers in no_finding_rows.items():
        if image_id in count_per_image:
            problems.add(
                f"{rows[0][0].file} row(s) {', '.join(map(str, numbers))}, column 'label': image {image_id} "
                "has a row without a finding and rows with findings"
            )
    for roi_id, numbers in roi_numbers.items():
        if len(numbers) > 1:
            file = rows[0][0].file
            problems.add(f"{file} rows {', '.join(map(str, numbers))}, column 'roi_id': duplicate ROI {roi_id}")
    return rois


def roi_geometry(row: TableRow, image: dict | None, folder: Path) -> dict | None:
    """The ROI's shape columns, checked against its image; None (with problems recorded) when wrong.

    Box and circle in pixels of the image (x = column, y = row, origin
    top-left); a mask path relative to `folder`; no geometry is a whole-image ROI.
    """
    has_box = [c for c in BOX_COLUMNS if row.text(c) is not None]
    has_circle = [c for c in CIRCLE_COLUMNS if row.text(c) is not None]
    has_mask = row.text("mask_path") is not None
    kinds = [kind for kind, given in (("box", has_box), ("circle", has_circle), ("mask", has_mask)) if given]
    if len(kinds) > 1:
        row.fail(None, f"gives more than one ROI geometry ({', '.join(kinds)}); give one")
        return None
    for name, given, needed in (("box", has_box, BOX_COLUMNS), ("circle", has_circle, CIRCLE_COLUMNS)):
        if given and len(given) < len(needed):
            row.fail(", ".join(c for c in needed if c not in given), f"{name} geometry is incomplete")
            return None
    known_size = image is not None and image.get("has_pixels")
    height, width = (image["height"], image["width"]) if known_size else (None, None)
    size_text = f"{width} x {height} pixels" if known_size else ""

    if has_box:
        box = tuple(row.number_in(c, low=0, integer=True) for c in BOX_COLUMNS)
        if any(v is None for v in box):
            return None
        if box[2] <= box[0] or box[3] <= box[1]:
            row.fail("x_max, y_max", f"box [{box[0]},{box[2]}) x [{box[1]},{box[3]}) is empty")
            return None
        if known_size and not box_inside(box, height, width):
            row.fail(
                "x_min, y_min, x_max, y_max",
                f"box [{box[0]},{box[2]}) x [{box[1]},{box[3]}) lies outside image {image['image_id']} of {size_text}",
            )
            return None
        return {"shape": "bbox", **dict(zip(BOX_COLUMNS, box))}

    if has_circle:
        center_x, center_y = row.number_in("center_x"), row.number_in("center_y")
        radius = row.number_in("radius_px", positive=True)
        if None in (center_x, center_y, radius):
            return None
        circle = {"shape": "circle", "center_x": center_x, "center_y": center_y, "radius_px": radius}
        if not known_size:
            return None
        if not (0 <= center_x < width and 0 <= center_y < height):
            row.fail(
                "center_x, center_y",
                f"centre ({center_x:g}, {center_y:g}) lies outside image {image['image_id']} of {size_text}",
            )
            return None
        box = circle_box(center_x, center_y, radius, height, width)
        if box is None:
            row.fail(
                "center_x, center_y, radius_px",
                f"circle of radius {radius:g} px around ({center_x:g}, {center_y:g}) covers no pixel centre of "
                f"image {image['image_id']}",
            )
            return None
        return {**circle, **dict(zip(BOX_COLUMNS, box))}

    if has_mask:
        mask_file = folder / row.text("mask_path")
        try:
            mask = read_image(mask_file).pixels
        except ImageReadError as exc:
            row.fail("mask_path", str(exc))
            return None
        if not known_size:
            return None
        if mask.shape != (height, width):
            row.fail(
                "mask_path",
                f"{mask_file} is {mask.shape[1]} x {mask.shape[0]} pixels, not the "
                f"{size_text} of image {image['image_id']}",
            )
            return None
        box = mask_box(mask)
        if box is None:
            row.fail("mask_path", f"{mask_file} has no foreground pixel")
            return None
        return {"shape": "mask", "mask_path": str(mask_file), **dict(zip(BOX_COLUMNS, box))}
    return {"shape": "image"}
