"""The HTML report: sections from the metric files, captions from the config, absent inputs explained,
the same inputs giving the same bytes outside the one volatile block."""

import copy
import re
import subprocess

import pandas as pd
import pytest
from report_inputs import complete_inputs, metadata_only_inputs

from calcsig.config import load_config
from calcsig.paths import RESOURCE_DIR
from calcsig.report import (
    INPUTS,
    VOLATILE_END,
    VOLATILE_START,
    ReportInputError,
    RunInfo,
    build_report,
    strip_volatile,
)
from calcsig.report.provenance import files_by_rule, git_commit, log_warnings, parse_rule_graph, run_date

SECTIONS = ["summary", "cohort", "segmentation", "features", "models", "provenance"]
MAIN_FIGURES = [
    "fig-froc",
    "fig-cluster-froc",
    "fig-gallery",
    "fig-gallery-worst",
    "fig-bag_of_objects-roi-roc",
    "fig-bag_of_objects-roi-pr",
    "fig-bag_of_objects-roi-calibration",
    "fig-bag_of_objects-roi-decision",
    "fig-bag_of_objects-roi-thresholds",
]


@pytest.fixture(scope="module")
def config():
    resolved = load_config({})
    resolved["segment"]["selector_random_state"] = resolved["seed"]
    resolved["model"]["seed"] = resolved["seed"]
    return resolved


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return complete_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def page(inputs, config, tmp_path_factory):
    """The page of the complete inputs, rendered once for the tests that only read it."""
    return build_report(inputs, tmp_path_factory.mktemp("page") / "index.html", config).read_text()


def render(paths, config, tmp_path, name="index.html", **kwargs) -> str:
    return build_report(paths, tmp_path / name, config, **kwargs).read_text()


