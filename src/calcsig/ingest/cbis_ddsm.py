"""CBIS-DDSM: the case description CSVs (calc and mass), with DICOM images when present.

Conventions:
- tables are found by name: `{calc,mass}_case_description_{train,test}_set.csv`;
  the name gives the subset (calc/mass) and the given split (train/test);
- one image per first component of `image file path` (e.g.
  `Calc-Training_P_00005_RIGHT_CC`), which names table, patient, side and view;
  it is the image_id. The calc and mass tables publish a film that carries both
  findings as two separate DICOM series under different folders, so it becomes
  two images (subsets calc and mass) of the same subject: splitting by subject
  keeps them together, and the audit sees the pixel duplicate;
- one ROI per row: roi_id = image_id + "_" + abnormality id;
- pathology MALIGNANT -> actionable; BENIGN and BENIGN_WITHOUT_CALLBACK -> benign;
- breast density 1-4 -> BI-RADS A-D; 0 (not assessed, twice in the calc test
  table) -> missing; "N/A" calc type or distribution -> missing.
Without `image_root` the corpus is metadata only (no pixels, image-level ROIs)
so that partitioning and auditing run; with it, every full image and ROI mask
DICOM is read, and ROIs are masks with their bounding box.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..imageio import ImageReadError, read_image
from ..parallel import ordered_map
from .common import (
    Box,
    Problems,
    inspect_images,
    mask_box,
    missing_columns,
    read_csv_cells,
    spreadsheet_row,
    subjects_table,
    table_frame,
)

SOURCE = "cbis_ddsm"
TABLE_NAME = re.compile(r"^(?P<subset>calc|mass)_case_description_(?P<split>train|test)_set\.csv$", re.IGNORECASE)
LABEL_OF_PATHOLOGY = {"MALIGNANT": "actionable", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign"}
DENSITY_OF_CODE = {"1": "A", "2": "B", "3": "C", "4": "D", "0": None}
LATERALITY_OF_SIDE = {"LEFT": "L", "RIGHT": "R"}
NOT_APPLICABLE = {"", "N/A", "NA"}
# The mass tables spell it with an underscore, the calc tables with a space.
DENSITY_COLUMNS = ("breast density", "breast_density")
REQUIRED_COLUMNS = [
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "pathology",
    "image file path",
]
UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


def find_tables(path: Path, subsets: list[str]) -> list[tuple[Path, str, str]]:
    """(csv path, subset, given split) of every case description table at `path`, in name order."""
    candidates = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    found = []
    for candidate in candidates:
        match = TABLE_NAME.match(candidate.name)
        if match and match["subset"].lower() in subsets:
            found.append((candidate, match["subset"].lower(), match["split"].lower()))
    return found


def source_files(path: Path | None, params: dict) -> list[Path]:
    """The files the corpus is read from: the case description tables and, with
    `image_root`, every image and mask file they name that exists."""
    if path is None or not Path(path).exists():
        return []
    tables = [t for t, _, _ in find_tables(Path(path), list(params.get("subsets", ["calc", "mass"])))]
    files = set(tables)
    if params.get("image_root"):
        root = Path(params["image_root"])
        for table in tables:
            try:
                frame = pd.read_csv(table, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
                continue
            for column in ("image file path", "ROI mask file path", "cropped image file path"):
                if column in frame.columns:
                    files.update(f for v in frame[column] if v.strip() and (f := root / v.strip()).is_file())
    return sorted(files)


def ingest_cbis_ddsm(path: Path | None, params: dict, out_dir: Path, workers: int = 1) -> dict:
    """Corpus tables of CBIS-DDSM case description CSVs at `path` (a directory or one CSV).

    params (corpus.cbis_ddsm): subsets (calc and/or mass), image_root (folder the
    DICOM paths of the tables are relative to, or None for metadata only),
    pixel_spacing_mm (used when a DICOM gives no spacing). `out_dir` is unused.
    workers : processes reading the images and masks.
    """
    where = f"CBIS-DDSM source {path}"
    problems = Problems()
    if path is None or not Path(path).exists():
        problems.add(f"corpus.path must be a folder of CBIS-DDSM case description CSVs or one such CSV; got {path}")
        problems.raise_if_any(where)
    path = Path(path)
    subsets = [s.lower() for s in params.get("subsets", ["calc", "mass"])]
    tables = find_tables(path, subsets)
    if not tables:
        problems.add(
            f"{path}: no table named {{calc,mass}}_case_description_{{train,test}}_set.csv for subsets {subsets}"
        )
        problems.raise_if_any(where)

    image_root = Path(params["image_root"]) if params.get("image_root") else None
    fallback_spacing = params.get("pixel_spacing_mm")
    images: dict[str, dict] = {}
    image_rows: dict[str, list[str]] = {}
    rois: list[dict] = []
    roi_rows: dict[str, list[str]] = {}
    for table_path, subset, split in tables:
        frame = read_csv_cells(table_path, where)
        missing = missing_columns(frame, REQUIRED_COLUMNS)
        if not any(c in frame.columns for c in DENSITY_COLUMNS):
            missing.append(" or ".join(DENSITY_COLUMNS))
        if missing:
            problems.add(f"{table_path.name}: missing column(s): {', '.join(missing)}")
            continue
        density_column = next(c for c in DENSITY_COLUMNS if c in frame.columns)
        for index, row in enumerate(frame.to_dict(orient="records")):
            ref = f"{table_path.name} row {spreadsheet_row(index)}"
            image, roi = _row_records(
                row, density_column, table_path.name, spreadsheet_row(index), subset, split, problems
            )
            if image is None:
                continue
            known = images.setdefault(image["image_id"], image)
            image_rows.setdefault(image["image_id"], []).append(ref)
            for column in ("subject_id", "laterality", "view", "density", "given_split", "subset"):
                if known[column] != image[column]:
                    problems.add(
                        f"{ref}, column '{column}': image {image['image_id']} has {image[column]!r} "
                        f"here but {known[column]!r} in {image_rows[image['image_id']][0]}"
                    )
            rois.append(roi)
            roi_rows.setdefault(roi["roi_id"], []).append(ref)

    for roi_id, refs in roi_rows.items():
        if len(refs) > 1:
            problems.add(f"{'; '.join(refs)}, column 'abnormality id': duplicate ROI {roi_id}")

    if image_root is not None and not problems:
        _read_pixels(images, image_rows, rois, image_root, fallback_spacing, problems, workers)
    elif fallback_spacing is not None:
        for image in images.values():
            image["pixel_spacing_mm"] = float(fallback_spacing)

    problems.raise_if_any(where)
    images_frame = table_frame([_public(image) for image in images.values()], "images")
    return {
        "images": images_frame,
        "rois": table_frame([_public(roi) for roi in rois], "rois"),
        "subjects": subjects_table(images_frame, cohort=SOURCE),
    }


def _public(record: dict) -> dict:
    """`record` without the adapter's working keys (those starting with an underscore)."""
    return {key: value for key, value in record.items() if not key.startswith("_")}


