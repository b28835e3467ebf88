"""A folder of DICOM files as a corpus: every mammogram in the tree, labels from an optional table.

The folder is walked recursively; a file is DICOM when its 128-byte preamble
is followed by 'DICM' (Part 10), whatever its name. Headers are read first,
without pixel data; only the images kept are decoded (calcsig.dicomio decodes
the compressed transfer syntaxes archives export).

Kept: single-frame grayscale images with pixel data and Modality MG that are
not secondary captures. Everything else (other modalities, secondary
captures, presentation states, structured reports, objects without pixel
data, tomosynthesis stacks, colour images, files with a DICOM suffix but no
Part 10 preamble) is listed in the `skipped` table with its reason. Other
files are ignored. When a study has both FOR PRESENTATION and FOR PROCESSING
images, only those of `presentation_intent` are kept; the others are skipped.

IDs: image_id is the SOPInstanceUID (characters outside letters, digits, '.',
'_' and '-' become '_'), subject_id the PatientID likewise. Labels and ROIs
come from the label table (docs/dicom.md), keyed by SOPInstanceUID or by the
file's path relative to the folder; so does an image's per-calcification
truth (`truth_mask_path`, see calcsig.truthlabels). Images without a row are kept as images
without a finding (normals, to the segmentation evaluation and the candidate
selector) unless `unlabelled: skip`.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd
from pydicom import uid
from pydicom.datadict import tag_for_keyword

from ..dicomio import DicomHeader, has_part10_preamble, pixel_spacing_mm, read_header
from ..errors import ImageReadError
from ..truthlabels import truth_problem
from .common import (
    SKIPPED_COLUMNS,
    ImageFacts,
    Problems,
    inspect_images,
    missing_columns,
    read_csv_cells,
    spreadsheet_row,
    subjects_table,
    table_frame,
)
from .roi_rows import ROI_COLUMNS, TableRow, roi_records

SOURCE = "dicom_dir"
DICOM_SUFFIXES = (".dcm", ".dicom")
KEY_COLUMNS = ("sop_instance_uid", "file")
IMAGE_COLUMNS = ["density", "given_split", "subset", "truth_mask_path"]
LABEL_COLUMNS = ["label", *ROI_COLUMNS, *IMAGE_COLUMNS]
# Label-table columns naming files (relative to the table's folder) the corpus is read from.
FILE_COLUMNS = ("mask_path", "truth_mask_path")
GIVEN_SPLITS = ("train", "dev", "eval", "test")
UNSAFE_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        uid.SecondaryCaptureImageStorage,
        uid.MultiFrameSingleBitSecondaryCaptureImageStorage,
        uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
    }
)
INTENT_OF_TAG = {"FOR PRESENTATION": "presentation", "FOR PROCESSING": "processing"}
LATERALITY_TAGS = ("ImageLaterality", "Laterality")
# ViewCodeSequence meanings (DICOM CID 4014) of the views used when ViewPosition is empty.
VIEW_OF_MEANING = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "latero-medial oblique": "LMO",
    "cranio-caudal exaggerated laterally": "XCCL",
    "cranio-caudal exaggerated medially": "XCCM",
}


@dataclass
class _Entry:
    """One file of the tree: where it is, its header when it is DICOM, and why it is skipped."""

    path: Path
    relative: str
    header: DicomHeader | None = None
    skipped: str | None = None
    image: dict | None = None


def dicom_candidates(folder: Path) -> list[tuple[Path, str]]:
    """(path, path relative to `folder` with '/') of every file that is or claims to be DICOM, sorted.

    A file is DICOM when it has the Part 10 preamble; a file named *.dcm or
    *.dicom without one is listed too, so that it is reported as skipped
    rather than silently ignored. Only the first 132 bytes of each file are read.
    """
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and (path.suffix.lower() in DICOM_SUFFIXES or has_part10_preamble(path)):
            found.append((path, path.relative_to(folder).as_posix()))
    return sorted(found, key=lambda item: item[1])


def source_files(path: str | Path, params: dict) -> list[Path]:
    """Every file the corpus of this source depends on, sorted: its DICOM files, the label table, its masks
    and truth label images.

    For the workflow to declare as inputs of the corpus step; nothing is decoded.
    """
    files = [file for file, _ in dicom_candidates(Path(path))]
    labels = params.get("labels")
    if labels and Path(labels).is_file():
        files.append(Path(labels))
        try:
            table = pd.read_csv(labels, dtype=str, keep_default_na=False, usecols=lambda c: c.strip() in FILE_COLUMNS)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            table = pd.DataFrame()
        for named in table.to_numpy().ravel():
            if named.strip() and (Path(labels).parent / named.strip()).is_file():
                files.append(Path(labels).parent / named.strip())
    return sorted(set(files))


def ingest_dicom_dir(path: Path | None, params: dict, out_dir: Path, workers: int = 1) -> dict:
    """Corpus tables of the folder of DICOM files at `path`, plus the table of files skipped.

    params (corpus.dicom_dir): labels (label table CSV or None), presentation_intent
    (presentation or processing: which images a study with both keeps),
    unlabelled (normal: keep images without a label row as images without a
    finding; skip: leave them out), pixel_spacing_mm (for images that give
    none, or None). `out_dir` is unused. Returns images, rois, subjects and
    skipped (columns path, reason) DataFrames. workers : processes decoding and
    hashing the kept images.
    """
    where = f"DICOM folder {path}"
    problems = Problems()
    if path is None or not Path(path).is_dir():
        problems.add(f"corpus.path must be a folder of DICOM files; got {path}")
        problems.raise_if_any(where)
    folder = Path(path)
    entries = [_Entry(file, relative) for file, relative in dicom_candidates(folder)]
    for entry in entries:
        _read_entry(entry, params, problems)
    kept = [e for e in entries if e.skipped is None and e.image is not None]
    _check_unique(entries, kept, problems)
    _keep_one_intent(kept, params.get("presentation_intent", "presentation"))
    kept = [e for e in kept if e.skipped is None]

    label_rows: list[tuple[TableRow, str | None]] = []
    labels_folder = folder
    if params.get("labels"):
        labels_path = Path(params["labels"])
        labels_folder = labels_path.parent
        label_rows = _label_rows(labels_path, folder, entries, where, problems)
        _apply_image_columns(label_rows, {e.image["image_id"]: e.image for e in kept}, problems)
    if params.get("unlabelled", "normal") == "skip":
        named = {image_id for _, image_id in label_rows}
        for entry in kept:
            if entry.image["image_id"] not in named:
                entry.skipped = "no row in the label table (corpus.dicom_dir.unlabelled: skip)"
        kept = [e for e in kept if e.skipped is None]
    if not kept and not problems:
        reasons = Counter(e.skipped for e in entries)
        problems.add(
            f"{folder}: no mammogram kept (single-frame grayscale DICOM with Modality MG and pixel data) "
            f"among {len(entries)} DICOM file(s); skipped: "
            + "; ".join(f"{n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda item: -item[1]))
        )
    inspected = inspect_images([entry.path for entry in kept], workers)
    for entry in kept:
        _read_pixels(entry, inspected[Path(entry.path)], problems)
    images = {e.image["image_id"]: e.image for e in kept}
    _check_truth_masks(label_rows, images, labels_folder)
    rois = roi_records(label_rows, images, labels_folder, SOURCE, problems)
    problems.raise_if_any(where)

    images_frame = table_frame(list(images.values()), "images")
    skipped = [{"path": str(e.path), "reason": e.skipped} for e in entries if e.skipped is not None]
    return {
        "images": images_frame,
        "rois": table_frame(rois, "rois"),
        "subjects": subjects_table(images_frame, cohort=SOURCE),
        "skipped": pd.DataFrame.from_records(skipped, columns=SKIPPED_COLUMNS),
    }


def tag_name(keyword: str) -> str:
    """'ImageLaterality (0020,0062)': a tag as a person finds it in a DICOM viewer."""
    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else keyword


def _text(dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    text = "" if value is None else str(value).strip()
    return text or None


def _safe_id(text: str) -> str:
    safe = UNSAFE_ID_CHARACTERS.sub("_", text)
    return safe if safe[:1].isalnum() else f"x{safe}"


def _sop_class_name(dataset) -> str:
    sop_class = _text(dataset, "SOPClassUID") or _text(getattr(dataset, "file_meta", {}), "MediaStorageSOPClassUID")
    if sop_class is None:
        return "no SOP class"
    name = uid.UID(sop_class).name
    return name if name and name != sop_class else f"SOP class {sop_class}"


def skip_reason(header: DicomHeader) -> str | None:
    """Why a DICOM object is not a mammogram calcsig reads, or None when it is one."""
    dataset = header.dataset
    kind = _sop_class_name(dataset)
    if not header.has_pixel_data:
        return f"no pixel data ({kind})"
    modality = _text(dataset, "Modality")
    if modality != "MG":
        return f"modality {modality or 'missing'}, not MG ({kind})"
    if _text(dataset, "SOPClassUID") in SECONDARY_CAPTURE_CLASSES:
        return f"secondary capture ({kind}), not an acquired mammogram"
    frames = _text(dataset, "NumberOfFrames")
    if frames is not None and frames.isdigit() and int(frames) > 1:
        return f"{int(frames)} frames ({kind}); calcsig reads single-frame 2-D mammograms"
    photometric = _text(dataset, "PhotometricInterpretation")
    samples = _text(dataset, "SamplesPerPixel") or "1"
    if samples != "1" or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return f"photometric interpretation {photometric} with {samples} sample(s) per pixel is not grayscale"
    return None


def _read_entry(entry: _Entry, params: dict, problems: Problems) -> None:
    """Read the header of one file; decide whether it is skipped; else build its image record."""
    if not has_part10_preamble(entry.path):
        entry.skipped = "not a DICOM Part 10 file (no 'DICM' after the 128-byte preamble)"
        return
    try:
        entry.header = read_header(entry.path)
    except ImageReadError as exc:
        problems.add(f"{entry.relative}: {exc.reason}")
        return
    entry.skipped = skip_reason(entry.header)
    if entry.skipped is None:
        entry.image = _image_record(entry, params, problems)


def _image_record(entry: _Entry, params: dict, problems: Problems) -> dict | None:
    """The images.tsv row of a kept file from its header; problems name the file and the tag."""
    dataset, file = entry.header.dataset, entry.relative
    found_before = len(problems)

    def fail(keyword: str, message: str) -> None:
        problems.add(f"{file}, tag {tag_name(keyword)}: {message}")

    sop_uid = _text(dataset, "SOPInstanceUID")
    if sop_uid is None:
        fail("SOPInstanceUID", "missing; every image needs one (it gives the image_id)")
    patient = _text(dataset, "PatientID")
    if patient is None:
        fail("PatientID", "missing; every image needs one (it gives the subject_id)")
    study = _text(dataset, "StudyInstanceUID")
    if study is None:
        fail("StudyInstanceUID", "missing")
    laterality = _laterality(dataset, fail)
    try:
        spacing = pixel_spacing_mm(dataset, entry.path)
    except ImageReadError as exc:
        problems.add(f"{file}: {exc.reason}")
        spacing = None
    else:
        if spacing is None:
            spacing = params.get("pixel_spacing_mm")
        if spacing is None:
            fail(
                "PixelSpacing",
                "missing, and so is ImagerPixelSpacing (0018,1164); set corpus.dicom_dir.pixel_spacing_mm "
                "to the pixel edge in mm (0.07 for most full-field digital systems)",
            )
    intent_tag = _text(dataset, "PresentationIntentType")
    if intent_tag is not None and intent_tag.upper() not in INTENT_OF_TAG:
        fail("PresentationIntentType", f"unknown value {intent_tag!r}; expected FOR PRESENTATION or FOR PROCESSING")
    age = _age_years(dataset, fail)
    if len(problems) > found_before:
        return None
    return {
        "image_id": _safe_id(sop_uid),
        "subject_id": _safe_id(patient),
        "path": str(entry.path),
        "has_pixels": False,
        "laterality": laterality,
        "view": _view(dataset),
        "pixel_spacing_mm": float(spacing),
        "site": _text(dataset, "Manufacturer"),
        "age": age,
        "source": SOURCE,
        "subset": "main",
        "study_uid": study,
        "presentation_intent": INTENT_OF_TAG.get((intent_tag or "").upper()),
        "_patient_id": patient,
        "_sop_uid": sop_uid,
    }


def _laterality(dataset, fail) -> str | None:
    for keyword in LATERALITY_TAGS:
        value = _text(dataset, keyword)
        if value is None:
            continue
        if value.upper() in ("L", "R"):
            return value.upper()
        fail(keyword, f"{value!r} is not one breast; expected L or R")
        return None
    fail("ImageLaterality", "missing, and so is Laterality (0020,0060); calcsig needs the side of each breast image")
    return None


def _view(dataset) -> str | None:
    view = _text(dataset, "ViewPosition")
    if view is not None:
        return view.upper()
    for item in dataset.get("ViewCodeSequence", []):
        meaning = _text(item, "CodeMeaning")
        if meaning is not None:
            return VIEW_OF_MEANING.get(meaning.lower(), meaning)
    return None


AGE_STRING = re.compile(r"^(\d{1,3})([DWMY])$")
YEARS_PER_AGE_UNIT = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def age_years(age_string: str | None, birth_date: str | None, study_date: str | None) -> float | None:
    """Age in years at the study: the DICOM age string ('057Y', '006M', '021W', '180D') when given,
    else the completed years from birth date to study date (YYYYMMDD), else None.

    Raises ValueError naming the value when a given age or date is malformed.
    """
    if age_string is not None:
        match = AGE_STRING.match(age_string.upper())
        if match is None:
            raise ValueError(f"PatientAge {age_string!r} is not an age string like 057Y")
        return round(int(match[1]) * YEARS_PER_AGE_UNIT[match[2]], 4)
    if birth_date is None or study_date is None:
        return None
    born, seen = (_date(text) for text in (birth_date, study_date))
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    if years < 0:
        raise ValueError(f"PatientBirthDate {birth_date} is after the study date {study_date}")
    return float(years)


def _date(text: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYYMMDD") from None


def _age_years(dataset, fail) -> float | None:
    study_date = _text(dataset, "StudyDate") or _text(dataset, "AcquisitionDate")
    try:
        return age_years(_text(dataset, "PatientAge"), _text(dataset, "PatientBirthDate"), study_date)
    except ValueError as exc:
        keyword = "PatientAge" if _text(dataset, "PatientAge") is not None else "PatientBirthDate"
        fail(keyword, str(exc))
        return None


def _check_unique(entries: list[_Entry], kept: list[_Entry], problems: Problems) -> None:
    """Every object has its own SOPInstanceUID; IDs made safe stay distinct."""
    files_of_uid: dict[str, list[str]] = {}
    for entry in entries:
        sop_uid = _text(entry.header.dataset, "SOPInstanceUID") if entry.header is not None else None
        if sop_uid is not None:
            files_of_uid.setdefault(sop_uid, []).append(entry.relative)
    for sop_uid, files in files_of_uid.items():
        if len(files) > 1:
            problems.add(
                f"{', '.join(files)}, tag {tag_name('SOPInstanceUID')}: {sop_uid} is in {len(files)} files; "
                "each DICOM object must be stored once (remove the copies)"
            )
    for column, original in (("image_id", "_sop_uid"), ("subject_id", "_patient_id")):
        originals: dict[str, dict[str, str]] = {}
        for entry in kept:
            originals.setdefault(entry.image[column], {}).setdefault(entry.image[original], entry.relative)
        for safe, by_original in originals.items():
            if len(by_original) > 1:
                shown = "; ".join(f"{value!r} in {file}" for value, file in by_original.items())
                problems.add(f"{column} {safe}: made from different values ({shown}); make them differ in a letter")


def _keep_one_intent(kept: list[_Entry], preferred: str) -> None:
    """Skip the images of the other presentation intent in each study that has both."""
    intents: dict[str, set] = {}
    for entry in kept:
        intents.setdefault(entry.image["study_uid"], set()).add(entry.image["presentation_intent"])
    other = "processing" if preferred == "presentation" else "presentation"
    for entry in kept:
        study = entry.image["study_uid"]
        if {preferred, other} <= intents[study] and entry.image["presentation_intent"] == other:
            entry.skipped = (
                f"FOR {other.upper()} image of study {study}, which also has FOR {preferred.upper()} images "
                f"(corpus.dicom_dir.presentation_intent: {preferred})"
            )


def _label_rows(
    labels_path: Path, folder: Path, entries: list[_Entry], where: str, problems: Problems
) -> list[tuple[TableRow, str | None]]:
    """The label table's rows, each with the image_id of the kept image it names (None when it names none)."""
    frame = read_csv_cells(labels_path, where)
    name = labels_path.name
    keys = [c for c in KEY_COLUMNS if c in frame.columns]
    if len(keys) != 1:
        problems.add(
            f"{name}: needs exactly one key column, sop_instance_uid or file (a path relative to the DICOM folder); "
            f"found {', '.join(keys) or 'neither'}"
        )
    missing = missing_columns(frame, ["label"])
    if missing:
        problems.add(f"{name}: missing required column(s): {', '.join(missing)}")
    unknown = [c for c in frame.columns if c not in (*KEY_COLUMNS, *LABEL_COLUMNS)]
    if unknown:
        problems.add(f"{name}: unknown column(s): {', '.join(unknown)} (see docs/dicom.md)")
    if len(keys) != 1 or missing or unknown:
        return []
    key = keys[0]
    by_key = {
        (e.relative if key == "file" else _text(e.header.dataset, "SOPInstanceUID")): e
        for e in entries
        if key == "file" or e.header is not None
    }
    rows = []
    for index, cells in enumerate(frame.to_dict("records")):
        row = TableRow(cells, name, spreadsheet_row(index), problems)
        rows.append((row, _named_image(row, key, by_key, folder)))
    return rows