def visible_text(page: str) -> str:
    """The page without inline SVG, style and tags: what a reader reads as text."""
    page = re.sub(r"<svg.*?</svg>|<style>.*?</style>|<img[^>]*>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


def test_every_section_and_figure_is_on_the_page_when_every_input_is_there(page):
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
        assert f'href="#{anchor}"' in page  # listed in the table of contents
    for figure in MAIN_FIGURES:
        assert f'<figure id="{figure}">' in page, figure
    assert "not available because" not in visible_text(page).split("Rule graph")[0]


def test_the_first_section_carries_the_main_models_cv_and_eval_auc_with_intervals(page, inputs):
    summary = page.split('<section id="cohort">')[0]
    models = pd.read_json(inputs["models"], typ="series")["models"]["bag_of_objects"]["roi"]
    for set_name in ("cv", "eval"):
        auc = models[set_name]["metrics"]["roc_auc"]
        interval = f"95% CI {auc['ci_low']:.2f}\u2013{auc['ci_high']:.2f}"
        expected = f'{auc["value"]:.2f} <span class="card-interval">{interval}</span>'
        assert f"ROC AUC, {set_name.upper() if set_name == 'cv' else set_name}" in summary
        assert expected in summary


def test_no_raw_arrays_reach_the_page(page):
    text = visible_text(page)
    runs_of_numbers = re.findall(r"(?:-?\d+\.\d+\s*,\s*){8,}", text)
    assert runs_of_numbers == []
    assert "tpr_ci_low" not in text and "operating_point_fp_per_cm2" not in text


def test_captions_quote_the_configured_values_not_fixed_ones(inputs, config, tmp_path):
    changed = copy.deepcopy(config)
    changed["segment"]["match_distance_mm"] = 0.5
    changed["segment"]["fp_per_cm2"] = 1.0
    changed["segment"]["gallery_size"] = 4
    changed["segment"]["gallery_crop_mm"] = 8.0
    changed["model"]["ci_level"] = 0.9
    document = pd.read_json(inputs["models"], typ="series").to_dict()
    document["settings"]["ci_level"] = 0.9  # the evaluation writes the level it used
    moved = dict(inputs)
    moved["models"] = tmp_path / "models.json"
    moved["models"].write_text(pd.Series(document).to_json())
    text = visible_text(render(moved, changed, tmp_path))
    assert "within 0.5 mm" in text and "within 0.35 mm" not in text
    assert "1 FP/cm\u00b2 (segment.fp_per_cm2)" in text
    assert "90% confidence intervals" in text and "95%" not in text
    assert "up to 4 crops of 8 mm (segment.gallery_size, segment.gallery_crop_mm)" in text


def test_the_same_inputs_give_the_same_bytes_and_only_the_volatile_block_holds_the_date(
    inputs, config, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = render(inputs, config, tmp_path, "a.html")
    second = render(inputs, config, tmp_path, "b.html")
    assert first == second
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    later = render(inputs, config, tmp_path, "c.html")
    assert later != first
    assert strip_volatile(later) == strip_volatile(first)
    assert first.count(VOLATILE_START) == 1 and first.count(VOLATILE_END) == 1
    assert "2023-11-14 22:13 UTC" in first.split(VOLATILE_START)[1].split(VOLATILE_END)[0]


def test_the_run_date_comes_from_source_date_epoch_when_set():
    assert run_date({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01 00:00 UTC"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", run_date({}))


def test_svg_ids_are_unique_across_the_whole_page(page):
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for reference in set(re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page)):
        target = reference[0] or reference[1]
        assert target in ids, target


def test_a_metadata_only_corpus_renders_every_section_saying_why_parts_are_missing(config, tmp_path):
    paths = metadata_only_inputs(tmp_path / "meta")
    html = render(paths, config, tmp_path)
    text = visible_text(html)
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
    assert "Segmentation: not available because the corpus has no images with pixels" in text
    assert "Features: not available because the corpus has no images with pixels" in text
    assert "Models: not available because the corpus has no images with pixels" in text
    assert "Cohort flow: not available because" in text


def test_the_worst_case_gallery_says_what_its_two_kinds_of_panel_show(page, inputs, config, tmp_path):
    figure = page.split('<figure id="fig-gallery-worst">')[1].split("</figure>")[0]
    text = visible_text(figure)
    assert "Missed truth: a calcification that no kept detection overlaps" in text
    assert "Densest false positives: kept detections outside any truth" in text
    assert "each title giving the number missed" in text and "each title giving that density" in text
    assert f"up to {config['segment']['gallery_size']} crops" in text
    without = visible_text(render(dict(inputs, gallery_worst=None), config, tmp_path))
    assert (
        "Worst-case gallery (missed truth, densest false positives): not available because this run has no "
        "results/segment/gallery_worst.png" in without
    )


def test_an_input_left_out_without_a_reason_names_the_file_it_would_come_from(inputs, config, tmp_path):
    paths = dict(inputs, segmentation=None, gallery=None)
    text = visible_text(render(paths, config, tmp_path))
    assert "Segmentation: not available because this run has no results/metrics/segmentation.json" in text
    paths = dict(inputs, models=None)
    reasons = {"models": "the model stage is switched off"}
    assert "Models: not available because the model stage is switched off" in visible_text(
        render(paths, config, tmp_path, "b.html", reasons=reasons)
    )


def test_the_cohort_flow_shows_each_exclusion_reason_with_its_count_and_the_excluded_ids(page):
    cohort = page.split('<section id="cohort">')[1].split("</section>")[0]
    assert "no location (box, circle or mask): 2" in cohort
    assert "not a calcification finding: 1" in cohort
    assert "X1, X2" in cohort and "X3" in cohort


def test_balance_above_the_threshold_is_marked_and_the_full_table_is_folded(page, inputs, config, tmp_path):
    balance = page.split('id="cohort-balance"')[1].split('id="cohort-audit"')[0]
    assert re.search(r'<td class="over"[^>]*>0\.310', balance)
    assert not re.search(r'<td class="over"[^>]*>0\.080', balance)
    strict = copy.deepcopy(config)
    strict["report"]["smd_threshold"] = 0.04
    stricter = render(inputs, strict, tmp_path, "strict.html").split('id="cohort-balance"')[1]
    assert re.search(r'<td class="over"[^>]*>0\.080', stricter)
    assert "<details><summary>Full balance table" in balance


def test_audit_findings_are_an_alert_in_the_summary_and_list_their_exact_ids(config, tmp_path):
    paths = complete_inputs(tmp_path / "leaky", findings=True)
    page = render(paths, config, tmp_path)
    summary = page.split('<section id="cohort">')[0]
    assert 'class="note alert"' in summary and "1 subject overlap finding(s), 1 of them a leak" in summary
    audit = page.split('id="cohort-audit"')[1].split("</section>")[0]
    assert '<td class="leak">LEAK</td>' in audit
    assert "S01_CC" in audit and "S04_CC" in audit and "S03" in audit


def test_clustered_comparisons_are_the_quoted_ones_and_the_independent_tests_say_what_they_assume(page):
    comparisons = page.split('id="models-comparisons"')[1]
    assert '<td class="quoted">0.12<span class="sub">0.02\u20130.22</span></td>' in comparisons
    assert "adj. 0.080" in comparisons and "holm" in comparisons
    assert "assume independent cases" in comparisons
    assert '<td class="independent">0.010</td>' in comparisons


def test_each_operating_point_gets_its_rule_and_confusion_matrix(page):
    thresholds = page.split('id="models-thresholds"')[1].split('id="models-comparisons"')[0]
    assert "highest threshold with inner-fold sensitivity &gt;= 0.95" in thresholds
    for caption in ("CV, target", "CV, margin", "eval, target", "eval, margin"):
        assert f'<p class="table-caption">{caption}</p>' in thresholds


def test_recorded_feature_importances_are_listed_with_their_meaning(inputs, config, tmp_path):
    from calcsig.features.gather import write_feature_catalogue

    shipped = RESOURCE_DIR
    catalogue = tmp_path / "catalogue.tsv"
    write_feature_catalogue(shipped / "radiomics_foreground.yaml", shipped / "radiomics_background.yaml", 8, catalogue)
    page = render(dict(inputs, catalogue=catalogue), config, tmp_path)
    table = page.split('id="features-importance"')[1].split("</table>")[0]
    assert table.index("rp_area_mm2") < table.index("mean__dist_linearity") < table.index("cluster_7")
    assert "pixel count x spacing^2" in table  # rp_area_mm2's catalogue entry
    assert "(dist_linearity, aggregated)" in table


def test_without_recorded_importances_the_report_says_what_the_model_stage_must_record(inputs, config, tmp_path):
    search = tmp_path / "search.json"
    search.write_text('{"model": "bag_of_objects"}')
    text = visible_text(render(dict(inputs, importance=search), config, tmp_path))
    assert "Top features by importance: not available because the model stage records no feature_importance" in text


def test_an_unknown_input_name_is_refused_naming_it(inputs, config, tmp_path):
    with pytest.raises(ReportInputError, match="unknown name\\(s\\) \\['segmentaton'\\]"):
        build_report(dict(inputs, segmentaton=inputs["segmentation"]), tmp_path / "x.html", config)
    assert not (tmp_path / "x.html").exists()


def test_an_unreadable_metric_file_is_named_and_nothing_is_written(inputs, config, tmp_path):
    broken = tmp_path / "models.json"
    broken.write_text('{"models": ')
    with pytest.raises(ReportInputError, match=re.escape(str(broken))):
        build_report(dict(inputs, models=broken), tmp_path / "out.html", config)
    assert not (tmp_path / "out.html").exists()


def test_the_page_loads_nothing_from_elsewhere(page):
    assert not re.search(r'(src|href)="(?!#|data:)', page)
    assert "@import" not in page and "url(http" not in page


def test_every_known_input_is_documented_with_the_file_it_comes_from():
    assert all(description for description in INPUTS.values())


# --- provenance helpers ------------------------------------------------------------------------------------------


def test_the_rule_graph_is_read_from_snakemakes_dot_output():
    dot = """digraph snakemake_dag {
        0[label = "report", color = "0.1 0.6 0.85", style="rounded"];
        1[label = "corpus", color = "0.2 0.6 0.85", style="rounded"];
        2[label = "partition", color = "0.3 0.6 0.85", style="rounded"];
        1 -> 0
        1 -> 2
        2 -> 0
    }"""
    assert parse_rule_graph(dot) == (
        ["corpus", "partition", "report"],
        [("corpus", "partition"), ("corpus", "report"), ("partition", "report")],
    )


def test_benchmark_files_go_to_the_rule_whose_exact_pattern_names_them_before_any_wildcard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b/segment/0000.tsv", "b/segment/0001.tsv", "b/segment/train_selector.tsv", "b/corpus.tsv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("s\tmax_rss\n1.0\t10\n")
    patterns = {
        "segment": ["b/segment/{batch}.tsv"],
        "train_selector": ["b/segment/train_selector.tsv"],
        "corpus": ["b/corpus.tsv"],
    }
    assert files_by_rule(patterns) == {
        "corpus": ["b/corpus.tsv"],
        "segment": ["b/segment/0000.tsv", "b/segment/0001.tsv"],
        "train_selector": ["b/segment/train_selector.tsv"],
    }


def test_log_warnings_lose_their_timestamp_and_are_counted_per_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/0.log").write_text(
        "2026-01-01 10:00:00,001 WARNING radiomics: Fixed bin Count enabled\n"
        "2026-01-01 10:00:00,002 INFO calcsig: done\n"
    )
    (tmp_path / "logs/1.log").write_text("2026-01-02 11:00:00,999 WARNING radiomics: Fixed bin Count enabled\n")
    table = log_warnings({"features": ["logs/{batch}.log"]})
    assert table.to_dict("records") == [
        {"rule": "features", "message": "radiomics: Fixed bin Count enabled", "occurrences": 2, "logs": 2}
    ]


def test_the_git_commit_is_the_checkout_head_or_unknown_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    assert git_commit(None) == "unknown"
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    (tmp_path / "repo/a.txt").write_text("a")
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path / "repo") == head
    (tmp_path / "repo/a.txt").write_text("b")
    assert git_commit(tmp_path / "repo") == head + " + uncommitted changes"


def test_the_provenance_section_shows_the_rule_graph_timings_and_warnings_it_is_given(
    inputs, config, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench/corpus.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n2.5\t0:00:02\t120.0\t2.0\n")
    (tmp_path / "corpus.log").write_text("2026-01-01 10:00:00,001 WARNING calcsig.ingest: 3 rows without a label\n")
    run = RunInfo(
        workflow_dir=str(tmp_path),
        rule_graph=(["corpus", "report"], [("corpus", "report")]),
        benchmark_patterns={"corpus": "bench/corpus.tsv"},
        log_patterns={"corpus": ["corpus.log"]},
    )
    page = render(inputs, config, tmp_path, run=run)
    provenance = page.split('<section id="provenance">')[1]
    assert '<figure id="fig-rulegraph">' in provenance
    assert "calcsig.ingest: 3 rows without a label" in provenance
    volatile = provenance.split(VOLATILE_START)[1].split(VOLATILE_END)[0]
    assert "<td>corpus</td><td>1</td><td>2.5</td>" in volatile.replace("\n", "")
    assert "config digest" in provenance and "seed: 20261122" in provenance
