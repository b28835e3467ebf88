"""A folder of DICOM files as a corpus: what is kept, what is skipped and why, labels, and every error at once."""

import csv
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dicom_files import mammogram_pixels, write_mammogram, write_pixelless
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset

from calcsig.config import load_config
from calcsig.errors import IngestError
from calcsig.ingest.dicom_dir import age_years, ingest_dicom_dir, source_files
from calcsig.ingest.stage import build_corpus
from calcsig.tables import validate_corpus
from calcsig.truthlabels import read_truth_labels

PARAMS = {"labels": None, "presentation_intent": "presentation", "unlabelled": "normal", "pixel_spacing_mm": None}
HEIGHT, WIDTH = 48, 40
STUDY_1, STUDY_2 = "1.2.826.0.1.3680043.10.1", "1.2.826.0.1.3680043.10.2"
UID = {
    "lcc": "1.2.826.0.1.3680043.10.1.1",
    "lmlo": "1.2.826.0.1.3680043.10.1.2",
    "rcc": "1.2.826.0.1.3680043.10.1.3",
    "rcc_raw": "1.2.826.0.1.3680043.10.1.4",
    "rmlo": "1.2.826.0.1.3680043.10.2.1",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def view_code(meaning: str) -> list[Dataset]:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "399368009", "SCT", meaning
    return [item]


@pytest.fixture
def archive(tmp_path) -> Path:
    """An archive export: two patients in nested folders, four compressed mammograms kept, the rest skipped.

    P 001 study 1: L CC (JPEG-LS), L MLO without suffix (JPEG 2000, MONOCHROME1,
    only series Laterality), R CC (RLE, detector pitch with magnification),
    and the R CC for processing, a structured report and a presentation state.
    P-002 study 2 three folders down: R MLO (JPEG lossless SV1, view only as a
    code, age from dates), a CT, and a secondary capture labelled MG.
    A text file and a '.dcm' that is not DICOM lie in the tree too.
    """
    root = tmp_path / "archive"
    study = root / "P001" / "study1"
    pixels = mammogram_pixels(12)
    common = {"bits_stored": 12, "PatientID": "P 001", "StudyInstanceUID": STUDY_1}
    write_mammogram(study / "LCC.dcm", pixels, uid.JPEGLSLossless, SOPInstanceUID=UID["lcc"], **common)
    write_mammogram(
        study / "LMLO",
        pixels,
        uid.JPEG2000Lossless,
        photometric="MONOCHROME1",
        SOPInstanceUID=UID["lmlo"],
        ViewPosition="MLO",
        ImageLaterality=None,
        Laterality="L",
        **common,
    )
    detector = {"PixelSpacing": None, "ImagerPixelSpacing": [0.085, 0.085]}
    write_mammogram(
        study / "RCC.dcm",
        pixels,
        uid.RLELossless,
        SOPInstanceUID=UID["rcc"],
        ImageLaterality="R",
        EstimatedRadiographicMagnificationFactor=1.0625,
        **detector,
        **common,
    )
    write_mammogram(
        study / "RCC_raw.dcm",
        pixels,
        SOPClassUID=uid.DigitalMammographyXRayImageStorageForProcessing,
        PresentationIntentType="FOR PROCESSING",
        SOPInstanceUID=UID["rcc_raw"],
        ImageLaterality="R",
        **common,
    )
    write_pixelless(study / "report.dcm", uid.ComprehensiveSRStorage, "SR", "P 001", StudyInstanceUID=STUDY_1)
    write_pixelless(
        study / "gsps.dcm", uid.GrayscaleSoftcopyPresentationStateStorage, "PR", "P 001", StudyInstanceUID=STUDY_1
    )
    deep = root / "P002" / "2024" / "series" / "img"
    other = {"PatientID": "P-002", "StudyInstanceUID": STUDY_2, "PatientAge": None, "Manufacturer": "Other Co"}
    write_mammogram(
        deep / "0001",
        mammogram_pixels(14, seed=1),
        uid.JPEGLosslessSV1,
        bits_stored=14,
        SOPInstanceUID=UID["rmlo"],
        ImageLaterality="R",
        ViewPosition=None,
        ViewCodeSequence=view_code("medio-lateral oblique"),
        PatientBirthDate="19600310",
        StudyDate="20240309",
        **other,
    )
    write_mammogram(deep / "ct.dcm", pixels, SOPClassUID=uid.CTImageStorage, Modality="CT", **other)
    write_mammogram(deep / "sc.dcm", pixels, SOPClassUID=uid.SecondaryCaptureImageStorage, **other)
    (root / "notes.txt").write_text("exported 2024-03-10")
    (root / "P002" / "index.dcm").write_text("not DICOM: a listing with a DICOM suffix")
    return root


def kept_columns(images: pd.DataFrame) -> list[dict]:
    columns = [
        "image_id",
        "subject_id",
        "laterality",
        "view",
        "pixel_spacing_mm",
        "bits",
        "height",
        "width",
        "age",
        "site",
        "study_uid",
        "presentation_intent",
        "has_pixels",
        "source",
        "subset",
    ]
    return images[columns].to_dict("records")


@pytest.mark.parametrize("workers", [1, 2])
def test_every_kept_mammogram_is_one_image_row_with_the_facts_of_its_header(archive, workers):
    tables = ingest_dicom_dir(archive, PARAMS, archive.parent, workers=workers)
    images = tables["images"]
    facts = {"height": HEIGHT, "width": WIDTH, "site": "ACME Imaging", "study_uid": STUDY_1, "subset": "main"}
    base = {"subject_id": "P_001", "bits": 12, "age": 57.0, "presentation_intent": "presentation", **facts}
    base.update(has_pixels=True, source="dicom_dir")
    expected = [
        {**base, "image_id": UID["lcc"], "laterality": "L", "view": "CC", "pixel_spacing_mm": 0.07},
        {**base, "image_id": UID["lmlo"], "laterality": "L", "view": "MLO", "pixel_spacing_mm": 0.07},
        {**base, "image_id": UID["rcc"], "laterality": "R", "view": "CC", "pixel_spacing_mm": 0.08},
        {
            **base,
            "image_id": UID["rmlo"],
            "subject_id": "P-002",
            "laterality": "R",
            "view": "MLO",
            "pixel_spacing_mm": 0.07,
            "bits": 14,
            "age": 63.0,
            "site": "Other Co",
            "study_uid": STUDY_2,
        },
    ]
    got = kept_columns(images)
    assert [row.pop("pixel_spacing_mm") for row in got] == pytest.approx([0.07, 0.07, 0.08, 0.07])
    for row in expected:
        row.pop("pixel_spacing_mm")
    assert got == expected
    relative = ["P001/study1/LCC.dcm", "P001/study1/LMLO", "P001/study1/RCC.dcm", "P002/2024/series/img/0001"]
    assert list(images["path"]) == [str(archive / r) for r in relative]
    assert list(images["sha256"]) == [sha256(archive / r) for r in relative]
    assert tables["rois"].empty
    validate_corpus(images, tables["rois"], tables["subjects"], "test")


def test_every_other_dicom_object_is_skipped_with_its_reason_and_other_files_are_ignored(archive):
    skipped = ingest_dicom_dir(archive, PARAMS, archive.parent)["skipped"]
    assert skipped.to_dict("records") == [
        {"path": str(archive / "P001/study1/RCC_raw.dcm"), "reason": (
            f"FOR PROCESSING image of study {STUDY_1}, which also has FOR PRESENTATION images "
            "(corpus.dicom_dir.presentation_intent: presentation)"
        )},
        {"path": str(archive / "P001/study1/gsps.dcm"),
         "reason": "no pixel data (Grayscale Softcopy Presentation State Storage)"},
        {"path": str(archive / "P001/study1/report.dcm"), "reason": "no pixel data (Comprehensive SR Storage)"},
        {"path": str(archive / "P002/2024/series/img/ct.dcm"), "reason": "modality CT, not MG (CT Image Storage)"},
        {"path": str(archive / "P002/2024/series/img/sc.dcm"),
         "reason": "secondary capture (Secondary Capture Image Storage), not an acquired mammogram"},
        {"path": str(archive / "P002/index.dcm"),
         "reason": "not a DICOM Part 10 file (no 'DICM' after the 128-byte preamble)"},
    ]  # fmt: skip


def test_monochrome1_images_are_stored_inverted_so_calcifications_stay_bright(archive):
    from calcsig.imageio import read_image

    images = ingest_dicom_dir(archive, PARAMS, archive.parent)["images"].set_index("image_id")
    lcc, lmlo = (read_image(images.at[UID[view], "path"]).pixels for view in ("lcc", "lmlo"))
    np.testing.assert_array_equal(lmlo, 4095 - lcc)


def test_subjects_are_the_patients_with_their_age_and_site(archive):
    subjects = ingest_dicom_dir(archive, PARAMS, archive.parent)["subjects"]
    assert subjects[["subject_id", "age", "site", "cohort", "n_images"]].to_dict("records") == [
        {"subject_id": "P-002", "age": 63.0, "site": "Other Co", "cohort": "dicom_dir", "n_images": 1},
        {"subject_id": "P_001", "age": 57.0, "site": "ACME Imaging", "cohort": "dicom_dir", "n_images": 3},
    ]


def test_presentation_intent_processing_keeps_the_raw_image_of_a_study_with_both(archive):
    params = {**PARAMS, "presentation_intent": "processing"}
    tables = ingest_dicom_dir(archive, params, archive.parent)
    assert list(tables["images"]["image_id"]) == [UID["rcc_raw"], UID["rmlo"]]
    assert list(tables["images"]["presentation_intent"]) == ["processing", "presentation"]
    reasons = dict(zip(tables["skipped"]["path"], tables["skipped"]["reason"]))
    assert reasons[str(archive / "P001/study1/LCC.dcm")] == (
        f"FOR PRESENTATION image of study {STUDY_1}, which also has FOR PROCESSING images "
        "(corpus.dicom_dir.presentation_intent: processing)"
    )


def write_labels(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def labelled_rows(key: str) -> list[dict]:
    """A box and a circle on L CC, a mask on R CC, an image-level finding on R MLO; L MLO has no row."""
    name = {
        "file": {"lcc": "P001/study1/LCC.dcm", "rcc": "P001/study1/RCC.dcm", "rmlo": "P002/2024/series/img/0001"},
        "sop_instance_uid": UID,
    }[key]
    return [
        {key: name["lcc"], "label": "actionable", "x_min": "2", "y_min": "3", "x_max": "12", "y_max": "13",
         "fine_class": "dcis", "abnormality": "calcification", "calc_type": "PLEOMORPHIC", "density": "C",
         "given_split": "train"},
        {key: name["lcc"], "label": "benign", "roi_id": "lcc-circle", "center_x": "30", "center_y": "20",
         "radius_px": "4", "abnormality": "calcification", "density": "C", "given_split": "train"},
        {key: name["rcc"], "label": "benign", "mask_path": "masks/rcc.png", "calc_distribution": "CLUSTERED"},
        {key: name["rmlo"], "label": "actionable", "subset": "enrichment"},
    ]  # fmt: skip


@pytest.fixture
def labels_folder(tmp_path) -> Path:
    folder = tmp_path / "labels"
    (folder / "masks").mkdir(parents=True)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[10:20, 5:8] = 255
    Image.fromarray(mask).save(folder / "masks" / "rcc.png")
    return folder


EXPECTED_ROIS = [
    {"roi_id": f"{UID['lcc']}_1", "image_id": UID["lcc"], "shape": "bbox", "label": "actionable",
     "box": (2, 3, 12, 13), "fine_class": "dcis", "calc_type": "PLEOMORPHIC", "calc_distribution": None},
    {"roi_id": "lcc-circle", "image_id": UID["lcc"], "shape": "circle", "label": "benign",
     "box": (26, 16, 35, 25), "fine_class": None, "calc_type": None, "calc_distribution": None},
    {"roi_id": f"{UID['rcc']}_1", "image_id": UID["rcc"], "shape": "mask", "label": "benign",
     "box": (5, 10, 8, 20), "fine_class": None, "calc_type": None, "calc_distribution": "CLUSTERED"},
    {"roi_id": f"{UID['rmlo']}_1", "image_id": UID["rmlo"], "shape": "image", "label": "actionable",
     "box": (None, None, None, None), "fine_class": None, "calc_type": None, "calc_distribution": None},
]  # fmt: skip


def roi_summary(rois: pd.DataFrame) -> list[dict]:
    out = []
    for roi in rois.to_dict("records"):
        box = tuple(None if pd.isna(roi[c]) else int(roi[c]) for c in ("x_min", "y_min", "x_max", "y_max"))
        keep = ("roi_id", "image_id", "shape", "label", "fine_class", "calc_type", "calc_distribution")
        out.append({**{k: None if pd.isna(roi[k]) else roi[k] for k in keep}, "box": box})
    return out


@pytest.mark.parametrize("key", ["file", "sop_instance_uid"])
def test_a_label_table_keyed_by_file_or_by_sop_instance_uid_gives_the_rois(archive, labels_folder, key):
    labels = write_labels(labels_folder / "labels.csv", labelled_rows(key))
    tables = ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels)}, archive.parent)
    assert roi_summary(tables["rois"]) == EXPECTED_ROIS
    assert tables["rois"].loc[2, "mask_path"] == str(labels_folder / "masks" / "rcc.png")
    images = tables["images"].set_index("image_id")
    assert images.loc[UID["lcc"], ["density", "given_split", "subset"]].tolist() == ["C", "train", "main"]
    assert images.loc[UID["rmlo"], "subset"] == "enrichment"
    assert images.loc[UID["rmlo"], ["density", "given_split"]].isna().all()
    assert UID["lmlo"] in images.index  # no row: kept as an image without a finding
    validate_corpus(tables["images"], tables["rois"], tables["subjects"], "test")


