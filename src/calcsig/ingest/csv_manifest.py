"""A generic CSV manifest a user writes: one row per ROI, or per image without a finding.

The columns are documented in docs/manifest.md. Image, mask and truth paths
are relative to the manifest's folder. Every image is read, to check it and to
record its size, bits, spacing and hash. Rows are reported by their
spreadsheet row number (the header is row 1).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..imageio import ImageReadError
from ..truthlabels import truth_problem
from .common import (
    Problems,
    inspect_images,
    missing_columns,
    read_csv_cells,
    spreadsheet_row,
    subjects_table,
    table_frame,
)
from .roi_rows import ROI_COLUMNS, TableRow, roi_records

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
    "truth_mask_path",
]
KNOWN_COLUMNS = REQUIRED_COLUMNS + IMAGE_COLUMNS + ROI_COLUMNS
LATERALITY = {"l": "L", "left": "L", "r": "R", "right": "R"}
GIVEN_SPLITS = ("train", "dev", "eval", "test")


def source_files(path: Path | None, params: dict) -> list[Path]:
    """The files the corpus is read from: the manifest and every image and mask it names.

    A manifest that cannot be read gives just itself: the ingest step then
    reports what is wrong with it.
    """
    if path is None or not Path(path).is_file():
        return []
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        return [path]
    named = set()
    for column in ("image_path", "mask_path", "truth_mask_path"):
        if column in frame.columns:
            named.update(path.parent / v.strip() for v in frame[column] if v.strip())
    return [path, *sorted(f for f in named if f.is_file())]


def ingest_csv(path: Path | None, params: dict, out_dir: Path, workers: int = 1) -> dict:
    """Corpus tables of the CSV manifest at `path`.

    params (corpus.csv): pixel_spacing_mm (used for images whose manifest row
    and file give none), site (for rows with an empty site). `out_dir` is unused.
    workers : processes reading and hashing the images.
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

    cells = frame.to_dict("records")
    rows = [TableRow(row_cells, path.name, spreadsheet_row(i), problems) for i, row_cells in enumerate(cells)]
    images = _images(rows, path.parent, params, problems, workers)
    rois = roi_records([(row, row.text("image_id")) for row in rows], images, path.parent, SOURCE, problems)
    problems.raise_if_any(where)
    images_frame = table_frame(list(images.values()), "images")
    return {
        "images": images_frame,
        "rois": table_frame(rois, "rois"),
        "subjects": subjects_table(images_frame, cohort=SOURCE),
    }


def _image_record(row: TableRow, params: dict) -> dict:
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
        "truth_mask_path": row.text("truth_mask_path"),
    }


def _images(rows: list[TableRow], folder: Path, params: dict, problems: Problems, workers: int = 1) -> dict[str, dict]:
    """One record per image_id, checked for agreement across its rows and read from disk
    (by `workers` processes)."""
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

    inspected = inspect_images([folder / r["image_path"] for r in records.values() if r["image_path"]], workers)
    for image_id, record in records.items():
        rows_text = ", ".join(str(n) for n in numbers[image_id])
        file = folder / record.pop("image_path") if record["image_path"] else None
        record.update(source=SOURCE, has_pixels=False)
        if file is None:
            continue
        facts = inspected[file]
        if isinstance(facts, ImageReadError):
            problems.add(f"{rows[0].file} row(s) {rows_text}, column 'image_path': {facts}")
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
        if record["truth_mask_path"] is not None:
            truth = folder / record["truth_mask_path"]
            problem = truth_problem(truth, facts.height, facts.width, image_id)
            if problem is not None:
                problems.add(f"{rows[0].file} row(s) {rows_text}, column 'truth_mask_path': {problem}")
            record["truth_mask_path"] = str(truth)
    return records