def _named_image(row: TableRow, key: str, by_key: dict, folder: Path) -> str | None:
    text = row.text(key)
    if text is None:
        row.fail(key, "is empty but required")
        return None
    if key == "file":
        text = PurePosixPath(text.replace("\\", "/")).as_posix()
    entry = by_key.get(text)
    if entry is None:
        if key == "file":
            exists = (folder / text).is_file()
            row.fail(key, f"{text} is {'not a DICOM file' if exists else 'no file'} under {folder}")
        else:
            row.fail(key, f"no DICOM file under {folder} has SOPInstanceUID {text}")
        return None
    if entry.skipped is not None:
        row.fail(key, f"names {entry.relative}, which is skipped: {entry.skipped}")
        return None
    return entry.image["image_id"] if entry.image is not None else None


def _apply_image_columns(rows: list[tuple[TableRow, str | None]], images: dict, problems: Problems) -> None:
    """density, given_split, subset and truth_mask_path from the label rows onto their images.

    Rows of one image must agree; truth_mask_path is checked and resolved later, once pixels are decoded.
    """
    first_row: dict[tuple[str, str], tuple[str | None, int]] = {}
    for row, image_id in rows:
        if image_id is None or image_id not in images:
            continue
        for column in IMAGE_COLUMNS:
            value = row.text(column)
            if column == "given_split" and value is not None and value not in GIVEN_SPLITS:
                row.fail(column, f"unknown split {value!r}; expected one of {', '.join(GIVEN_SPLITS)}")
                continue
            known = first_row.setdefault((image_id, column), (value, row.number))
            if known[0] != value:
                row.fail(column, f"image {image_id} has {value!r} here but {known[0]!r} in row {known[1]}")
            elif value is not None:
                images[image_id][column] = value


def _check_truth_masks(rows: list[tuple[TableRow, str | None]], images: dict, folder: Path) -> None:
    """Each image's truth_mask_path, relative to `folder`: checked against the decoded image, then made a path.

    Rows of one image agree on it (`_apply_image_columns`), so its first row is checked.
    """
    checked = set()
    for row, image_id in rows:
        relative, image = row.text("truth_mask_path"), images.get(image_id)
        if relative is None or image is None or not image.get("has_pixels") or image_id in checked:
            continue
        checked.add(image_id)
        truth = folder / relative
        problem = truth_problem(truth, image["height"], image["width"], image_id)
        if problem is not None:
            row.fail("truth_mask_path", problem)
        image["truth_mask_path"] = str(truth)


def _read_pixels(entry: _Entry, facts: ImageFacts | ImageReadError, problems: Problems) -> None:
    """Record a kept image's hash, size and bits (`facts`, from decoding it) or why it could not be read."""
    if isinstance(facts, ImageReadError):
        problems.add(f"{entry.relative}: {facts.reason}")
        return
    entry.image.update(sha256=facts.sha256, has_pixels=True, height=facts.height, width=facts.width, bits=facts.bits)
    for key in [k for k in entry.image if k.startswith("_")]:
        del entry.image[key]