def calcification_labels() -> np.ndarray:
    labels = np.zeros((HEIGHT, WIDTH), np.uint16)
    labels[4:6, 4:6], labels[20, 10], labels[30:33, 25] = 1, 2, 3
    return labels


def rows_with_truth() -> list[dict]:
    """labelled_rows, with a 16-bit label image for L CC (on both its rows) and a binary .npy mask for L MLO."""
    rows = labelled_rows("file")
    rows[0]["truth_mask_path"] = rows[1]["truth_mask_path"] = "truth/lcc.png"
    return [*rows, {"file": "P001/study1/LMLO", "label": "", "truth_mask_path": "truth/lmlo.npy"}]


@pytest.fixture
def truth_folder(labels_folder) -> Path:
    (labels_folder / "truth").mkdir()
    Image.fromarray(calcification_labels()).save(labels_folder / "truth" / "lcc.png")
    np.save(labels_folder / "truth" / "lmlo.npy", calcification_labels() > 0)
    return labels_folder


def test_the_label_table_gives_each_image_its_calcification_truth(archive, truth_folder):
    labels = write_labels(truth_folder / "labels.csv", rows_with_truth())
    tables = ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels)}, archive.parent)
    truth = validate_corpus(tables["images"], tables["rois"], tables["subjects"], "test")["images"]
    truth = truth.set_index("image_id")["truth_mask_path"]
    assert truth.dropna().to_dict() == {
        UID["lcc"]: str(truth_folder / "truth" / "lcc.png"),
        UID["lmlo"]: str(truth_folder / "truth" / "lmlo.npy"),
    }
    assert truth[[UID["rcc"], UID["rmlo"]]].isna().all()
    for image_id in (UID["lcc"], UID["lmlo"]):
        np.testing.assert_array_equal(read_truth_labels(truth[image_id]), calcification_labels())


