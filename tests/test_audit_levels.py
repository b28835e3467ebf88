"""The audit checks every level: a copy on two sides of a split, an outer fold or an inner fold is found there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calcsig.partition.audit import AuditError, audit_corpus, audit_table, enforce_policy
from calcsig.partition.folds import inner_folds
from calcsig.partition.levels import training_cases

SETTINGS = {"declared_enrichment": ["enrichment"], "hamming": 36, "hash_size": 16}
INNER = {"inner_folds": 3, "seed": 5}


def corpus(n: int = 30) -> dict:
    """n subjects with one image and one ROI each (every fourth actionable); the first 21 in train or dev
    over outer folds 1..3, the rest in eval; each subject its own group; every image its own pixels."""
    images = pd.DataFrame(
        {
            "image_id": [f"I{k:02d}" for k in range(n)],
            "subject_id": [f"S{k:02d}" for k in range(n)],
            "has_pixels": True,
            "laterality": "L",
            "view": "CC",
            "source": "handmade",
            "subset": "main",
        }
    )
    rois = pd.DataFrame(
        {
            "roi_id": [f"R{k:02d}" for k in range(n)],
            "image_id": images["image_id"],
            "shape": "image",
            "label": ["actionable" if k % 4 == 0 else "benign" for k in range(n)],
            "source": "handmade",
        }
    )
    rows = []
    for k in range(n):
        split = ("dev" if k % 5 == 0 else "train") if k < 21 else "eval"
        fold = 1 + k % 3 if k < 21 else None
        ids = {"subject_id": f"S{k:02d}", "split": split, "outer_fold": fold, "group_id": f"S{k:02d}"}
        rows.append({"level": "subject", "image_id": None, "roi_id": None, **ids})
        rows.append({"level": "image", "image_id": f"I{k:02d}", "roi_id": None, **ids})
        rows.append({"level": "roi", "image_id": f"I{k:02d}", "roi_id": f"R{k:02d}", **ids})
    assignment = pd.DataFrame(rows)
    assignment["outer_fold"] = assignment["outer_fold"].astype("Int64")
    hashes = pd.DataFrame(
        {"pixel_hash": [f"h{k}" for k in range(n)], "phash": None}, index=pd.Index(images["image_id"], name="image_id")
    )
    return {"images": images, "rois": rois, "assignment": assignment, "hashes": hashes}


def copy_pixels(data: dict, a: str, b: str) -> dict:
    """The same tables with image b's pixels identical to image a's."""
    hashes = data["hashes"].copy()
    hashes.loc[b, "pixel_hash"] = hashes.loc[a, "pixel_hash"]
    return {**data, "hashes": hashes}


def audit(data: dict, **extra) -> dict:
    return audit_corpus(
        data["images"], data["rois"], data["assignment"], hashes=data["hashes"], **SETTINGS, **{**INNER, **extra}
    )


def inner_fold_of(data: dict, outer: str) -> dict[str, int]:
    """image_id -> inner fold inside outer fold `outer`'s training part, computed independently of the audit."""
    cases = training_cases(data["assignment"], data["rois"], outer)
    return dict(zip(cases["image_id"], inner_folds(cases, INNER["inner_folds"], INNER["seed"])))


def test_a_clean_assignment_is_clean_at_every_level():
    report = audit(corpus())
    assert list(report["levels"]) == [
        "split",
        "outer_fold",
        "inner_fold:1",
        "inner_fold:2",
        "inner_fold:3",
        "inner_fold:eval",
    ]
    assert all(s["checked"] and s["straddles"] == [] for s in report["levels"].values())
    assert report["levels"]["inner_fold:2"]["settings"] == {
        "outer_fold": "2",
        "inner_folds": 3,
        "seed": 5,
        "folds_made": 3,
    }
    assert report["violations"] == []


