"""A generic CSV manifest a user writes: one row per ROI, or per image without a finding.

The columns are documented in docs/manifest.md. Image and mask paths are
relative to the manifest's folder. Every image is read, to check it and to
record its size, bits, spacing and hash. Rows are reported by their
spreadsheet row number (the header is row 1).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..imageio import ImageReadError, read_image
from .common import (
    Problems,
    box_inside,
    circle_box,
    inspect_image,
    mask_box,
    missing_columns,
    read_csv_cells,
    spreadsheet_row,
    subjects_table,
    table_frame,
)

SOURCE = "csv"
REQUIRED_COLUMNS = ["image_id", "subject_id", "image_path", "label"]
IMAGE_COLUMNS = [
    "pixel_spacing_mm",
    "laterality",
    "view",
    "age",
    "density",
    "site",
    "race_ethnicity",
    "given_split",
    "subset",
]
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
KNOWN_COLUMNS = REQUIRED_COLUMNS + IMAGE_COLUMNS + ROI_COLUMNS
LABELS = ("benign", "actionable")
LATERALITY = {"l": "L", "left": "L", "r": "R", "right": "R"}
GIVEN_SPLITS = ("train", "dev", "eval", "test")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Row:
    """One manifest row's parsed cells; problems go to the shared list with the row's reference."""

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


def ingest_csv(path: Path | None, params: dict, out_dir: Path) -> dict:
    """Corpus tables of the CSV manifest at `path`.

    params (corpus.csv): pixel_spacing_mm (used for images whose manifest row
    and file give none), site (for rows with an empty site). `out_dir` is unused.
    """
    where = f"CSV manifest {path}"
    problems = Problems()
    if path is None or not Path(path).is_file():
        problems.add(f"corpus.path must be a CSV manifest file; got {path}")
        problems.raise_if_any(where)
    path = Path(path)
    frame = read_csv_cells(path, where)
    missing = missing_columns(frame, REQUIRED_COLUMNS)
    if missing:
        problems.add(f"{path.name}: missing required column(s): {', '.join(missing)}")
    unknown = [c for c in frame.columns if c not in KNOWN_COLUMNS]
    if unknown:
        problems.add(f"{path.name}: unknown column(s): {', '.join(unknown)} (see docs/manifest.md)")
    if frame.empty and not missing:
        problems.add(f"{path.name}: no rows")
    problems.raise_if_any(where)

    rows = [_Row(cells, path.name, spreadsheet_row(i), problems) for i, cells in enumerate(frame.to_dict("records"))]
    images = _images(rows, path.parent, params, problems)
    rois = _rois(rows, images, path.parent, problems)
    problems.raise_if_any(where)
    images_frame = table_frame(list(images.values()), "images")
    return {
        "images": images_frame,
        "rois": table_frame(rois, "rois"),
        "subjects": subjects_table(images_frame, cohort=SOURCE),
    }


def _image_record(row: _Row, params: dict) -> dict:
    laterality = row.text("laterality")
    if laterality is not None:
        if laterality.lower() not in LATERALITY:
            row.fail("laterality", f"unknown laterality {laterality!r}; expected L or R")
        laterality = LATERALITY.get(laterality.lower())
    given_split = row.text("given_split")
    if given_split is not None and given_split not in GIVEN_SPLITS:
        row.fail("given_split", f"unknown split {given_split!r}; expected one of {', '.join(GIVEN_SPLITS)}")
    age = row.number_in("age", low=0)
    if age is not None and age > 130:
        row.fail("age", f"{age:g} is not an age in years")
    return {
        "image_id": row.identifier("image_id"),
        "subject_id": row.identifier("subject_id"),
        "image_path": row.text("image_path"),
        "pixel_spacing_mm": row.number_in("pixel_spacing_mm", positive=True),
        "laterality": laterality,
        "view": row.text("view"),
        "age": age,
        "density": row.text("density"),
        "site": row.text("site") or params.get("site"),
        "race_ethnicity": row.text("race_ethnicity"),
        "given_split": given_split,
        "subset": row.text("subset") or "main",
    }


def _images(rows: list[_Row], folder: Path, params: dict, problems: Problems) -> dict[str, dict]:
    """One record per image_id, checked for agreement across its rows and read from disk."""
    records: dict[str, dict] = {}
    numbers: dict[str, list[int]] = {}
    for row in rows:
        record = _image_record(row, params)
        for column in REQUIRED_COLUMNS[:3]:
            if record[column] is None:
                row.fail(column, "is empty but required")
        if record["image_id"] is None:
            continue
        numbers.setdefault(record["image_id"], []).append(row.number)
        first = records.setdefault(record["image_id"], record)
        for column, value in record.items():
            if first[column] != value:
                row.fail(
                    column,
                    f"image {record['image_id']} has {value!r} here but {first[column]!r} in row "
                    f"{numbers[record['image_id']][0]}",
                )

    for image_id, record in records.items():
        rows_text = ", ".join(str(n) for n in numbers[image_id])
        file = folder / record.pop("image_path") if record["image_path"] else None
        record.update(source=SOURCE, has_pixels=False)
        if file is None:
            continue
        try:
            facts, _ = inspect_image(file)
        except ImageReadError as exc:
            problems.add(f"{rows[0].file} row(s) {rows_text}, column 'image_path': {exc}")
            continue
        spacing = record["pixel_spacing_mm"] or facts.pixel_spacing_mm or params.get("pixel_spacing_mm")
        if spacing is None:
            problems.add(
                f"{rows[0].file} row(s) {rows_text}, column 'pixel_spacing_mm': image {image_id} has no "
                "pixel spacing in the manifest or the file; give it, or set corpus.csv.pixel_spacing_mm"
            )
        record.update(
            path=str(file),
            sha256=facts.sha256,
            has_pixels=True,
            height=facts.height,
            width=facts.width,
            bits=facts.bits,
            pixel_spacing_mm=spacing,
        )
    return records


def _rois(rows: list[_Row], images: dict, folder: Path, problems: Problems) -> list[dict]:
    rois: list[dict] = []
    roi_numbers: dict[str, list[int]] = {}
    count_per_image: dict[str, int] = {}
    no_finding_rows: dict[str, list[int]] = {}
    for row in rows:
        image_id = row.text("image_id")
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
            "source": SOURCE,
        }
        geometry = _geometry(row, images.get(image_id), folder)
        if geometry is not None:
            rois.append({**roi, **geometry})

    for image_id, numbers in no_finding_rows.items():
        if image_id in count_per_image:
            problems.add(
                f"{rows[0].file} row(s) {', '.join(map(str, numbers))}, column 'label': image {image_id} "
                "has a row without a finding and rows with findings"
            )
    for roi_id, numbers in roi_numbers.items():
        if len(numbers) > 1:
            problems.add(f"{rows[0].file} rows {', '.join(map(str, numbers))}, column 'roi_id': duplicate ROI {roi_id}")
    return rois


def _geometry(row: _Row, image: dict | None, folder: Path) -> dict | None:
    """The ROI's shape columns, checked against its image; None (with problems recorded) when wrong."""
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
