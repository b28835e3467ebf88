"""mini-MIAS: the MIAS `Info.txt` truth rows plus mdbNNN PNG or PGM images.

Conventions (from the notes in Info.txt):
- films come in pairs of one patient: mdb(2k-1) and mdb(2k) are patient k,
  odd numbers the right breast, even numbers the left; all are MLO views;
- abnormality centres use an origin at the bottom-left corner. We read x and y
  as pixel indices counted from the left column and from the bottom row, so
  the top-left row is `height - 1 - y` (the exact vertical mirror of the pixel
  grid); the image's own height is used, not 1024;
- a truth row with class and severity but no coordinates (note 4: widely
  distributed calcifications) becomes an image-level ROI (shape image);
- NORM rows give the image and no ROI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..imageio import ImageReadError
from .common import Problems, circle_box, inspect_images, subjects_table, table_frame

SOURCE = "mini_mias"
IMAGE_SUFFIXES = (".png", ".pgm", ".PNG", ".PGM")
TISSUES = {"F", "G", "D"}
ABNORMALITY_OF_CLASS = {
    "CALC": "calcification",
    "CIRC": "mass",
    "SPIC": "mass",
    "MISC": "mass",
    "ARCH": "architectural_distortion",
    "ASYM": "asymmetry",
}
LABEL_OF_SEVERITY = {"B": "benign", "M": "actionable"}
FINE_CLASS_OF_SEVERITY = {"B": "benign", "M": "malignant"}
TRUTH_LINE = re.compile(r"^mdb\d+\b")
# Some MIAS releases annotate rows with "*NOTE 3*"-style remarks; they carry no truth.
REMARK = re.compile(r"\*[^*]*\*")


@dataclass(frozen=True)
class TruthRow:
    line: int
    reference: str
    tissue: str
    abnormality_class: str
    severity: str | None
    x: int | None
    y: int | None
    radius: float | None


def parse_info(info_path: Path, problems: Problems) -> list[TruthRow]:
    """The truth rows (lines starting with 'mdb') of Info.txt; malformed rows go to `problems`."""
    rows = []
    name = info_path.name
    for number, raw in enumerate(info_path.read_text(errors="replace").splitlines(), start=1):
        text = REMARK.sub(" ", raw).strip()
        if not TRUTH_LINE.match(text):
            continue
        where = f"line {number}"
        tokens = text.split()
        reference, fields = tokens[0], tokens[1:]
        if len(fields) < 2:
            problems.at(name, where, None, f"truth row {text!r} needs at least tissue and class")
            continue
        tissue, cls = fields[0], fields[1]
        if tissue not in TISSUES:
            problems.at(name, where, "tissue", f"unknown background tissue {tissue!r}; expected F, G or D")
        if cls != "NORM" and cls not in ABNORMALITY_OF_CLASS:
            problems.at(
                name,
                where,
                "class",
                f"unknown abnormality class {cls!r}; expected one of {', '.join([*ABNORMALITY_OF_CLASS, 'NORM'])}",
            )
            continue
        rest = fields[2:]
        if cls == "NORM":
            if rest:
                problems.at(name, where, None, f"a NORM row carries extra values {rest}")
            rows.append(TruthRow(number, reference, tissue, cls, None, None, None, None))
            continue
        if not rest or rest[0] not in LABEL_OF_SEVERITY:
            problems.at(name, where, "severity", f"unknown severity {rest[0] if rest else ''!r}; expected B or M")
            continue
        coordinates = rest[1:]
        if not coordinates:
            rows.append(TruthRow(number, reference, tissue, cls, rest[0], None, None, None))
            continue
        try:
            if len(coordinates) != 3:
                raise ValueError
            x, y, radius = int(coordinates[0]), int(coordinates[1]), float(coordinates[2])
        except ValueError:
            problems.at(name, where, "x, y, radius", f"expected three numbers, found {coordinates}")
            continue
        if radius <= 0:
            problems.at(name, where, "radius", f"radius {coordinates[2]} is not positive")
            continue
        rows.append(TruthRow(number, reference, tissue, cls, rest[0], x, y, radius))
    return rows


def _image_file(directory: Path, reference: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = directory / f"{reference}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _film_number(reference: str) -> int:
    return int(reference[3:])


def source_files(path: Path | None, params: dict) -> list[Path]:
    """The files the corpus is read from: the truth file and every mdbNNN image of the folder."""
    if path is None or not Path(path).is_dir():
        return []
    directory = Path(path)
    info = directory / params.get("info_file", "Info.txt")
    images = [p for p in directory.iterdir() if p.name.startswith("mdb") and p.suffix in IMAGE_SUFFIXES]
    return sorted([info, *images] if info.is_file() else images)


def ingest_mini_mias(path: Path | None, params: dict, out_dir: Path, workers: int = 1) -> dict:
    """Corpus tables of a mini-MIAS directory (Info.txt + mdbNNN.png/.pgm).

    params (corpus.mini_mias): info_file (name of the truth file in `path`),
    pixel_spacing_mm (the database's pixel edge, 0.2 mm). `out_dir` is unused:
    nothing is converted. workers : processes reading and hashing the films.
    """
    where = f"mini-MIAS source {path}"
    problems = Problems()
    if path is None or not Path(path).is_dir():
        problems.add(f"corpus.path must be the mini-MIAS directory (Info.txt + images); got {path}")
        problems.raise_if_any(where)
    directory = Path(path)
    info_path = directory / params.get("info_file", "Info.txt")
    if not info_path.is_file():
        problems.add(f"{info_path}: truth file not found")
        problems.raise_if_any(where)
    truth = parse_info(info_path, problems)
    if not truth and not problems:
        problems.add(f"{info_path.name}: no truth rows (lines starting with 'mdb')")

    by_image: dict[str, list[TruthRow]] = {}
    for row in truth:
        by_image.setdefault(row.reference, []).append(row)

    image_paths = {reference: _image_file(directory, reference) for reference in by_image}
    inspected = inspect_images([p for p in image_paths.values() if p is not None], workers)
    images, rois = [], []
    for reference, rows in sorted(by_image.items(), key=lambda item: _film_number(item[0])):
        lines = f"line {rows[0].line}" if len(rows) == 1 else "lines " + ", ".join(str(r.line) for r in rows)
        if len({r.tissue for r in rows}) > 1:
            problems.at(info_path.name, lines, "tissue", f"{reference} has conflicting tissue classes")
        if any(r.abnormality_class == "NORM" for r in rows) and len(rows) > 1:
            problems.at(info_path.name, lines, "class", f"{reference} is listed both as NORM and with findings")
        image_path = image_paths[reference]
        if image_path is None:
            problems.at(
                info_path.name,
                lines,
                None,
                f"image {reference} not found in {directory} (looked for {reference}.png / .pgm)",
            )
            continue
        facts = inspected[image_path]
        if isinstance(facts, ImageReadError):
            problems.at(info_path.name, lines, None, f"image {reference}: {facts}")
            continue
        number = _film_number(reference)
        images.append(
            {
                "image_id": reference,
                "subject_id": f"mias_patient{(number + 1) // 2:03d}",
                "path": str(image_path),
                "sha256": facts.sha256,
                "has_pixels": True,
                "laterality": "L" if number % 2 == 0 else "R",
                "view": "MLO",
                "pixel_spacing_mm": float(params.get("pixel_spacing_mm", 0.2)),
                "bits": facts.bits,
                "height": facts.height,
                "width": facts.width,
                "density": rows[0].tissue,
                "source": SOURCE,
                "subset": "main",
            }
        )
        findings = [r for r in rows if r.abnormality_class != "NORM"]
        for index, row in enumerate(findings, start=1):
            roi = _roi(row, f"{reference}_{index}", facts.height, facts.width, info_path.name, problems)
            if roi is not None:
                rois.append(roi)

    problems.raise_if_any(where)
    images_frame = table_frame(images, "images")
    return {
        "images": images_frame,
        "rois": table_frame(rois, "rois"),
        "subjects": subjects_table(images_frame, cohort=SOURCE),
    }


def _roi(row: TruthRow, roi_id: str, height: int, width: int, file: str, problems: Problems) -> dict | None:
    roi = {
        "roi_id": roi_id,
        "image_id": row.reference,
        "label": LABEL_OF_SEVERITY[row.severity],
        "fine_class": FINE_CLASS_OF_SEVERITY[row.severity],
        "abnormality": ABNORMALITY_OF_CLASS[row.abnormality_class],
        "source": SOURCE,
    }
    if row.x is None:
        return {**roi, "shape": "image"}
    center_x, center_y = float(row.x), float(height - 1 - row.y)
    if not (0 <= center_x < width and 0 <= center_y < height):
        problems.at(
            file,
            f"line {row.line}",
            "x, y",
            f"centre ({row.x}, {row.y}) lies outside {row.reference} of {width} x {height} pixels",
        )
        return None
    box = circle_box(center_x, center_y, row.radius, height, width)
    return {
        **roi,
        "shape": "circle",
        "center_x": center_x,
        "center_y": center_y,
        "radius_px": row.radius,
        "x_min": box[0],
        "y_min": box[1],
        "x_max": box[2],
        "y_max": box[3],
    }