def _row_records(
    row: dict, density_column: str, file: str, number: int, subset: str, split: str, problems: Problems
) -> tuple[dict | None, dict | None]:
    """The image and ROI a table row describes; problems found go to `problems`."""
    found_before = len(problems)
    image_path = row["image file path"]
    folder = image_path.replace("\\", "/").split("/")[0]
    if not folder:
        problems.at(file, number, "image file path", "is empty")
    patient = row["patient_id"]
    if not patient:
        problems.at(file, number, "patient_id", "is empty")
    side = row["left or right breast"].upper()
    if side not in LATERALITY_OF_SIDE:
        problems.at(file, number, "left or right breast", f"unknown side {side!r}; expected LEFT or RIGHT")
    view = row["image view"].upper()
    if not view:
        problems.at(file, number, "image view", "is empty")
    density = row[density_column]
    if density not in DENSITY_OF_CODE:
        problems.at(file, number, density_column, f"unknown breast density {density!r}; expected 0-4")
    pathology = row["pathology"].upper()
    if pathology not in LABEL_OF_PATHOLOGY:
        problems.at(
            file,
            number,
            "pathology",
            f"unknown pathology {row['pathology']!r}; expected one of {', '.join(LABEL_OF_PATHOLOGY)}",
        )
    abnormality_id = row["abnormality id"]
    if not abnormality_id:
        problems.at(file, number, "abnormality id", "is empty")
    if len(problems) > found_before:
        return None, None

    image_id = UNSAFE_ID_CHARACTERS.sub("_", folder)
    image = {
        "image_id": image_id,
        "subject_id": UNSAFE_ID_CHARACTERS.sub("_", patient),
        "path": None,
        "sha256": None,
        "has_pixels": False,
        "laterality": LATERALITY_OF_SIDE[side],
        "view": view,
        "density": DENSITY_OF_CODE[density],
        "source": SOURCE,
        "subset": subset,
        "given_split": split,
        "_relpath": image_path,
    }
    roi = {
        "roi_id": f"{image_id}_{UNSAFE_ID_CHARACTERS.sub('_', abnormality_id)}",
        "image_id": image_id,
        "shape": "image",
        "label": LABEL_OF_PATHOLOGY[pathology],
        "fine_class": pathology.lower(),
        "abnormality": row["abnormality type"].lower() or None,
        "calc_type": _applicable(row.get("calc type")),
        "calc_distribution": _applicable(row.get("calc distribution")),
        "source": SOURCE,
        # CBIS-DDSM is known to swap the ROI mask and the cropped image in some
        # series; both candidates are kept and the one on the image's grid wins.
        "_mask_relpaths": [p for p in (row.get("ROI mask file path"), row.get("cropped image file path")) if p],
        "_ref": (file, number),
    }
    return image, roi


