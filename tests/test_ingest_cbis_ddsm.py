"""CBIS-DDSM adapter: case description tables, given splits, metadata-only validity, DICOMs when present."""

import csv
from pathlib import Path

import numpy as np
import pytest
from dicom_files import write_dicom

from calcsig.errors import IngestError
from calcsig.ingest.cbis_ddsm import ingest_cbis_ddsm
from calcsig.tables import validate_corpus

METADATA_ONLY = {"subsets": ["calc", "mass"], "image_root": None, "pixel_spacing_mm": None}
CALC_HEADER = [
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "calc type",
    "calc distribution",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]
MASS_HEADER = [
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]


def validated(tables: dict) -> dict:
    return validate_corpus(tables["images"], tables["rois"], tables["subjects"], "test")


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    return validated(ingest_cbis_ddsm(shared_data / "cbis-ddsm", METADATA_ONLY, tmp_path_factory.mktemp("cbis")))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_real_calc_tables_counts(real, shared_data):
    rows = {
        split: read_rows(shared_data / "cbis-ddsm" / f"calc_case_description_{split}_set.csv")
        for split in ("train", "test")
    }
    all_rows = rows["train"] + rows["test"]
    assert len(real["rois"]) == len(all_rows) == 1872
    assert len(real["subjects"]) == len({r["patient_id"] for r in all_rows}) == 753
    assert len(real["images"]) == len({r["image file path"].split("/")[0] for r in all_rows})
    malignant = sum(r["pathology"] == "MALIGNANT" for r in all_rows)
    assert (real["rois"]["label"] == "actionable").sum() == malignant


def test_real_given_split_follows_the_table(real):
    images = real["images"]
    assert set(images["given_split"]) == {"train", "test"}
    assert images["image_id"].str.startswith("Calc-Training_").eq(images["given_split"] == "train").all()
    assert images["image_id"].str.startswith("Calc-Test_").eq(images["given_split"] == "test").all()
    assert set(images["subset"]) == {"calc"}


def test_real_metadata_only_rows(real):
    images, rois = real["images"], real["rois"]
    assert not images["has_pixels"].any()
    assert images["path"].isna().all()
    assert set(rois["shape"]) == {"image"}
    roi = rois.set_index("roi_id").loc["Calc-Training_P_00005_RIGHT_CC_1"]
    assert (roi["label"], roi["fine_class"], roi["calc_type"], roi["calc_distribution"]) == (
        "actionable",
        "malignant",
        "AMORPHOUS",
        "CLUSTERED",
    )
    image = images.set_index("image_id").loc["Calc-Training_P_00005_RIGHT_CC"]
    assert (image["subject_id"], image["laterality"], image["view"], image["density"]) == ("P_00005", "R", "CC", "C")
    # density 0 (not assessed) is missing, not an error
    assert images.set_index("subject_id").loc["P_01743", "density"].isna().all()


def row(
    patient="P_00001",
    density="2",
    side="LEFT",
    view="CC",
    abnormality="1",
    kind="calcification",
    pathology="BENIGN",
    folder=None,
    prefix="Calc-Training",
    mask="000000.dcm",
    crop="000001.dcm",
) -> dict:
    folder = folder or f"{prefix}_{patient}_{side}_{view}"
    return {
        "patient_id": patient,
        "density": density,
        "left or right breast": side,
        "image view": view,
        "abnormality id": abnormality,
        "abnormality type": kind,
        "pathology": pathology,
        "image file path": f"{folder}/1.2.3/1.2.4/000000.dcm",
        "cropped image file path": f"{folder}_{abnormality}/1.2.5/1.2.6/{crop}\n",
        "ROI mask file path": f"{folder}_{abnormality}/1.2.5/1.2.6/{mask}",
    }


def write_table(path: Path, rows: list[dict], header=CALC_HEADER) -> Path:
    density_column = header[1]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    "calc type": "PLEOMORPHIC",
                    "calc distribution": "N/A",
                    "assessment": "4",
                    "subtlety": "3",
                    "mass shape": "OVAL",
                    "mass margins": "SPICULATED",
                    density_column: r["density"],
                    **r,
                }
            )
    return path


def test_calc_and_mass_tables_with_quoted_newlines(tmp_path):
    write_table(
        tmp_path / "calc_case_description_train_set.csv",
        [row(), row(abnormality="2", pathology="MALIGNANT"), row(view="MLO", density="0")],
    )
    write_table(
        tmp_path / "mass_case_description_test_set.csv",
        [row(prefix="Mass-Test", kind="mass", pathology="BENIGN_WITHOUT_CALLBACK", density="4")],
        MASS_HEADER,
    )
    tables = validated(ingest_cbis_ddsm(tmp_path, METADATA_ONLY, tmp_path / "out"))
    images = tables["images"].set_index("image_id")
    assert images["given_split"].to_dict() == {
        "Calc-Training_P_00001_LEFT_CC": "train",
        "Calc-Training_P_00001_LEFT_MLO": "train",
        "Mass-Test_P_00001_LEFT_CC": "test",
    }
    assert images["subset"].to_dict()["Mass-Test_P_00001_LEFT_CC"] == "mass"
    assert images["density"].fillna("missing").tolist() == ["B", "missing", "D"]
    rois = tables["rois"].set_index("roi_id")
    assert rois.loc["Calc-Training_P_00001_LEFT_CC_2", "label"] == "actionable"
    assert rois.loc["Mass-Test_P_00001_LEFT_CC_1", ["label", "fine_class", "abnormality"]].tolist() == [
        "benign",
        "benign_without_callback",
        "mass",
    ]
    assert rois["calc_distribution"].isna().all()  # "N/A" is missing
    assert tables["subjects"].set_index("subject_id").loc["P_00001", "n_images"] == 3


