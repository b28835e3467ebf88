"""Audit on a small hand-made corpus: it finds exactly what was planted, and the policy acts on leaks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_audit_hashing import mammogram_like

from calcsig.partition.audit import AuditError, audit_corpus, audit_table, enforce_policy
from calcsig.partition.stage import run_audit, write_assignment
from calcsig.tables import validate_corpus, write_tables

SETTINGS = {"declared_enrichment": ["enrichment"], "hamming": 36, "hash_size": 16}


def build(tmp_path, *, plant: bool = True) -> dict:
    """Six subjects with one or two PNG images each (S1..S4 train or dev, S5, S6 eval), plus, when
    `plant` is set: an exact re-encoded copy of S1's image under subject S7 (eval), a shifted noisy
    copy of S2's image under S8 (eval), an enrichment image of S5 forced into train (declared), a
    second image of S4 put in eval (undeclared overlap), two metadata-only films of S9 with the same
    breast and view, and two ROIs with the same box and different labels on S3's image."""
    rng = np.random.default_rng(0)
    images, rois, split_of = [], [], {}
    seeds = iter(range(100, 200))

    def add(image_id, subject, split, pixels=None, subset="main", view="CC", laterality="L"):
        path = None
        if pixels is not None:
            path = tmp_path / f"{image_id}.png"
            Image.fromarray(pixels).save(path, compress_level=1 + len(images) % 8)
        images.append(
            {
                "image_id": image_id,
                "subject_id": subject,
                "path": str(path) if path else None,
                "has_pixels": pixels is not None,
                "laterality": laterality,
                "view": view,
                "source": "handmade",
                "subset": subset,
            }
        )
        split_of[image_id] = split
        return pixels

    main = {}
    for subject, split in (
        ("S1", "train"),
        ("S2", "train"),
        ("S3", "dev"),
        ("S4", "train"),
        ("S5", "eval"),
        ("S6", "eval"),
    ):
        main[subject] = add(f"{subject}_CC", subject, split, mammogram_like(next(seeds)))
        add(f"{subject}_MLO", subject, split, mammogram_like(next(seeds)), view="MLO")
        rois.append(
            {
                "roi_id": f"{subject}_CC_1",
                "image_id": f"{subject}_CC",
                "shape": "bbox",
                "x_min": 10,
                "y_min": 10,
                "x_max": 40,
                "y_max": 40,
                "label": "benign",
                "source": "handmade",
            }
        )
    subject_split = {f"S{k}": s for k, s in zip(range(1, 7), ("train", "train", "dev", "train", "eval", "eval"))}
    if plant:
        add("S7_CC", "S7", "eval", main["S1"].copy())
        rois.append(
            {
                "roi_id": "S7_CC_1",
                "image_id": "S7_CC",
                "shape": "bbox",
                "x_min": 10,
                "y_min": 10,
                "x_max": 40,
                "y_max": 40,
                "label": "benign",
                "source": "handmade",
            }
        )
        shifted = np.zeros_like(main["S2"])
        shifted[3:, :] = main["S2"][:-3, :]
        noisy = np.clip(shifted.astype(float) * 1.03 + rng.normal(0, 30, shifted.shape), 0, 65535).astype(np.uint16)
        add("S8_CC", "S8", "eval", noisy)
        add("S5_ENR", "S5", "train", mammogram_like(next(seeds)), subset="enrichment")
        add("S4_CC2", "S4", "eval", mammogram_like(next(seeds)), view="CC", laterality="R")
        add("S9_a", "S9", "train", None, view="MLO", laterality="R")
        add("S9_b", "S9", "train", None, view="MLO", laterality="R")
        rois.append(
            {
                "roi_id": "S3_CC_2",
                "image_id": "S3_CC",
                "shape": "bbox",
                "x_min": 10,
                "y_min": 10,
                "x_max": 40,
                "y_max": 40,
                "label": "actionable",
                "source": "handmade",
            }
        )
        subject_split.update(S7="eval", S8="eval", S9="train")
    subjects = pd.DataFrame({"subject_id": sorted(subject_split), "cohort": "handmade", "n_images": 1})
    tables = validate_corpus(pd.DataFrame(images), pd.DataFrame(rois), subjects, "handmade")
    folds = {s: 1 + k % 2 for k, s in enumerate(sorted(subject_split))}
    rows = [
        {
            "level": "subject",
            "subject_id": s,
            "image_id": None,
            "roi_id": None,
            "split": sp,
            "outer_fold": folds[s] if sp != "eval" else None,
        }
        for s, sp in subject_split.items()
    ]
    subject_of = {i["image_id"]: i["subject_id"] for i in images}
    for image_id, sp in split_of.items():
        rows.append(
            {
                "level": "image",
                "subject_id": subject_of[image_id],
                "image_id": image_id,
                "roi_id": None,
                "split": sp,
                "outer_fold": folds[subject_of[image_id]] if sp != "eval" else None,
            }
        )
    assignment = pd.DataFrame(rows)
    assignment["outer_fold"] = assignment["outer_fold"].astype("Int64")
    return {**tables, "assignment": assignment}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    corpus = build(tmp_path_factory.mktemp("planted"))
    return corpus, audit_corpus(corpus["images"], corpus["rois"], corpus["assignment"], **SETTINGS)