def _applicable(value: str | None) -> str | None:
    return None if value is None or value.upper() in NOT_APPLICABLE else value


def _read_pixels(
    images: dict,
    image_rows: dict,
    rois: list[dict],
    image_root: Path,
    fallback_spacing: float | None,
    problems: Problems,
    workers: int = 1,
) -> None:
    """Fill file facts of every image and turn each ROI into a mask ROI with its bounding box;
    `workers` processes read the images, then the masks."""
    inspected = inspect_images([image_root / image["_relpath"] for image in images.values()], workers)
    for image_id, image in images.items():
        file = image_root / image["_relpath"]
        facts = inspected[file]
        if isinstance(facts, ImageReadError):
            problems.add(f"{image_rows[image_id][0]}, column 'image file path': {facts}")
            continue
        spacing = facts.pixel_spacing_mm if facts.pixel_spacing_mm is not None else fallback_spacing
        if spacing is None:
            problems.add(
                f"{image_rows[image_id][0]}, column 'image file path': {file} gives no pixel spacing; "
                "set corpus.cbis_ddsm.pixel_spacing_mm"
            )
        image.update(
            path=str(file),
            sha256=facts.sha256,
            has_pixels=True,
            height=facts.height,
            width=facts.width,
            bits=facts.bits,
            pixel_spacing_mm=None if spacing is None else float(spacing),
        )
    with_pixels = [roi for roi in rois if images[roi["image_id"]]["has_pixels"]]

    def find_mask(roi: dict):
        image = images[roi["image_id"]]
        return _roi_mask(roi["_mask_relpaths"], image_root, image["height"], image["width"])

    for roi, (mask_path, box, reasons) in zip(with_pixels, ordered_map(find_mask, with_pixels, workers)):
        file, number = roi["_ref"]
        image = images[roi["image_id"]]
        if mask_path is None:
            problems.at(
                file,
                number,
                "ROI mask file path",
                f"no mask on the grid of {roi['image_id']} ({image['width']} x {image['height']}): "
                + ("; ".join(reasons) or "no path given"),
            )
            continue
        if box is None:
            problems.at(file, number, "ROI mask file path", f"{mask_path} is empty")
            continue
        roi.update(shape="mask", mask_path=str(mask_path), x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3])


def _roi_mask(relpaths, image_root: Path, height: int, width: int) -> tuple[Path | None, Box | None, list[str]]:
    """(the first of `relpaths` that is a mask on the image's height x width grid, its bounding box
    or None when empty, why each earlier path was not)."""
    reasons = []
    for relpath in relpaths:
        candidate = image_root / relpath
        try:
            pixels = read_image(candidate).pixels
        except ImageReadError as exc:
            reasons.append(str(exc))
            continue
        if pixels.shape == (height, width):
            return candidate, mask_box(pixels), reasons
        reasons.append(f"{candidate}: {pixels.shape[1]} x {pixels.shape[0]} pixels, not the image's grid")
    return None, None, reasons
