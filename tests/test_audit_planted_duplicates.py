"""The synthetic corpus with planted copies: grouped, no copy straddles any level; ungrouped, the audit says where."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from calcsig.ingest.synthetic import ingest_synthetic
from calcsig.partition.audit import AuditError
from calcsig.partition.folds import inner_folds
from calcsig.partition.stage import read_assignment, run_audit, run_partition
from calcsig.tables import validate_corpus, write_tables

SYNTHETIC = {
    "n_subjects": 24,
    "image_height_mm": 40.0,
    "image_width_mm": 32.0,
    "duplicates": {"enabled": True, "n_exact": 4, "n_near": 4},
}
PARTITION = {"outer_folds": 3, "n_restarts": 2, "max_iterations": 300, "patience": 100, "audit_policy": "warn"}
INNER_FOLDS, MODEL_SEED = 3, 7


def run(root, corpus_files, group: bool) -> dict:
    out = root / ("grouped" if group else "ungrouped")
    params = {**PARTITION, "group_duplicates": group}
    run_partition(
        corpus_files["images"],
        corpus_files["rois"],
        corpus_files["subjects"],
        params,
        11,
        out / "assignment.tsv",
        out / "balance.tsv",
        out / "balance.json",
        out_hashes=out / "image_hashes.tsv",
    )
    report = run_audit(
        corpus_files["images"],
        corpus_files["rois"],
        out / "assignment.tsv",
        params,
        out / "audit.json",
        out / "audit.tsv",
        hashes_tsv=out / "image_hashes.tsv",
        inner_folds=INNER_FOLDS,
        seed=MODEL_SEED,
    )
    return {"out": out, "report": report, "assignment": read_assignment(out / "assignment.tsv"), "params": params}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    tables = ingest_synthetic(None, {**SYNTHETIC, "seed": 3}, root / "corpus")
    typed = validate_corpus(tables["images"], tables["rois"], tables["subjects"], "synthetic")
    files = {kind: root / f"{kind}.tsv" for kind in ("images", "rois", "subjects")}
    write_tables(typed, files)
    truth = json.loads((root / "corpus" / "synthetic" / "planted.json").read_text())
    pairs = [sorted(p) for p in truth["exact_duplicates"] + truth["near_duplicates"]]
    return {"root": root, "files": files, "tables": typed, "pairs": pairs}


@pytest.fixture(scope="module")
def grouped(planted):
    return run(planted["root"], planted["files"], group=True)


@pytest.fixture(scope="module")
def ungrouped(planted):
    return run(planted["root"], planted["files"], group=False)


def expected_straddles(assignment: pd.DataFrame, rois: pd.DataFrame, a: str, b: str) -> list[str]:
    """The levels whose sides separate images a and b, worked out from the assignment alone."""
    images = assignment[assignment["level"] == "image"].set_index("image_id")
    levels = []
    if images.loc[a, "split"] != images.loc[b, "split"]:
        levels.append("split")
    folds = images.loc[[a, b], "outer_fold"]
    if folds.notna().all() and folds.iloc[0] != folds.iloc[1]:
        levels.append("outer_fold")
    roi_rows = assignment[(assignment["level"] == "roi") & assignment["split"].isin(["train", "dev"])]
    label = rois.set_index("roi_id")["label"]
    for outer in [*sorted(roi_rows["outer_fold"].dropna().astype(int).astype(str).unique()), "eval"]:
        part = roi_rows if outer == "eval" else roi_rows[roi_rows["outer_fold"].astype(str) != outer]
        cases = pd.DataFrame(
            {
                "image_id": part["image_id"].to_numpy(),
                "group_id": part["group_id"].to_numpy(),
                "label": (part["roi_id"].map(label) == "actionable").astype(int).to_numpy(),
            }
        )
        fold_of = dict(zip(cases["image_id"], inner_folds(cases, INNER_FOLDS, MODEL_SEED)))
        if a in fold_of and b in fold_of and fold_of[a] != fold_of[b]:
            levels.append(f"inner_fold:{outer}")
    return levels


def audited_pairs(report: dict) -> dict[tuple, dict]:
    return {tuple(e["image_ids"]): e for e in report["exact_duplicates"] + report["near_duplicates"]}


def test_the_audit_finds_every_planted_copy_and_nothing_else(planted, grouped):
    assert sorted(audited_pairs(grouped["report"])) == sorted(tuple(p) for p in planted["pairs"])


def test_grouped_no_planted_copy_straddles_any_level(planted, grouped):
    report = grouped["report"]
    levels = report["levels"]
    assert list(levels) == ["split", "outer_fold", "inner_fold:1", "inner_fold:2", "inner_fold:3", "inner_fold:eval"]
    assert all(section["checked"] for section in levels.values())
    assert report["summary"]["straddles_per_level"] == dict.fromkeys(levels, 0)
    assert report["violations"] == []
    image_rows = grouped["assignment"].query("level == 'image'").set_index("image_id")
    for a, b in planted["pairs"]:
        assert image_rows.loc[a, "group_id"] == image_rows.loc[b, "group_id"]


def test_ungrouped_the_audit_lists_each_copy_at_exactly_the_levels_where_it_straddles(planted, ungrouped):
    pairs = audited_pairs(ungrouped["report"])
    found_any = False
    for a, b in planted["pairs"]:
        expected = expected_straddles(ungrouped["assignment"], planted["tables"]["rois"], a, b)
        assert pairs[(a, b)]["straddles"] == expected, (a, b)
        for level in expected:
            items = ungrouped["report"]["levels"][level]["straddles"]
            assert any(i["image_ids"] == [a, b] for i in items), (a, b, level)
        found_any |= bool(expected)
    assert found_any  # with grouping off, copies do land on two sides somewhere (the grouped test has teeth)


def test_ungrouped_under_fail_the_run_stops_naming_the_levels(planted, ungrouped):
    out = ungrouped["out"]
    with pytest.raises(AuditError) as error:
        run_audit(
            planted["files"]["images"],
            planted["files"]["rois"],
            out / "assignment.tsv",
            {**ungrouped["params"], "audit_policy": "fail"},
            out / "fail" / "audit.json",
            out / "fail" / "audit.tsv",
            hashes_tsv=out / "image_hashes.tsv",
            inner_folds=INNER_FOLDS,
            seed=MODEL_SEED,
        )
    levels = {v.rsplit("straddle level ", 1)[1] for v in error.value.violations if "straddle level" in v}
    assert levels == {lvl for lvl, n in ungrouped["report"]["summary"]["violations_per_level"].items() if n}


def test_the_hash_table_is_reused_by_the_audit(planted, grouped):
    table = pd.read_csv(grouped["out"] / "image_hashes.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert set(table["image_id"]) == set(planted["tables"]["images"]["image_id"])
    assert (table["pixel_hash"].str.len() == 64).all() and (table["phash"].str.len() == 64).all()
    assert grouped["report"]["summary"]["images_hashed"] == len(table)
    assert np.all(table["problem"] == "")