def test_finds_exactly_the_planted_overlap(planted):
    _, report = planted
    overlap = {e["subject_id"]: e for e in report["subject_overlap"]}
    assert set(overlap) == {"S4", "S5"}
    assert overlap["S5"]["declared"] is True and overlap["S5"]["splits"] == ["eval", "train"]
    assert overlap["S4"]["declared"] is False
    assert [i["image_id"] for i in overlap["S4"]["cross_split_images"]] == ["S4_CC2"]
    assert report["fold_overlap"] == []


def test_finds_exactly_the_planted_duplicates(planted):
    _, report = planted
    assert [(e["image_ids"], e["splits"], e["leak"]) for e in report["exact_duplicates"]] == [
        (["S1_CC", "S7_CC"], ["train", "eval"], True)
    ]
    perceptual = [e for e in report["near_duplicates"] if e["method"] == "perceptual"]
    assert [e["image_ids"] for e in perceptual] == [["S2_CC", "S8_CC"]]
    assert perceptual[0]["leak"] and perceptual[0]["distance"] <= 36
    metadata = [e for e in report["near_duplicates"] if e["method"] == "metadata"]
    assert [(e["image_ids"], e["key"], e["leak"]) for e in metadata] == [(["S9_a", "S9_b"], "S9|R|MLO", False)]


def test_finds_the_label_conflict_only(planted):
    _, report = planted
    assert len(report["label_conflicts"]) == 1
    conflict = report["label_conflicts"][0]
    assert conflict["kind"] == "roi" and conflict["roi_ids"] == ["S3_CC_1", "S3_CC_2"]


def test_violations_list_every_leak_and_the_label_conflict_and_nothing_else(planted):
    _, report = planted
    assert len(report["violations"]) == 4
    text = "\n".join(report["violations"])
    assert "S4" in text and "S1_CC" in text and "S8_CC" in text and "S5" not in text
    conflict = next(v for v in report["violations"] if v.startswith("label conflict"))
    # names both ROIs, their image and both labels
    assert "S3_CC_1 benign" in conflict and "S3_CC_2 actionable" in conflict and "S3_CC" in conflict


def test_clean_corpus_has_no_findings(tmp_path):
    corpus = build(tmp_path, plant=False)
    report = audit_corpus(corpus["images"], corpus["rois"], corpus["assignment"], **SETTINGS)
    for key in (
        "subject_overlap",
        "fold_overlap",
        "exact_duplicates",
        "near_duplicates",
        "label_conflicts",
        "violations",
        "unreadable_images",
    ):
        assert report[key] == [], key


def test_metadata_key_without_any_pixels(planted):
    corpus, _ = planted
    images = corpus["images"].assign(has_pixels=False, path=None)
    report = audit_corpus(images, corpus["rois"], corpus["assignment"], **SETTINGS)
    assert report["exact_duplicates"] == []
    pairs = {tuple(e["image_ids"]) for e in report["near_duplicates"]}
    assert all(e["method"] == "metadata" for e in report["near_duplicates"])
    # same subject, breast and view: S9's two films and S5's enrichment film (declared, so no leak);
    # S4's second CC is the other breast
    assert pairs == {("S9_a", "S9_b"), ("S5_CC", "S5_ENR")}
    enrichment = next(e for e in report["near_duplicates"] if e["image_ids"] == ["S5_CC", "S5_ENR"])
    assert enrichment["declared"] and not enrichment["leak"]
    assert len(report["violations"]) == 2 and "S4" in report["violations"][0]
    assert report["violations"][1].startswith("label conflict")


def test_fold_overlap_is_a_violation(planted):
    corpus, _ = planted
    assignment = corpus["assignment"].copy()
    row = assignment.index[(assignment["image_id"] == "S1_CC")][0]
    assignment.loc[row, "outer_fold"] = 2 if assignment.loc[row, "outer_fold"] == 1 else 1
    report = audit_corpus(corpus["images"], corpus["rois"], assignment, **SETTINGS)
    assert [e["subject_id"] for e in report["fold_overlap"]] == ["S1"]
    assert any("outer folds" in v for v in report["violations"])