def test_truth_that_does_not_fit_its_image_is_reported_with_its_row(archive, truth_folder):
    np.save(truth_folder / "truth" / "small.npy", np.zeros((5, 5), np.uint8))
    rows = rows_with_truth()
    rows[1]["truth_mask_path"] = "truth/other.png"  # the second row of L CC disagrees with the first
    rows[2]["truth_mask_path"] = "truth/small.npy"
    rows[3]["truth_mask_path"] = "truth/gone.png"
    labels = write_labels(truth_folder / "labels.csv", rows)
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels)}, archive.parent)
    truth = truth_folder / "truth"
    assert caught.value.problems == [
        "labels.csv row 3, column 'truth_mask_path': image "
        f"{UID['lcc']} has 'truth/other.png' here but 'truth/lcc.png' in row 2",
        f"labels.csv row 4, column 'truth_mask_path': {truth / 'small.npy'} is 5 x 5 pixels, not the "
        f"{WIDTH} x {HEIGHT} pixels of image {UID['rcc']}",
        f"labels.csv row 5, column 'truth_mask_path': {truth / 'gone.png'}: no such file",
    ]


def test_unlabelled_skip_leaves_out_the_images_no_row_names(archive, labels_folder):
    labels = write_labels(labels_folder / "labels.csv", labelled_rows("file"))
    tables = ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels), "unlabelled": "skip"}, archive.parent)
    assert list(tables["images"]["image_id"]) == [UID["lcc"], UID["rcc"], UID["rmlo"]]
    reasons = dict(zip(tables["skipped"]["path"], tables["skipped"]["reason"]))
    assert reasons[str(archive / "P001/study1/LMLO")] == "no row in the label table (corpus.dicom_dir.unlabelled: skip)"