def test_a_copy_in_two_outer_folds_is_an_outer_fold_leak_but_no_split_leak():
    # I01 (train, fold 2) and I05 (dev, fold 3)
    report = audit(copy_pixels(corpus(), "I01", "I05"))
    (straddle,) = report["levels"]["outer_fold"]["straddles"]
    assert straddle == {
        "kind": "exact_duplicate",
        "image_ids": ["I01", "I05"],
        "subject_ids": ["S01", "S05"],
        "sides": ["2", "3"],
        "declared": False,
        "violation": True,
    }
    # train vs dev is reported at the split level, not a leak there
    (split,) = report["levels"]["split"]["straddles"]
    assert split["sides"] == ["train", "dev"] and not split["violation"]
    entry = report["exact_duplicates"][0]
    assert entry["leak"] and "outer_fold" in entry["leak_levels"] and "split" not in entry["leak_levels"]
    assert any("I01 (2) and I05 (3)" in v and "outer_fold" in v for v in report["violations"])


def test_a_copy_in_two_inner_folds_is_found_exactly_where_the_inner_folds_separate_it():
    data = corpus()
    # two train subjects of outer fold 1 that the inner folds of outer fold 2 put apart
    folds = inner_fold_of(data, "2")
    fold_one = [f"I{k:02d}" for k in range(21) if 1 + k % 3 == 1 and k % 5 != 0]
    a = fold_one[0]
    b = next(i for i in fold_one if folds[i] != folds[a])
    planted = copy_pixels(data, a, b)
    report = audit(planted)
    expected = [
        f"inner_fold:{outer}"
        for outer in ("1", "2", "3", "eval")
        if a in (f := inner_fold_of(planted, outer)) and b in f and f[a] != f[b]
    ]
    assert "inner_fold:2" in expected
    entry = report["exact_duplicates"][0]
    assert entry["straddles"] == expected == entry["leak_levels"]
    for level in expected:
        (item,) = report["levels"][level]["straddles"]
        assert item["image_ids"] == sorted([a, b]) and item["violation"]
    assert report["levels"]["outer_fold"]["straddles"] == [] and report["levels"]["split"]["straddles"] == []
    with pytest.raises(AuditError, match="inner_fold:2"):
        enforce_policy(report)
    # the same copy under one group_id: the inner folds keep it together
    grouped = planted["assignment"].copy()
    grouped.loc[grouped["subject_id"] == f"S{b[1:]}", "group_id"] = f"S{a[1:]}"
    clean = audit({**planted, "assignment": grouped})
    assert all(s["straddles"] == [] for s in clean["levels"].values()) and clean["violations"] == []


def test_a_subject_whose_rois_are_in_two_inner_folds_is_reported():
    data = corpus()
    assignment = data["assignment"].copy()
    # S03 gets a second image and ROI under another group_id, as a hand-edited assignment might
    images = pd.concat([data["images"], data["images"].iloc[[3]].assign(image_id="I03b", view="MLO")])
    rois = pd.concat([data["rois"], data["rois"].iloc[[3]].assign(roi_id="R03b", image_id="I03b")])
    extra = assignment[(assignment["subject_id"] == "S03") & (assignment["level"] != "subject")].copy()
    extra["image_id"] = "I03b"
    extra.loc[extra["level"] == "roi", "roi_id"] = "R03b"
    extra["group_id"] = "elsewhere"
    hashes = pd.concat([data["hashes"], pd.DataFrame({"pixel_hash": ["h03b"], "phash": [None]}, index=["I03b"])])
    planted = {"images": images, "rois": rois, "assignment": pd.concat([assignment, extra]), "hashes": hashes}
    report = audit(planted)
    separated = []
    for outer in ("2", "3", "eval"):  # S03 is in outer fold 1
        folds = inner_fold_of(planted, outer)
        if folds["I03"] != folds["I03b"]:
            separated.append(f"inner_fold:{outer}")
    assert separated  # the planted split is really there somewhere
    found = [
        name
        for name, section in report["levels"].items()
        if any(s["kind"] == "subject" and s["subject_ids"] == ["S03"] for s in section["straddles"])
    ]
    assert found == separated
    assert any(v.startswith("subject S03 is on sides") for v in report["violations"])