def _files(tmp_path, corpus):
    paths = {kind: tmp_path / f"{kind}.tsv" for kind in ("images", "rois", "subjects")}
    write_tables({k: corpus[k] for k in paths}, paths)
    write_assignment(corpus["assignment"], tmp_path / "assignment.tsv")
    return paths


def test_policy_fail_writes_report_then_stops(tmp_path):
    corpus = build(tmp_path)
    paths = _files(tmp_path, corpus)
    out_json, out_table = tmp_path / "splits" / "audit.json", tmp_path / "splits" / "audit.tsv"
    with pytest.raises(AuditError) as error:
        run_audit(paths["images"], paths["rois"], tmp_path / "assignment.tsv", {}, out_json, out_table)
    assert len(error.value.violations) == 4
    assert "S4" in str(error.value) and "audit.json" in str(error.value)
    document = json.loads(out_json.read_text())
    assert {"subject_overlap", "exact_duplicates", "near_duplicates", "label_conflicts"} <= set(document)
    assert out_table.exists()


def test_policy_warn_continues_and_flags_leaks(tmp_path):
    corpus = build(tmp_path)
    paths = _files(tmp_path, corpus)
    out_json, out_table = tmp_path / "audit.json", tmp_path / "audit.tsv"
    report = run_audit(
        paths["images"], paths["rois"], tmp_path / "assignment.tsv", {"audit_policy": "warn"}, out_json, out_table
    )
    assert report["policy"] == "warn" and len(report["violations"]) == 4
    table = pd.read_csv(out_table, sep="\t", dtype=str, keep_default_na=False)
    # count rows: six checks, then the split and outer-fold levels (no inner folds without the model settings)
    counts = table.iloc[:8].set_index("check")
    assert list(counts.index[6:]) == ["level:split", "level:outer_fold"]
    findings = table.iloc[8:]
    assert (findings["status"].iloc[:4].isin(["LEAK", "CONFLICT"])).all()
    assert set(findings.loc[findings["status"] == "LEAK", "items"]) == {"S4", "S1_CC,S7_CC", "S2_CC,S8_CC"}
    assert set(findings.loc[findings["status"] == "CONFLICT", "items"]) == {"S3_CC_1,S3_CC_2"}
    assert counts.loc["subject_overlap", "status"] == "LEAK" and counts.loc["label_conflicts", "items"] == "1"
    assert counts.loc["label_conflicts", "status"] == "CONFLICT"


def test_table_of_a_clean_report_has_counts_only(tmp_path):
    corpus = build(tmp_path, plant=False)
    report = audit_corpus(corpus["images"], corpus["rois"], corpus["assignment"], **SETTINGS, policy="warn")
    table = audit_table(report)
    assert len(table) == 8 and set(table["status"]) == {"count"} and set(table["items"]) == {"0"}


def test_external_is_held_out_like_eval():
    """A copy between train and the external cohort is a leak; eval vs external is only reported."""
    images = pd.DataFrame(
        [
            {
                "image_id": i,
                "subject_id": s,
                "has_pixels": True,
                "laterality": "L",
                "view": "CC",
                "source": "handmade",
                "subset": "main",
            }
            for i, s in (("A", "S1"), ("B", "S2"), ("C", "S3"), ("D", "S4"), ("E", "S5"))
        ]
    )
    rois = pd.DataFrame(columns=["roi_id", "image_id", "shape", "label", "source"])
    split = {"S1": "train", "S2": "external", "S3": "eval", "S4": "external", "S5": "dev"}
    assignment = pd.DataFrame(
        [
            {
                "level": "image",
                "subject_id": s,
                "image_id": i,
                "roi_id": None,
                "split": split[s],
                "outer_fold": 1 if split[s] in ("train", "dev") else None,
            }
            for i, s in zip("ABCDE", ("S1", "S2", "S3", "S4", "S5"))
        ]
    )
    assignment["outer_fold"] = assignment["outer_fold"].astype("Int64")
    # A (train) = B (external); C (eval) = D (external); E (dev) has no copy
    hashes = pd.DataFrame(
        {"pixel_hash": ["h1", "h1", "h2", "h2", "h3"], "phash": None}, index=pd.Index(list("ABCDE"), name="image_id")
    )
    report = audit_corpus(images, rois, assignment, hashes=hashes, **SETTINGS)
    pairs = {tuple(e["image_ids"]): e for e in report["exact_duplicates"]}
    assert pairs[("A", "B")]["leak"] and pairs[("A", "B")]["splits"] == ["train", "external"]
    assert not pairs[("C", "D")]["leak"] and pairs[("C", "D")]["across_splits"]
    assert report["summary"]["exact_duplicate_pairs_leaking"] == 1
    assert report["violations"] == ["exact duplicate images A (train) and B (external) straddle level split"]
    with pytest.raises(AuditError, match="B \\(external\\)"):
        enforce_policy(report)