def test_label_rows_naming_no_kept_image_are_all_reported_with_their_row(archive, labels_folder):
    labels = write_labels(
        labels_folder / "labels.csv",
        [
            {"file": "P001/study1/LCC.dcm", "label": "benign"},
            {"file": "P001/study1/missing.dcm", "label": "benign"},
            {"file": "notes.txt", "label": "benign"},
            {"file": "P001/study1/report.dcm", "label": "benign"},
            {"file": "P001/study1/RCC_raw.dcm", "label": "actionable"},
            {"file": "P001\\study1\\LMLO", "label": "malignant"},
            {"file": "", "label": "benign"},
        ],
    )
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels)}, archive.parent)
    assert caught.value.where == f"DICOM folder {archive}"
    assert caught.value.problems == [
        f"labels.csv row 3, column 'file': P001/study1/missing.dcm is no file under {archive}",
        f"labels.csv row 4, column 'file': notes.txt is not a DICOM file under {archive}",
        "labels.csv row 5, column 'file': names P001/study1/report.dcm, which is skipped: "
        "no pixel data (Comprehensive SR Storage)",
        "labels.csv row 6, column 'file': names P001/study1/RCC_raw.dcm, which is skipped: "
        f"FOR PROCESSING image of study {STUDY_1}, which also has FOR PRESENTATION images "
        "(corpus.dicom_dir.presentation_intent: presentation)",
        "labels.csv row 8, column 'file': is empty but required",
        "labels.csv row 7, column 'label': unknown label 'malignant'; expected benign, actionable, "
        "or empty for no finding",
    ]


