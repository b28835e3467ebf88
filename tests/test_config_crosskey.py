"""Keys that contradict each other stop the run when the config is loaded, each problem naming its keys."""

from pathlib import Path

import pytest
import yaml

from calcsig.config import RADIOMICS_2D_CLASSES, cross_key_problems, load_config
from calcsig.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def problems_of(config: dict, base: Path = REPO) -> list[str]:
    """The lines of the ConfigError that loading `config` raises (none when it loads)."""
    try:
        load_config(config, base=base)
    except ConfigError as error:
        return str(error).splitlines()
    return []


def test_the_shipped_and_tiny_configs_have_no_contradiction():
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    tiny = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    assert cross_key_problems(load_config(shipped, base=REPO), base=REPO) == []
    assert problems_of({**shipped, **tiny}) == []


def test_sigma_min_above_sigma_max_names_both_keys():
    assert problems_of({"segment": {"sigma_min_mm": 0.3, "sigma_max_mm": 0.2}}) == [
        "config keys 'segment.sigma_min_mm' (0.3) and 'segment.sigma_max_mm' (0.2): "
        "the smallest DoG sigma exceeds the largest"
    ]


def test_equal_sigmas_are_a_single_scale_and_allowed():
    assert problems_of({"segment": {"sigma_min_mm": 0.2, "sigma_max_mm": 0.2}}) == []


def test_a_margin_operating_point_above_the_target_is_refused_when_the_config_is_loaded():
    (problem,) = problems_of({"model": {"target_sensitivity": 0.9, "margin_sensitivity": 0.95}})
    assert "'model.margin_sensitivity' and 'model.target_sensitivity'" in problem and "(0.95)" in problem
    assert problems_of({"model": {"target_sensitivity": 0.95, "margin_sensitivity": 0.95}}) == []


def test_a_grid_name_missing_from_the_grid_file_lists_the_grids_it_has():
    [problem] = problems_of({"model": {"grid": "huge"}})
    assert problem.startswith("config key 'model.grid': ")
    assert "has no grid named 'huge' (it has small, large)" in problem


def test_a_missing_or_broken_grid_file_is_named(tmp_path):
    [missing] = problems_of({"model": {"grid_file": "grids/none.yaml"}}, base=tmp_path)
    assert missing.startswith("config key 'model.grid_file': grid file ") and "none.yaml: does not exist" in missing
    (tmp_path / "grid.yaml").write_text("small:\n  bag_of_objects: {classifier__n_estimators: [100\n")
    [broken] = problems_of({"model": {"grid_file": "grid.yaml"}}, base=tmp_path)
    assert "grid.yaml, line 3, column 1: not valid YAML" in broken


def test_a_grid_without_an_entry_for_a_model_that_runs_is_refused(tmp_path):
    (tmp_path / "grid.yaml").write_text(
        yaml.safe_dump({"small": {"bag_of_objects": {"classifier__n_estimators": [100]}, "mean_std": {}}})
    )
    [problem] = problems_of({"model": {"grid_file": "grid.yaml"}}, base=tmp_path)
    assert "has no entry for model 'mask_brf', which this config runs" in problem
    off = {"model": {"grid_file": "grid.yaml", "baselines": {"mask_brf": False}}}
    assert problems_of(off, base=tmp_path) == []


def test_grid_values_must_be_non_empty_lists_of_pipeline_parameters(tmp_path):
    grid = {
        "small": {
            "bag_of_objects": {"classifier__n_estimators": 100, "n_clusters": [5], "classifier__max_depth": []},
            "mean_std": {},
            "mask_brf": {},
        }
    }
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    problems = problems_of({"model": {"grid_file": "grid.yaml"}}, base=tmp_path)
    assert len(problems) == 3
    assert any("bag_of_objects.classifier__n_estimators: must be a non-empty list" in p for p in problems)
    assert any("bag_of_objects.classifier__max_depth: must be a non-empty list" in p for p in problems)
    assert any("bag_of_objects.n_clusters: not a pipeline parameter" in p for p in problems)


def test_fractions_that_do_not_sum_to_one_name_all_three_keys():
    assert problems_of({"partition": {"fractions": {"eval": 0.3}}}) == [
        "config keys 'partition.fractions.train', 'dev' and 'eval': the shares (train 0.6, dev 0.15, eval 0.3) "
        "sum to 1.05, not 1 (keys left out take their defaults 0.6, 0.15, 0.25)"
    ]
    assert problems_of({"partition": {"fractions": {"train": 0.7, "dev": 0.1, "eval": 0.2}}}) == []


