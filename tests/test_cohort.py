"""The cohort: every corpus ROI included or excluded with the first reason that applies; folds it can fill."""

import pandas as pd
import pytest

from calcsig.cohort import (
    CohortTooSmall,
    check_fold_capacity,
    cohort_summary,
    final_cohort,
    fold_capacity_problems,
    provisional_cohort,
    read_cohort,
    write_cohort,
)
from calcsig.errors import TableError


def corpus():
    images = pd.DataFrame(
        {
            "image_id": ["i1", "i2", "i3", "i4"],
            "subject_id": ["s1", "s2", "s3", "s4"],
            "has_pixels": ["true", "true", "true", "false"],
        }
    )
    rois = pd.DataFrame(
        {
            "roi_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
            "image_id": ["i1", "i1", "i2", "i2", "i3", "i4", "i3"],
            "shape": ["circle", "circle", "bbox", "image", "bbox", "bbox", "bbox"],
            "label": ["benign", "actionable", "benign", "actionable", "actionable", "benign", "benign"],
            "fine_class": ["benign", "malignant", "benign_without_callback", "malignant", "malignant", "benign", "x"],
            "abnormality": [
                "calcification",
                "calcification",
                "calcification",
                "calcification",
                "mass",
                "calcification",
                "calcification",
            ],
            "calc_type": ["AMORPHOUS", "PUNCTATE-AMORPHOUS", "AMORPHOUS", None, None, "AMORPHOUS", "PLEOMORPHIC"],
            "calc_distribution": ["CLUSTERED", "CLUSTERED", "LINEAR", None, None, "CLUSTERED", "CLUSTERED"],
        }
    )
    return rois, images


def reasons(cohort):
    return dict(zip(cohort["roi_id"], cohort["reason"]))


def test_every_roi_gets_one_row_with_the_first_reason_that_applies():
    rois, images = corpus()
    cohort = provisional_cohort(rois, images, {})
    assert list(cohort["roi_id"]) == list(rois["roi_id"])
    assert reasons(cohort) == {
        "r1": "",
        "r2": "",
        "r3": "",
        "r4": "no_location",  # an image-level label
        "r5": "abnormality_not_selected",  # a mass: the default cohort is calcifications
        "r6": "no_pixels",
        "r7": "",
    }
    assert list(cohort["included"]) == [True, True, True, False, False, False, True]


def test_morphology_selection_exact_keeps_pure_types_and_any_keeps_mixed_ones():
    rois, images = corpus()
    exact = provisional_cohort(rois, images, {"calc_type": ["amorphous"]})
    assert reasons(exact)["r1"] == "" and reasons(exact)["r2"] == "outside_morphology"
    assert reasons(exact)["r7"] == "outside_morphology"
    mixed = provisional_cohort(rois, images, {"calc_type": ["amorphous"], "calc_type_match": "any"})
    assert reasons(mixed)["r2"] == ""
    by_distribution = provisional_cohort(rois, images, {"calc_distribution": ["clustered"]})
    assert reasons(by_distribution)["r3"] == "outside_distribution"


def test_the_label_map_relabels_or_excludes_by_fine_class():
    rois, images = corpus()
    cohort = provisional_cohort(
        rois, images, {"label_map": {"BENIGN_WITHOUT_CALLBACK": "exclude", "x": "actionable"}}
    ).set_index("roi_id")
    assert cohort.at["r3", "reason"] == "label_excluded"
    assert cohort.at["r7", "label"] == "actionable" and cohort.at["r1", "label"] == "benign"


def assignment(rows):
    return pd.DataFrame(
        [{"level": "roi", "roi_id": r, "split": s, "outer_fold": f} for r, s, f in rows],
        columns=["level", "roi_id", "split", "outer_fold"],
    )


def test_segmentation_adds_its_exclusions_and_the_split():
    rois, images = corpus()
    provisional = provisional_cohort(rois, images, {})
    split = assignment([("r1", "train", "1"), ("r2", "dev", "2"), ("r3", "eval", ""), ("r7", "train", "2")])
    final = final_cohort(provisional, split, pd.Series({"r1": 3, "r2": 0, "r3": 5}), qc_failed={"r7"})
    assert reasons(final) == {**reasons(provisional), "r2": "no_detected_object", "r7": "failed_qc"}
    assert list(final.loc[final["included"], "roi_id"]) == ["r1", "r3"]
    assert dict(zip(final["roi_id"], final["split"]))["r3"] == "eval"
    kept = final_cohort(provisional, split, pd.Series({"r1": 3, "r2": 0}), require_detected_objects=False)
    assert reasons(kept)["r2"] == ""


def test_the_summary_counts_the_flow_like_an_inclusion_diagram():
    rois, images = corpus()
    summary = cohort_summary(provisional_cohort(rois, images, {}))
    assert summary["n_corpus_rois"] == 7 and summary["n_included"] == 4
    assert summary["excluded"] == {"abnormality_not_selected": 1, "no_pixels": 1, "no_location": 1}
    assert [step["remaining"] for step in summary["flow"]] == [6, 5, 4]
    assert summary["included"]["by_label"] == {"actionable": 1, "benign": 3}


def test_written_tables_read_back_and_broken_ones_name_their_rows(tmp_path):
    rois, images = corpus()
    cohort = provisional_cohort(rois, images, {})
    write_cohort(cohort, tmp_path / "rois.tsv", tmp_path / "summary.json")
    back = read_cohort(tmp_path / "rois.tsv")
    assert list(back["included"]) == list(cohort["included"])
    broken = cohort.assign(included=cohort["included"].map({True: "true", False: "false"}))
    broken.loc[0, "reason"] = "no_pixels"  # included, yet with a reason
    broken.loc[3, "reason"] = ""  # excluded without one
    broken.to_csv(tmp_path / "broken.tsv", sep="\t", index=False)
    with pytest.raises(TableError) as error:
        read_cohort(tmp_path / "broken.tsv")
    assert "row 2 (ROI r1)" in str(error.value) and "row 5 (ROI r4)" in str(error.value)


def test_a_cohort_too_small_for_the_folds_stops_with_the_counts_and_what_to_change():
    rois, images = corpus()
    cohort = provisional_cohort(rois, images, {})
    split = assignment([("r1", "train", "1"), ("r2", "train", "2"), ("r3", "dev", "1"), ("r7", "train", "2")])
    problems = fold_capacity_problems(cohort, split)
    assert problems and "actionable" in problems[0] and "need 2 of each" in problems[0]
    with pytest.raises(CohortTooSmall, match="Lower partition.outer_folds"):
        check_fold_capacity(cohort, split)


def test_a_corpus_without_pixels_is_not_too_small_but_an_emptying_selection_is():
    rois, images = corpus()
    no_pixels = images.assign(has_pixels="false")
    assert fold_capacity_problems(provisional_cohort(rois, no_pixels, {}), assignment([])) == []
    emptied = provisional_cohort(rois, images, {"calc_type": ["ROUND"]})
    assert fold_capacity_problems(emptied, assignment([])) == [
        "no ROI is left after the selection (see the exclusion counts)"
    ]