def test_an_unknown_sop_instance_uid_in_the_label_table_is_reported(archive, labels_folder):
    labels = write_labels(labels_folder / "labels.csv", [{"sop_instance_uid": "1.2.3.999", "label": "benign"}])
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels)}, archive.parent)
    assert caught.value.problems == [
        f"labels.csv row 2, column 'sop_instance_uid': no DICOM file under {archive} has SOPInstanceUID 1.2.3.999"
    ]


def test_a_label_table_needs_one_key_column_and_known_columns(archive, labels_folder):
    labels = write_labels(labels_folder / "labels.csv", [{"image": "x", "label": "benign", "colour": "red"}])
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(archive, {**PARAMS, "labels": str(labels)}, archive.parent)
    assert caught.value.problems == [
        "labels.csv: needs exactly one key column, sop_instance_uid or file (a path relative to the DICOM "
        "folder); found neither",
        "labels.csv: unknown column(s): image, colour (see docs/dicom.md)",
    ]


@pytest.mark.filterwarnings("ignore:Invalid value for VR AS")  # the malformed age is the point
def test_header_problems_of_every_file_are_reported_together_naming_file_and_tag(tmp_path):
    root = tmp_path / "bad"
    pixels = mammogram_pixels(12)
    write_mammogram(root / "a_no_side.dcm", pixels, bits_stored=12, ImageLaterality=None, SOPInstanceUID="1.9.1")
    write_mammogram(root / "b_both.dcm", pixels, bits_stored=12, ImageLaterality="B", SOPInstanceUID="1.9.2")
    write_mammogram(root / "c_no_spacing.dcm", pixels, bits_stored=12, PixelSpacing=None, SOPInstanceUID="1.9.3")
    write_mammogram(root / "d_copy_1.dcm", pixels, bits_stored=12, SOPInstanceUID="1.9.4")
    write_mammogram(root / "sub" / "d_copy_2.dcm", pixels, bits_stored=12, SOPInstanceUID="1.9.4")
    write_mammogram(root / "e_age.dcm", pixels, bits_stored=12, PatientAge="57 years", SOPInstanceUID="1.9.5")
    write_mammogram(root / "f_no_patient.dcm", pixels, bits_stored=12, PatientID=None, SOPInstanceUID="1.9.6")
    (root / "g_cut.dcm").write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff")  # cut in its meta
    (root / "h_garbage.dcm").write_bytes(bytes(128) + b"DICM" + b"garbage after a DICOM preamble")
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(root, PARAMS, tmp_path)
    problems = caught.value.problems
    assert problems[:5] == [
        "a_no_side.dcm, tag ImageLaterality (0020,0062): missing, and so is Laterality (0020,0060); "
        "calcsig needs the side of each breast image",
        "b_both.dcm, tag ImageLaterality (0020,0062): 'B' is not one breast; expected L or R",
        "c_no_spacing.dcm, tag PixelSpacing (0028,0030): missing, and so is ImagerPixelSpacing (0018,1164); "
        "set corpus.dicom_dir.pixel_spacing_mm to the pixel edge in mm (0.07 for most full-field digital systems)",
        "e_age.dcm, tag PatientAge (0010,1010): PatientAge '57 years' is not an age string like 057Y",
        "f_no_patient.dcm, tag PatientID (0010,0020): missing; every image needs one (it gives the subject_id)",
    ]
    assert problems[5:7] == [
        "g_cut.dcm: unreadable DICOM header: its file meta information has no TransferSyntaxUID",
        "h_garbage.dcm: unreadable DICOM header: its file meta information has no TransferSyntaxUID",
    ]
    assert problems[7:] == [
        "d_copy_1.dcm, sub/d_copy_2.dcm, tag SOPInstanceUID (0008,0018): 1.9.4 is in 2 files; "
        "each DICOM object must be stored once (remove the copies)"
    ]