def test_a_split_file_and_the_given_split_cannot_both_be_set(tmp_path):
    (tmp_path / "split.tsv").write_text("subject_id\tsplit\n")
    problems = problems_of({"partition": {"split_file": "split.tsv", "use_given_split": True}}, base=tmp_path)
    assert problems == [
        "config keys 'partition.split_file' and 'partition.use_given_split': both name a given split; set one"
    ]


def test_enrichment_forced_into_train_must_be_declared_when_the_audit_fails_on_overlap():
    config = {"partition": {"enrichment_subsets": ["enrichment", "extra"], "declared_enrichment": ["enrichment"]}}
    [problem] = problems_of(config)
    assert "'partition.enrichment_subsets' and 'partition.declared_enrichment': ['extra']" in problem
    assert problems_of({"partition": {**config["partition"], "audit_policy": "warn"}}) == []


def test_a_hamming_radius_covering_every_hash_is_refused():
    [problem] = problems_of({"partition": {"hash_size": 4, "near_duplicate_hamming": 16}})
    assert "'partition.near_duplicate_hamming' and 'partition.hash_size'" in problem
    assert problems_of({"partition": {"hash_size": 4, "near_duplicate_hamming": 15}}) == []


def test_object_area_limits_that_drop_every_object_are_refused():
    problems = problems_of({"segment": {"min_area_mm2": 5.0, "max_area_mm2": 1.0}, "masks": {"min_area_mm2": 2.0}})
    assert [p.split(":")[0] for p in problems] == [
        "config keys 'segment.min_area_mm2' (5) and 'segment.max_area_mm2' (1)",
        "config keys 'masks.min_area_mm2' (2) and 'segment.max_area_mm2' (1)",
    ]
    # max_area_mm2 0 means no upper limit
    assert problems_of({"segment": {"min_area_mm2": 5.0, "max_area_mm2": 0}, "masks": {"min_area_mm2": 2.0}}) == []


def test_qc_breast_fraction_bounds_must_leave_room():
    [problem] = problems_of({"qc": {"min_breast_fraction": 0.6, "max_breast_fraction": 0.5}})
    assert problem.startswith("config keys 'qc.min_breast_fraction' (0.6) and 'qc.max_breast_fraction' (0.5)")


def test_the_background_band_must_fit_in_the_synthetic_roi_margin():
    [problem] = problems_of({"masks": {"background_band_mm": 2.5}})
    assert problem.startswith("config keys 'masks.background_band_mm' and 'corpus.synthetic.roi_margin_mm'")
    assert problems_of({"masks": {"background_band_mm": 2.5}, "corpus": {"synthetic": {"roi_margin_mm": 3}}}) == []


def test_synthetic_images_must_hold_the_border_margins_and_pass_qc():
    problems = problems_of({"corpus": {"synthetic": {"image_height_mm": 6.0}}, "segment": {"border_margin_mm": 4.0}})
    assert [p.split(":")[0] for p in problems] == [
        "config keys 'corpus.synthetic.image_height_mm', 'image_width_mm' and 'pixel_spacing_mm'",
        "config keys 'segment.border_margin_mm' and 'corpus.synthetic.image_height_mm'/'image_width_mm'",
        "config keys 'qc.min_image_side_mm' and 'corpus.synthetic.image_height_mm'/'image_width_mm'",
    ]


def test_synthetic_sites_and_duplicates_are_checked_before_generation():
    sites = [{"name": "a", "race_ethnicity": {"white": 0}}, {"name": "a"}]
    config = {"corpus": {"synthetic": {"n_subjects": 5, "sites": sites, "duplicates": {"enabled": True}}}}
    problems = problems_of(config)
    assert any(p.startswith("config key 'corpus.synthetic.sites': site name(s) ['a'] repeat") for p in problems)
    assert any(p.startswith("config key 'corpus.synthetic.sites.0.race_ethnicity'") for p in problems)
    assert any("8 duplicates for 5 subjects" in p for p in problems)


def test_model_families_need_their_feature_families_switched_on():
    config = {"features": {"families": {"background_radiomics": False, "topology": False}}}
    problems = problems_of(config)
    assert [p.split(":")[0] for p in problems] == [
        "config keys 'model.families' and 'features.families.background_radiomics'",
        "config keys 'model.global_prefixes' and 'features.families.topology'",
    ]
    config["model"] = {"families": ["fg_", "rp_"], "global_prefixes": ["n_objects", "hc_", "dist_"]}
    assert problems_of(config) == []