def test_a_level_whose_folds_cannot_be_made_is_marked_not_checked():
    data = corpus()
    rois = data["rois"].assign(label="benign")
    report = audit_corpus(data["images"], rois, data["assignment"], hashes=data["hashes"], **SETTINGS, **INNER)
    inner = [name for name in report["levels"] if name.startswith("inner_fold")]
    assert report["summary"]["levels_not_checked"] == inner
    assert "groups per label" in report["levels"]["inner_fold:1"]["reason"]
    table = audit_table(report)
    assert set(table.loc[table["check"].str.startswith("level:inner_fold"), "status"]) == {"not checked"}
    assert report["violations"] == []


def test_without_the_model_settings_only_splits_and_outer_folds_are_checked():
    report = audit_corpus(
        corpus()["images"], corpus()["rois"], corpus()["assignment"], hashes=corpus()["hashes"], **SETTINGS
    )
    assert list(report["levels"]) == ["split", "outer_fold"]


def conflicting(kind: str) -> dict:
    data = corpus()
    if kind == "roi":
        # the same location listed twice with different labels
        rois = pd.concat(
            [
                data["rois"].assign(shape="bbox", x_min=5, y_min=5, x_max=20, y_max=20),
                data["rois"]
                .iloc[[1]]
                .assign(roi_id="R01b", label="actionable", shape="bbox", x_min=5, y_min=5, x_max=20, y_max=20),
            ],
            ignore_index=True,
        )
        return {**data, "rois": rois}
    # a copy of a benign image (both in train, same outer fold, one group) whose ROI says actionable;
    # near: a mildly changed copy (other pixels, perceptual hashes 3 bits apart)
    if kind == "image":
        planted = copy_pixels(data, "I05", "I09")
    else:
        rng = np.random.default_rng(0)
        hashes = data["hashes"].copy()
        hashes["phash"] = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(len(hashes))]
        near = hashes.loc["I05", "phash"].copy()
        near[0] ^= np.uint8(0b111)
        hashes.loc["I09", "phash"] = near
        planted = {**data, "hashes": hashes}
    copy_rows = planted["assignment"]["subject_id"] == "S09"
    planted["assignment"] = planted["assignment"].assign(
        group_id=planted["assignment"]["group_id"].where(~copy_rows, "S05"),
        outer_fold=planted["assignment"]["outer_fold"].where(~copy_rows, 3),
        split=planted["assignment"]["split"].where(~copy_rows, "dev"),
    )
    planted["rois"] = planted["rois"].assign(label=lambda r: r["label"].where(r["roi_id"] != "R09", "actionable"))
    return planted


@pytest.mark.parametrize("kind", ["roi", "image", "near"])
def test_a_label_conflict_stops_the_run_under_fail_naming_both_labels(kind):
    report = audit(conflicting(kind), policy="fail")
    assert report["summary"]["label_conflicts"] == 1
    with pytest.raises(AuditError) as error:
        enforce_policy(report, "results/splits/audit.json")
    message = str(error.value)
    if kind == "roi":
        assert "R01 benign" in message and "R01b actionable" in message and "I01" in message
    else:
        assert "I05 ['benign']" in message and "I09 ['actionable']" in message
        assert ("identical images" if kind == "image" else "near-duplicate images (distance 3)") in message
    assert len(error.value.violations) == 1


def test_a_label_conflict_under_warn_is_reported_and_the_run_continues():
    report = audit(conflicting("roi"), policy="warn")
    enforce_policy(report)
    assert report["violations"] and report["violations"][0].startswith("label conflict")
    table = audit_table(report)
    assert table.loc[table["check"] == "label_conflicts", "status"].tolist() == ["CONFLICT", "CONFLICT"]