def test_a_configured_spacing_fills_in_for_images_that_give_none(tmp_path):
    root = tmp_path / "flat"
    write_mammogram(root / "a.dcm", mammogram_pixels(12), bits_stored=12, PixelSpacing=None)
    images = ingest_dicom_dir(root, {**PARAMS, "pixel_spacing_mm": 0.1}, tmp_path)["images"]
    assert images["pixel_spacing_mm"].tolist() == [0.1]


def test_a_file_whose_codec_is_missing_is_an_error_naming_syntax_and_package(tmp_path, monkeypatch):
    root = tmp_path / "jls"
    write_mammogram(root / "a.dcm", mammogram_pixels(12), uid.JPEGLSLossless, bits_stored=12)
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # imagecodecs not installed
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(root, PARAMS, tmp_path)
    assert caught.value.problems == [
        "a.dcm: transfer syntax JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80) needs "
        "imagecodecs to decode; install it (pip install imagecodecs)"
    ]


def test_a_folder_without_any_mammogram_is_an_error(tmp_path):
    root = tmp_path / "reports"
    write_pixelless(root / "sr.dcm", uid.ComprehensiveSRStorage, "SR")
    write_pixelless(root / "sr2.dcm", uid.ComprehensiveSRStorage, "SR")
    write_mammogram(root / "ct.dcm", mammogram_pixels(8), Modality="CT", SOPClassUID=uid.CTImageStorage)
    with pytest.raises(IngestError) as caught:
        ingest_dicom_dir(root, PARAMS, tmp_path)
    assert caught.value.problems == [
        f"{root}: no mammogram kept (single-frame grayscale DICOM with Modality MG and pixel data) among 3 "
        "DICOM file(s); skipped: 2 x no pixel data (Comprehensive SR Storage); "
        "1 x modality CT, not MG (CT Image Storage)"
    ]


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(IngestError, match="corpus.path must be a folder of DICOM files; got .*nowhere"):
        ingest_dicom_dir(tmp_path / "nowhere", PARAMS, tmp_path)