def test_a_pyradiomics_file_that_is_missing_broken_or_crop_unsafe_is_named(tmp_path):
    (tmp_path / "broken.yaml").write_text("setting:\n  binCount: [16\n")
    (tmp_path / "unsafe.yaml").write_text(
        yaml.safe_dump(
            {
                "setting": {"normalize": True, "resampledPixelSpacing": [1, 1]},
                "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}},
                "featureClass": {"shape": None, "glcm": None},
            }
        )
    )
    config = {"features": {"radiomics_foreground": "broken.yaml", "radiomics_background": "unsafe.yaml"}}
    problems = problems_of(config, base=tmp_path)
    assert problems[0].startswith("config key 'features.radiomics_foreground': pyradiomics file ")
    assert "broken.yaml, line 3, column 1: not valid YAML" in problems[0]
    unsafe = [p for p in problems[1:]]
    assert all(p.startswith("config key 'features.radiomics_background': ") for p in unsafe)
    assert any("imageType ['LoG', 'Original']: only Original" in p for p in unsafe)
    assert any("setting normalize is not supported" in p for p in unsafe)
    assert any("setting resampledPixelSpacing is not supported" in p for p in unsafe)
    assert any("feature class(es) ['shape'] are not computed for 2-D objects" in p for p in unsafe)
    # a switched-off family's file is not read
    off = {**config, "features": {**config["features"], "families": {"foreground_radiomics": False}}}
    assert not any("radiomics_foreground" in p for p in problems_of(off, base=tmp_path))


def test_the_2d_feature_classes_agree_with_the_extractor():
    from calcsig.features.radiomics_fast import FEATURE_CLASS_ORDER

    assert RADIOMICS_2D_CLASSES == FEATURE_CLASS_ORDER


def test_a_mini_mias_path_must_be_a_folder_holding_its_info_file(tmp_path):
    (tmp_path / "mias").mkdir()
    (tmp_path / "manifest.csv").write_text("image_id\n")
    config = {"corpus": {"source": "mini_mias", "path": "mias"}}
    assert problems_of(config, base=tmp_path) == [
        "config keys 'corpus.path' and 'corpus.mini_mias.info_file': 'mias' holds no truth file 'Info.txt'"
    ]
    (tmp_path / "mias" / "Info.txt").write_text("mdb001 G CIRC B 535 425 197\n")
    assert problems_of(config, base=tmp_path) == []
    [problem] = problems_of({"corpus": {"source": "mini_mias", "path": "manifest.csv"}}, base=tmp_path)
    assert "must be the mini-MIAS folder" in problem


def test_a_csv_source_path_must_be_a_file_and_cbis_needs_its_tables(tmp_path):
    (tmp_path / "folder").mkdir()
    assert problems_of({"corpus": {"source": "csv", "path": "folder"}}, base=tmp_path) == [
        "config key 'corpus.path': 'folder' must be the CSV manifest file (docs/manifest.md), not a folder"
    ]
    [problem] = problems_of({"corpus": {"source": "cbis_ddsm", "path": "folder"}}, base=tmp_path)
    assert problem.startswith("config keys 'corpus.path' and 'corpus.cbis_ddsm.subsets': 'folder' holds no")
    (tmp_path / "folder" / "calc_case_description_train_set.csv").write_text("patient_id\n")
    assert problems_of({"corpus": {"source": "cbis_ddsm", "path": "folder"}}, base=tmp_path) == []


def test_every_contradiction_is_listed_in_one_error():
    config = {
        "segment": {"sigma_min_mm": 0.3, "sigma_max_mm": 0.2},
        "model": {"grid": "huge"},
        "partition": {"fractions": {"eval": 0.5}},
        "qc": {"min_breast_fraction": 0.9, "max_breast_fraction": 0.1},
    }
    problems = problems_of(config)
    assert len(problems) == 4
    assert {p.split("'")[1] for p in problems} == {
        "segment.sigma_min_mm",
        "model.grid",
        "partition.fractions.train",
        "qc.min_breast_fraction",
    }


@pytest.mark.parametrize("outer, inner", [(1, 5), (4, 1)])
def test_fewer_than_two_folds_is_refused_by_the_schema(outer, inner):
    problems = problems_of({"partition": {"outer_folds": outer}, "model": {"inner_folds": inner}})
    assert problems == [
        f"config key '{key}': 1 is less than the minimum of 2"
        for key in (["model.inner_folds"] if inner == 1 else []) + (["partition.outer_folds"] if outer == 1 else [])
    ]