def test_single_csv_and_subset_filter(tmp_path):
    calc = write_table(tmp_path / "calc_case_description_test_set.csv", [row(prefix="Calc-Test")])
    write_table(tmp_path / "mass_case_description_test_set.csv", [row(prefix="Mass-Test", kind="mass")], MASS_HEADER)
    assert len(ingest_cbis_ddsm(calc, METADATA_ONLY, tmp_path / "out")["images"]) == 1
    only_mass = ingest_cbis_ddsm(tmp_path, {**METADATA_ONLY, "subsets": ["mass"]}, tmp_path / "out")
    assert only_mass["images"]["subset"].tolist() == ["mass"]


def test_every_bad_row_is_listed(tmp_path):
    write_table(
        tmp_path / "calc_case_description_train_set.csv",
        [
            row(pathology="MAYBE"),  # row 2
            row(view="MLO", pathology="UNKNOWN"),  # row 3
            row(patient="P_00002", side="UP"),  # row 4
            row(patient="P_00003", density="7"),  # row 5
            row(patient="P_00004"),
            row(patient="P_00004"),  # rows 6, 7: same abnormality id twice
        ],
    )
    with pytest.raises(IngestError) as caught:
        ingest_cbis_ddsm(tmp_path, METADATA_ONLY, tmp_path / "out")
    problems = caught.value.problems
    assert any(
        p.startswith("calc_case_description_train_set.csv row 2, column 'pathology': unknown pathology 'MAYBE'")
        for p in problems
    )
    assert any(p.startswith("calc_case_description_train_set.csv row 3, column 'pathology'") for p in problems)
    assert any("row 4, column 'left or right breast'" in p for p in problems)
    assert any("row 5, column 'breast density'" in p for p in problems)
    assert any("row 6; calc_case_description_train_set.csv row 7" in p and "duplicate ROI" in p for p in problems)
    assert len(problems) == 5


def test_missing_columns_and_no_tables_are_reported(tmp_path):
    (tmp_path / "calc_case_description_train_set.csv").write_text("patient_id,pathology\nP_1,BENIGN\n")
    with pytest.raises(IngestError, match="missing column.*left or right breast.*breast density or breast_density"):
        ingest_cbis_ddsm(tmp_path, METADATA_ONLY, tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IngestError, match="no table named"):
        ingest_cbis_ddsm(empty, METADATA_ONLY, tmp_path / "out")


@pytest.mark.parametrize("workers", [1, 2])
def test_images_and_masks_are_read_from_image_root(tmp_path, workers):
    rows = [row(), row(view="MLO", mask="000001.dcm", crop="000000.dcm")]  # second: mask and crop swapped
    tables_dir = tmp_path / "tables"
    tables_dir.mkdir()
    write_table(tables_dir / "calc_case_description_train_set.csv", rows)
    root = tmp_path / "dicom"
    mask = np.zeros((30, 20), np.uint8)
    mask[4:9, 6:15] = 255
    for r in rows:
        write_dicom(root / r["image file path"], np.full((30, 20), 900, np.uint16), pixel_spacing=0.05)
        write_dicom(root / r["ROI mask file path"], mask)
        write_dicom(root / r["cropped image file path"].strip(), np.full((5, 9), 7, np.uint16))
    params = {**METADATA_ONLY, "image_root": str(root)}
    tables = validated(ingest_cbis_ddsm(tables_dir, params, tmp_path / "out", workers=workers))
    images, rois = tables["images"], tables["rois"]
    assert images["has_pixels"].all()
    assert images[["height", "width", "bits"]].values.tolist() == [[30, 20, 16]] * 2
    assert images["pixel_spacing_mm"].tolist() == [0.05, 0.05]
    assert images["sha256"].str.fullmatch("[0-9a-f]{64}").all()
    assert set(rois["shape"]) == {"mask"}
    assert rois[["x_min", "y_min", "x_max", "y_max"]].values.tolist() == [[6, 4, 15, 9]] * 2
    assert rois["mask_path"].str.endswith(("000000.dcm", "000001.dcm")).all()
    assert rois.loc[1, "mask_path"].endswith("000001.dcm")


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_dicoms_and_spacing_are_all_reported(tmp_path, workers):
    rows = [row(), row(view="MLO"), row(side="RIGHT")]
    tables_dir = tmp_path / "tables"
    tables_dir.mkdir()
    write_table(tables_dir / "calc_case_description_train_set.csv", rows)
    root = tmp_path / "dicom"
    write_dicom(root / rows[2]["image file path"], np.zeros((10, 10), np.uint16))  # no spacing in the file
    with pytest.raises(IngestError) as caught:
        ingest_cbis_ddsm(tables_dir, {**METADATA_ONLY, "image_root": str(root)}, tmp_path / "out", workers=workers)
    problems = caught.value.problems
    assert sum("column 'image file path'" in p and "no such file" in p for p in problems) == 2
    assert any("row 4, column 'image file path'" in p and "no pixel spacing" in p for p in problems)
    assert any("row 4, column 'ROI mask file path'" in p for p in problems)