def test_the_same_folder_gives_the_same_tables(archive, labels_folder):
    params = {**PARAMS, "labels": str(write_labels(labels_folder / "labels.csv", labelled_rows("file")))}
    first, second = (ingest_dicom_dir(archive, params, archive.parent) for _ in range(2))
    for kind in ("images", "rois", "subjects", "skipped"):
        pd.testing.assert_frame_equal(first[kind], second[kind])


def test_source_files_are_every_dicom_file_kept_or_skipped_the_label_table_its_masks_and_truth(archive, truth_folder):
    labels_folder = truth_folder
    labels = write_labels(labels_folder / "labels.csv", rows_with_truth())
    files = source_files(archive, {**PARAMS, "labels": str(labels)})
    relative = [
        "P001/study1/LCC.dcm",
        "P001/study1/LMLO",
        "P001/study1/RCC.dcm",
        "P001/study1/RCC_raw.dcm",
        "P001/study1/gsps.dcm",
        "P001/study1/report.dcm",
        "P002/2024/series/img/0001",
        "P002/2024/series/img/ct.dcm",
        "P002/2024/series/img/sc.dcm",
        "P002/index.dcm",
    ]
    named = [
        labels_folder / "masks" / "rcc.png",
        labels_folder / "truth" / "lcc.png",
        labels_folder / "truth" / "lmlo.npy",
    ]
    assert files == sorted([archive / r for r in relative] + [labels, *named])


def test_build_corpus_writes_the_skipped_table_beside_the_corpus_tables(archive, tmp_path):
    outputs = {kind: tmp_path / "corpus" / f"{kind}.tsv" for kind in ("images", "rois", "subjects", "skipped")}
    build_corpus("dicom_dir", str(archive), PARAMS, tmp_path / "corpus", outputs)
    skipped = pd.read_csv(outputs["skipped"], sep="\t")
    assert list(skipped.columns) == ["path", "reason"]
    assert skipped["path"].tolist()[1:3] == [
        str(archive / "P001/study1/gsps.dcm"),
        str(archive / "P001/study1/report.dcm"),
    ]
    assert len(pd.read_csv(outputs["images"], sep="\t")) == 4


def test_build_corpus_writes_an_empty_skipped_table_for_sources_that_skip_nothing(tmp_path):
    Image.fromarray(np.full((HEIGHT, WIDTH), 9, np.uint8)).save(tmp_path / "a.png")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("image_id,subject_id,image_path,label,pixel_spacing_mm\na,s1,a.png,,0.1\n")
    outputs = {kind: tmp_path / "corpus" / f"{kind}.tsv" for kind in ("images", "rois", "subjects", "skipped")}
    build_corpus("csv", str(manifest), {}, tmp_path / "corpus", outputs)
    assert outputs["skipped"].read_text() == "path\treason\n"


def test_the_config_names_the_source_and_fills_its_defaults(archive):
    config = load_config({"corpus": {"source": "dicom_dir", "path": str(archive)}})
    assert config["corpus"]["dicom_dir"] == PARAMS


@pytest.mark.parametrize(
    ("age", "born", "studied", "years"),
    [
        ("057Y", None, None, 57.0),
        ("006M", None, None, 0.5),
        ("052W", None, None, round(52 * 7 / 365.25, 4)),
        (None, "19600310", "20240309", 63.0),  # the day before the 64th birthday
        (None, "19600310", "20240310", 64.0),
        (None, "19600310", None, None),
        (None, None, None, None),
    ],
)
def test_age_comes_from_the_age_string_else_from_birth_and_study_dates(age, born, studied, years):
    assert age_years(age, born, studied) == years


@pytest.mark.parametrize(
    ("age", "born", "studied", "message"),
    [
        ("57", None, None, "PatientAge '57' is not an age string like 057Y"),
        (None, "1960-03-10", "20240309", "'1960-03-10' is not a date YYYYMMDD"),
        (None, "20250101", "20240309", "PatientBirthDate 20250101 is after the study date 20240309"),
    ],
)
def test_malformed_ages_and_dates_are_refused_naming_the_value(age, born, studied, message):
    with pytest.raises(ValueError) as caught:
        age_years(age, born, studied)
    assert str(caught.value) == message
