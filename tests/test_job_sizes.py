"""Cluster job sizes: measured per-rule costs scaled by each job's work (calcsig.jobsize)."""

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from calcsig.jobsize import (
    MIN_MEMORY_MB,
    MIN_RUNTIME_MIN,
    RuleCost,
    image_work,
    memory_mb,
    runtime_minutes,
    work_megapixels,
)

REPO = Path(__file__).resolve().parents[1]
# a per-item rule measured on a batch of 16 images of 1 megapixel: 10 minutes, 600 MB
SEGMENT = RuleCost(seconds=600.0, megapixels=16.0, peak_mb=600.0, largest_megapixels=1.0)
# a rule that sees the whole corpus, measured on 200 megapixels
SELECTOR = RuleCost(seconds=300.0, megapixels=200.0, peak_mb=1000.0)


def test_a_job_with_twice_the_measured_work_asks_for_twice_the_time():
    assert runtime_minutes(SEGMENT, 32.0) == 2 * runtime_minutes(SEGMENT, 16.0) == 60


def test_a_job_with_less_work_than_measured_asks_for_the_measured_time_or_the_minimum():
    assert runtime_minutes(SEGMENT, 1.0) == runtime_minutes(SEGMENT, 16.0) == 30
    assert runtime_minutes(RuleCost(seconds=2.0, megapixels=5.0, peak_mb=150.0), 5.0) == MIN_RUNTIME_MIN


def test_a_per_item_job_asks_for_memory_by_its_largest_image_not_its_batch_size():
    one_film, many_films = memory_mb(SEGMENT, 1.0, 1.0), memory_mb(SEGMENT, 64.0, 1.0)
    assert one_film == many_films == 1200
    assert memory_mb(SEGMENT, 8.5, 8.5) == 10200  # one full-field film of 8.5 megapixels


def test_a_corpus_wide_job_asks_for_memory_by_the_corpus_work():
    assert memory_mb(SELECTOR, 200.0) == 2000
    assert memory_mb(SELECTOR, 2000.0) == 20000
    assert memory_mb(RuleCost(seconds=1.0, megapixels=5.0, peak_mb=120.0), 1.0) == MIN_MEMORY_MB


def test_a_retried_job_asks_for_twice_the_time_and_memory():
    assert runtime_minutes(SEGMENT, 32.0, attempt=2) == 2 * runtime_minutes(SEGMENT, 32.0)
    assert memory_mb(SELECTOR, 2000.0, attempt=2) == 2 * memory_mb(SELECTOR, 2000.0)


def test_coarse_films_count_the_pixels_of_the_grid_detection_runs_on():
    # a 0.2 mm mini-MIAS film is detected upsampled twice in each direction to reach 0.1 mm
    assert work_megapixels(1024, 1024, 0.2, 0.1) == pytest.approx(4 * 1024 * 1024 / 1e6)
    assert work_megapixels(1024, 1024, 0.07, 0.1) == pytest.approx(1024 * 1024 / 1e6)
    assert work_megapixels(1024, 1024, 0.2, None) == pytest.approx(1024 * 1024 / 1e6)


def test_image_work_counts_only_images_with_pixels():
    images = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "has_pixels": ["True", "True", "False"],
            "height": ["1000", "2000", ""],
            "width": ["1000", "1000", ""],
            "pixel_spacing_mm": ["0.1", "0.2", ""],
        }
    )
    work = image_work(images, 0.1)
    assert work.to_dict() == pytest.approx({"a": 1.0, "b": 8.0})


# the rules that see the whole corpus in one job and spread its images over the job's threads
WHOLE_CORPUS_RULES = {
    "corpus",
    "partition",
    "train_selector",
    "evaluate_segmentation",
    "lesion_insertion",
    "gather_features",
}
# those of them that nothing else can run beside: they take every core given
ALONE_IN_THE_DAG = {"corpus", "train_selector", "gather_features"}


def test_the_slurm_profile_gives_the_other_whole_corpus_rules_a_nodes_cores():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["max-threads"] == "?NODE_CORES"
    assert profile["set-threads"] == {rule: "?NODE_CORES" for rule in WHOLE_CORPUS_RULES - ALONE_IN_THE_DAG}


def declared_rules() -> set[str]:
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.M))


def test_every_rule_has_a_measured_cost_and_asks_for_its_job_size():
    measured = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())["rules"]
    assert declared_rules() == set(measured)
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for rule in declared_rules():
        block = re.search(rf"^(?:rule|checkpoint) {rule}:\n(.*?)(?=^\S|\Z)", text, flags=re.M | re.S).group(1)
        threads = re.search(r"^    threads: (\S+)\n", block, flags=re.M).group(1)
        script = re.search(r'script:\n\s*"\.\./scripts/([\w.]+)"', block).group(1)
        # a rule with several threads gives them to its script's worker processes; the others use one
        uses_workers = "workers=snakemake.threads" in (REPO / "workflow" / "scripts" / script).read_text()
        expected = "WHOLE_CORPUS_THREADS" if rule in ALONE_IN_THE_DAG else "2" if rule == "report" else "1"
        assert threads == expected, rule  # the report draws its page while snakemake --rulegraph runs
        assert uses_workers == (rule in WHOLE_CORPUS_RULES), rule
        assert f'**job_resources("{rule}")' in block, rule
