"""Corpus checks right after ingest: a corpus the configured run cannot learn from stops before partitioning."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from calcsig.checks import DEFAULT_SETTINGS, check_corpus, corpus_check_settings, raise_if_problems
from calcsig.config import load_config
from calcsig.errors import CorpusCheckError

REPO = Path(__file__).resolve().parents[1]


def corpus(labels_per_subject: dict[str, list[str]], abnormality: str = "calcification", **image_columns):
    """Tables with one image per subject and one circle ROI per label listed for it."""
    images = pd.DataFrame(
        {
            "image_id": [f"{s}_img" for s in labels_per_subject],
            "subject_id": list(labels_per_subject),
            "has_pixels": True,
            "source": "csv",
            "subset": "main",
            **image_columns,
        }
    )
    rois = pd.DataFrame(
        [
            {
                "roi_id": f"{s}_r{i}",
                "image_id": f"{s}_img",
                "shape": "circle",
                "center_x": 50.0,
                "center_y": 50.0,
                "radius_px": 10.0,
                "label": label,
                "abnormality": abnormality,
                "source": "csv",
            }
            for s, labels in labels_per_subject.items()
            for i, label in enumerate(labels)
        ]
    )
    subjects = pd.DataFrame({"subject_id": list(labels_per_subject), "cohort": "csv", "n_images": 1})
    return images, rois, subjects


def balanced(n_per_class: int) -> dict[str, list[str]]:
    return {
        **{f"b{i:02d}": ["benign"] for i in range(n_per_class)},
        **{f"a{i:02d}": ["actionable"] for i in range(n_per_class)},
    }


def test_a_corpus_with_both_labels_and_enough_subjects_passes():
    assert check_corpus(*corpus(balanced(12)), DEFAULT_SETTINGS) == []


def test_only_benign_labels_are_refused_naming_the_label_column():
    images, rois, subjects = corpus({f"s{i}": ["benign"] for i in range(30)})
    assert check_corpus(images, rois, subjects) == [
        "rois.tsv column 'label': all 30 ROI(s) the models learn from (cohort abnormality ['calcification'], "
        "located, with pixels) are benign; a model needs benign and actionable ROIs: add actionable cases or "
        "widen the cohort selection"
    ]


def test_a_class_too_small_for_the_outer_folds_is_refused_with_the_numbers():
    labels = {**balanced(12), **{f"x{i}": ["benign"] for i in range(20)}}
    for name in ("a03", "a04", "a05", "a06", "a07", "a08", "a09", "a10", "a11"):
        del labels[name]  # 3 actionable subjects left
    [problem] = check_corpus(*corpus(labels), {"outer_folds": 4})
    assert problem.startswith(
        "rois.tsv column 'label': 3 subject(s) have actionable ROIs the models learn from; partition.fractions.eval "
        "(0.25) puts about 1 of them in eval, and with partition.outer_folds 4 an outer training set can be left "
        "with 1; the inner cross-validation needs 2 subjects of each class in every training set"
    )
    labels["a11"] = ["actionable"]  # a fourth: 1 in eval, 3 in train+dev, 2 in every outer training set
    assert check_corpus(*corpus(labels), {"outer_folds": 4}) == []


def test_fewer_subjects_than_folds_is_refused_before_the_partition_runs():
    problems = check_corpus(*corpus(balanced(2)), {"outer_folds": 5})
    assert any(p.startswith("rois.tsv column 'label': 2 subject(s) have benign ROIs") for p in problems)
    assert problems[-1] == (
        "images.tsv column 'subject_id': about 3 subject(s) stay in train+dev, too few to fill "
        "partition.outer_folds 5; lower it or add subjects"
    )


def test_a_class_with_no_subject_left_for_eval_is_refused():
    problems = check_corpus(
        *corpus(balanced(4)), {"outer_folds": 2, "fractions": {"train": 0.75, "dev": 0.15, "eval": 0.1}}
    )
    assert [p.split(" ROIs")[0] for p in problems] == [
        "rois.tsv column 'label': 4 subject(s) have benign",
        "rois.tsv column 'label': 4 subject(s) have actionable",
    ]
    assert "partition.fractions.eval (0.1) puts about none of them in eval" in problems[0]


def test_the_cohort_selection_decides_which_rois_count():
    images, rois, subjects = corpus(balanced(12), abnormality="mass")
    [problem] = check_corpus(images, rois, subjects)
    assert problem == (
        "rois.tsv: no ROI is left for the models after the cohort selection abnormality ['calcification'] (excluded: "
        "abnormality_not_selected 24); change cohort.abnormality / calc_type / calc_distribution / label_map"
    )
    assert check_corpus(images, rois, subjects, {"cohort": {"abnormality": ["Mass"]}}) == []
    assert check_corpus(images, rois, subjects, {"cohort": {"abnormality": []}}) == []  # every type


def test_a_corpus_whose_rois_cannot_reach_the_models_is_not_refused():
    # a metadata-only corpus, or image-level labels: the models are left out and the report says why
    images, rois, subjects = corpus(balanced(12))
    images["has_pixels"] = "false"
    assert check_corpus(images, rois, subjects) == []
    images["has_pixels"] = "true"
    rois["shape"] = "image"
    assert check_corpus(images, rois, subjects) == []


def test_external_images_are_left_out_and_a_cohort_naming_nothing_is_refused():
    images, rois, subjects = corpus(balanced(12), site=["a"] * 12 + ["b"] * 12)
    # site b holds every actionable subject: without them one label is left
    [problem] = check_corpus(images, rois, subjects, {"external": {"column": "site", "values": ["b"]}})
    assert problem.startswith("rois.tsv column 'label': all 12 ROI(s) the models learn from")
    [typo] = check_corpus(images, rois, subjects, {"external": {"column": "site", "values": ["hospital_b"]}})
    assert typo == (
        "config key 'partition.external.values': no image has images.tsv site in ['hospital_b'] "
        "(values there: a 12, b 12)"
    )
    [column] = check_corpus(images, rois, subjects, {"external": {"column": "centre", "values": ["b"]}})
    assert column.startswith("config key 'partition.external.column': images.tsv has no column 'centre'")


def test_a_given_split_must_exist_and_decides_the_eval_counts():
    images, rois, subjects = corpus(balanced(12))
    [problem] = check_corpus(images, rois, subjects, {"use_given_split": True})
    assert problem.startswith("images.tsv column 'given_split' is empty or absent but partition.use_given_split")
    images["given_split"] = ["train"] * 24
    problems = check_corpus(images, rois, subjects, {"use_given_split": True})
    assert [p.split(" and images.given_split")[0] for p in problems] == [
        "rois.tsv column 'label': 12 subject(s) have benign ROIs the models learn from",
        "rois.tsv column 'label': 12 subject(s) have actionable ROIs the models learn from",
    ]


def test_a_split_file_must_list_every_subject(tmp_path):
    images, rois, subjects = corpus(balanced(12))
    (tmp_path / "split.tsv").write_text("subject_id\tsplit\n" + "".join(f"b{i:02d}\ttrain\n" for i in range(12)))
    [problem] = check_corpus(images, rois, subjects, {"split_file": str(tmp_path / "split.tsv")})
    assert problem.endswith(
        "does not list 12 subject(s) of images.tsv, e.g. a00, a01, a02, a03, a04; every subject needs a split"
    )


def test_an_enrichment_ablation_without_an_enrichment_subset_is_refused():
    images, rois, subjects = corpus(balanced(12))
    [problem] = check_corpus(images, rois, subjects, {"enrichment_ablation": True})
    assert "no image has images.tsv subset = 'enrichment' (values there: main 24)" in problem
    images.loc[0, "subset"] = "enrichment"
    assert check_corpus(images, rois, subjects, {"enrichment_ablation": True}) == []


def test_settings_come_from_a_loaded_config_and_the_problems_raise_as_one_error():
    config = load_config(yaml.safe_load((REPO / "config.yaml").read_text()), base=REPO)
    settings = corpus_check_settings(config)
    assert settings["outer_folds"] == 4 and settings["cohort"]["abnormality"] == ["calcification"]
    images, rois, subjects = corpus({f"s{i}": ["benign"] for i in range(30)})
    with pytest.raises(CorpusCheckError) as error:
        raise_if_problems(check_corpus(images, rois, subjects, settings), "corpus source csv at m.csv")
    assert str(error.value).startswith("corpus source csv at m.csv: 1 problem(s)\n  - rois.tsv column 'label'")
    raise_if_problems([], "nothing")


def test_string_tables_straight_from_the_tsvs_are_understood():
    images, rois, subjects = (frame.astype(str) for frame in corpus(balanced(12)))
    assert check_corpus(images, rois, subjects) == []


def test_the_real_mini_mias_calcifications_support_the_default_split_but_not_a_half_held_out(shared_data):
    from calcsig.ingest.mini_mias import ingest_mini_mias

    tables = ingest_mini_mias(shared_data / "mini-mias-dev", {"pixel_spacing_mm": 0.2}, Path("."))
    args = (tables["images"], tables["rois"], tables["subjects"])
    assert check_corpus(*args, DEFAULT_SETTINGS) == []
    half = {"outer_folds": 2, "fractions": {"train": 0.4, "dev": 0.1, "eval": 0.5}}
    [problem] = check_corpus(*args, half)
    assert problem.startswith(
        "rois.tsv column 'label': 6 subject(s) have actionable ROIs the models learn from; partition.fractions.eval "
        "(0.5) puts about 3 of them in eval, and with partition.outer_folds 2 an outer training set can be left with 1"
    )


def test_the_real_cbis_ddsm_tables_without_images_pass_to_partition_and_audit(shared_data):
    from calcsig.ingest.cbis_ddsm import ingest_cbis_ddsm

    tables = ingest_cbis_ddsm(shared_data / "cbis-ddsm", {"subsets": ["calc"]}, Path("."))
    assert check_corpus(tables["images"], tables["rois"], tables["subjects"], DEFAULT_SETTINGS) == []
