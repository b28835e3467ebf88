"""Duplicate-aware partition groups: copies tie subjects into one group that no split or fold separates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_partition_optimiser import SEARCH, random_subjects
from test_partition_stage import CHEAP, make_corpus

from calcsig.partition.grouping import partition_groups
from calcsig.partition.hashing import duplicate_pairs, read_hashes, write_hashes
from calcsig.partition.optimiser import optimise_groups
from calcsig.partition.stage import partition_tables
from calcsig.tables import validate_corpus

HASH_BYTES = 32  # hash_size 16: 256 bits


def table_hashes(images: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A distinct pixel hash and a random perceptual hash for every image (as if each had its own pixels)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pixel_hash": [f"px-{i}" for i in images["image_id"]],
            "phash": [rng.integers(0, 256, HASH_BYTES, dtype=np.uint8) for _ in range(len(images))],
        },
        index=pd.Index(images["image_id"], name="image_id"),
    )


def plant_copies(corpus: dict, hashes: pd.DataFrame, originals: list[str], kind: str = "exact", start: int = 900):
    """Copy each original image under a new subject (same covariates, same ROIs), as the synthetic generator does.

    kind exact: the copy has the original's pixel hash; near: a new pixel hash and the perceptual hash with
    8 bits flipped. Returns new (typed) tables, hashes and the planted [original, copy] image pairs.
    """
    images, rois, subjects = corpus["images"].copy(), corpus["rois"].copy(), corpus["subjects"].copy()
    new_images, new_rois, new_subjects, pairs = [], [], [], []
    hashes = hashes.copy()
    for k, original in enumerate(originals):
        row = images.loc[images["image_id"] == original].iloc[0]
        subject = f"C{start + k:03d}"
        copy_id = f"{subject}_{row['laterality']}_{row['view']}"
        new_images.append({**row.to_dict(), "image_id": copy_id, "subject_id": subject})
        source = subjects.loc[subjects["subject_id"] == row["subject_id"]].iloc[0]
        new_subjects.append({**source.to_dict(), "subject_id": subject, "n_images": 1})
        for _, roi in rois[rois["image_id"] == original].iterrows():
            new_rois.append({**roi.to_dict(), "roi_id": f"{copy_id}_1", "image_id": copy_id})
        phash = hashes.loc[original, "phash"].copy()
        if kind == "exact":
            pixel = hashes.loc[original, "pixel_hash"]
        else:
            pixel = f"px-{copy_id}"
            phash[:1] ^= np.uint8(0xFF)
        hashes.loc[copy_id] = {"pixel_hash": pixel, "phash": phash}
        pairs.append([original, copy_id])
    tables = validate_corpus(
        pd.concat([images, pd.DataFrame(new_images)], ignore_index=True),
        pd.concat([rois, pd.DataFrame(new_rois)], ignore_index=True),
        pd.concat([subjects, pd.DataFrame(new_subjects)], ignore_index=True),
        "planted",
    )
    return tables, hashes, pairs


def _images(rows):
    return pd.DataFrame(rows, columns=["image_id", "subject_id"])


def _pairs(rows):
    return pd.DataFrame(rows, columns=["image_a", "image_b", "method"])


def test_a_chain_of_copies_is_one_group_named_by_its_smallest_subject():
    images = _images([("a1", "S3"), ("b1", "S1"), ("b2", "S1"), ("c1", "S2"), ("d1", "S4")])
    # S3 ~ S1 through a1 = b1, S1 ~ S2 through b2 ~ c1: S3 and S2 share no image but one group
    groups = partition_groups(images, _pairs([("a1", "b1", "exact"), ("b2", "c1", "perceptual")]))
    assert groups.group_of.to_dict() == {"S3": "S1", "S1": "S1", "S2": "S1", "S4": "S4"}
    assert groups.members() == {"S1": ["S1", "S2", "S3"]}
    again = partition_groups(images, _pairs([("c1", "b2", "perceptual"), ("b1", "a1", "exact")]))
    assert again.group_of.equals(groups.group_of)


def test_copies_within_one_subject_link_nobody():
    images = _images([("a1", "S1"), ("a2", "S1"), ("b1", "S2")])
    groups = partition_groups(images, _pairs([("a1", "a2", "exact")]))
    assert groups.group_of.to_dict() == {"S1": "S1", "S2": "S2"}
    assert groups.members() == {} and len(groups.links) == 0


def test_images_without_pixels_stay_with_their_subject():
    corpus = make_corpus(n_subjects=20, seed=1)
    hashes = pd.DataFrame({"pixel_hash": None, "phash": None}, index=corpus["images"]["image_id"])
    pairs = duplicate_pairs(hashes, 36)
    assert pairs.empty
    groups = partition_groups(corpus["images"], pairs)
    assert (groups.group_of == groups.group_of.index).all()


def test_a_copy_of_an_enrichment_image_pins_its_group_to_train_and_declared_enrichment_is_untouched():
    images = pd.DataFrame(
        {
            "image_id": ["a_main", "a_enr", "b_main", "c_main", "c_enr"],
            "subject_id": ["A", "A", "B", "C", "C"],
            "subset": ["main", "enrichment", "main", "main", "enrichment"],
        }
    )
    enrichment = images["subset"] == "enrichment"
    # B's film is a copy of A's enrichment film; C has a declared enrichment exam and no copy
    groups = partition_groups(images, _pairs([("a_enr", "b_main", "exact")]), forced_train=enrichment)
    assert groups.group_of.to_dict() == {"A": "A", "B": "A", "C": "C"}
    assert groups.pinned == {"A": "train"}


def test_a_copy_of_an_external_image_pins_to_eval_and_a_double_pin_is_a_conflict():
    images = pd.DataFrame(
        {
            "image_id": ["a", "b", "c", "d", "e"],
            "subject_id": ["A", "B", "C", "D", "E"],
            "subset": ["main", "main", "enrichment", "main", "main"],
            "site": ["x", "y", "x", "y", "x"],
        }
    )
    external = images["site"] == "y"
    groups = partition_groups(
        images,
        _pairs([("a", "b", "exact"), ("c", "d", "exact"), ("c", "e", "perceptual")]),
        forced_train=images["subset"] == "enrichment",
        held_out=external,
    )
    assert groups.pinned == {"A": "eval", "C": "train"}
    # C's enrichment film is in the external cohort too (via D): no split can keep it out of training
    assert groups.conflicts == ["C"]


def test_duplicate_pairs_finds_exact_and_near_copies_once():
    ids = ["i1", "i2", "i3", "i4"]
    base = np.zeros(HASH_BYTES, np.uint8)
    near = base.copy()
    near[0] = 0b1111  # 4 bits away
    far = np.full(HASH_BYTES, 0xFF, np.uint8)
    hashes = pd.DataFrame(
        {"pixel_hash": ["h", "h", "k", "m"], "phash": [base, base, near, far]}, index=pd.Index(ids, name="image_id")
    )
    pairs = duplicate_pairs(hashes, 36)
    assert pairs[["image_a", "image_b", "method", "distance"]].values.tolist() == [
        ["i1", "i2", "exact", 0],
        ["i1", "i3", "perceptual", 4],
        ["i2", "i3", "perceptual", 4],
    ]


def test_hash_table_round_trip(tmp_path):
    images = pd.DataFrame({"image_id": ["i1", "i2", "i3"], "path": ["p1", "p2", None]})
    hashes = pd.DataFrame(
        {"pixel_hash": ["h1", "h2", None], "phash": [np.arange(32, dtype=np.uint8), np.ones(32, np.uint8), None]},
        index=pd.Index(["i1", "i2", "i3"], name="image_id"),
    )
    write_hashes(hashes, [{"image_id": "i2", "path": "p2", "problem": "truncated file"}], tmp_path / "h.tsv")
    back, unreadable = read_hashes(tmp_path / "h.tsv", images, 16)
    assert back["pixel_hash"].tolist() == ["h1", "h2", None]
    assert np.array_equal(back.loc["i1", "phash"], np.arange(32)) and back.loc["i3", "phash"] is None
    assert unreadable == [{"image_id": "i2", "path": "p2", "problem": "truncated file"}]
    from calcsig.errors import CalcsigError

    with pytest.raises(CalcsigError, match="hash_size"):
        read_hashes(tmp_path / "h.tsv", images, 8)
    with pytest.raises(CalcsigError, match="i4"):
        read_hashes(tmp_path / "h.tsv", pd.concat([images, pd.DataFrame({"image_id": ["i4"]})]), 16)


def test_optimiser_keeps_each_unit_in_one_group_with_exact_sizes_and_strata():
    strata, X = random_subjects(100, seed=8)
    units = np.array([f"s{i}" for i in range(100)], dtype=object)
    # ten pairs and one triple, each of one stratum or mixed
    for k in range(10):
        units[2 * k + 1] = units[2 * k]
    units[30:33] = "triple"
    result = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=2, units=units, **SEARCH)
    for unit in set(units):
        assert len(set(result.groups[units == unit])) == 1, unit
    assert np.bincount(result.groups, minlength=3).tolist() == [60, 15, 25]
    for level in np.unique(strata):
        counts = np.bincount(result.groups[strata == level], minlength=3)
        assert np.abs(counts - (strata == level).sum() * np.array([0.6, 0.15, 0.25])).max() < 1.0


def test_optimiser_with_one_subject_per_unit_is_the_subject_search():
    strata, X = random_subjects(80, seed=3)
    plain = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=5, **SEARCH)
    units = optimise_groups(strata, X, [0.6, 0.15, 0.25], seed=5, units=[f"u{i}" for i in range(80)], **SEARCH)
    assert np.array_equal(plain.groups, units.groups) and plain.objective == units.objective


def test_optimiser_rejects_a_unit_pinned_to_two_groups():
    strata, X = random_subjects(20, seed=1)
    fixed = np.full(20, -1)
    fixed[0], fixed[1] = 0, 2
    with pytest.raises(ValueError, match="unit 'u'"):
        optimise_groups(strata, X, [0.5, 0.5, 1], seed=1, fixed=fixed, units=["u", "u"] + [f"s{i}" for i in range(18)])


@pytest.fixture(scope="module")
def planted():
    corpus = make_corpus(n_subjects=80, seed=5)
    hashes = table_hashes(corpus["images"])
    images = corpus["images"]["image_id"]
    exact_originals = list(images.iloc[[0, 7, 20, 33, 50]])
    tables, hashes, exact = plant_copies(corpus, hashes, exact_originals, "exact", start=900)
    tables, hashes, near = plant_copies(tables, hashes, list(images.iloc[[61, 80, 95]]), "near", start=950)
    # a chain: a copy of a copy, under a third subject
    tables, hashes, chain = plant_copies(tables, hashes, [exact[0][1]], "exact", start=990)
    return tables, hashes, exact + near + chain


def _subject_rows(assignment):
    return assignment[assignment["level"] == "subject"].set_index("subject_id")


def test_grouped_partition_keeps_every_copy_with_its_original(planted):
    tables, hashes, pairs = planted
    assignment, _, summary = partition_tables(
        tables["images"], tables["rois"], tables["subjects"], dict(CHEAP), seed=3, hashes=hashes
    )
    subject_of = tables["images"].set_index("image_id")["subject_id"]
    rows = _subject_rows(assignment)
    for original, copy in pairs:
        a, b = subject_of[original], subject_of[copy]
        assert rows.loc[a, "group_id"] == rows.loc[b, "group_id"]
        assert rows.loc[a, "split"] == rows.loc[b, "split"]
        folds = rows.loc[[a, b], "outer_fold"]
        assert folds.isna().all() or folds.nunique() == 1
    # the chain original ~ C900 ~ C990 is one group of three
    chain = rows.loc[[subject_of[pairs[0][0]], "C900", "C990"], "group_id"]
    assert chain.nunique() == 1 and chain.iloc[0] == min(subject_of[pairs[0][0]], "C900")
    assert summary["duplicate_groups"]["groups_with_several_subjects"] == 8
    assert summary["duplicate_groups"]["subjects_in_shared_groups"] == 17
    # every row of a subject carries its group; subjects in no pair are their own group
    assert (assignment.groupby("subject_id")["group_id"].nunique() == 1).all()
    alone = ~rows.index.isin([s for m in summary["duplicate_groups"]["members"].values() for s in m])
    assert (rows.loc[alone, "group_id"] == rows.index[alone]).all()
    # the balance targets still hold
    sizes = summary["scopes"]["split"]["n_subjects"]
    assert sum(sizes.values()) == 89
    assert all(abs(sizes[s] - 89 * share) < 1 for s, share in (("train", 0.6), ("dev", 0.15), ("eval", 0.25)))
    assert summary["scopes"]["split"]["label_max_deviation_pp"] <= 3.0


def test_without_grouping_copies_are_placed_like_anyone_else(planted):
    tables, hashes, pairs = planted
    assignment, _, summary = partition_tables(
        tables["images"], tables["rois"], tables["subjects"], {**CHEAP, "group_duplicates": False}, seed=3
    )
    assert (assignment["group_id"] == assignment["subject_id"]).all()
    assert "duplicate_groups" not in summary
    subject_of = tables["images"].set_index("image_id")["subject_id"]
    rows = _subject_rows(assignment)
    separated = [p for p in pairs if rows.loc[subject_of[p[0]], "split"] != rows.loc[subject_of[p[1]], "split"]]
    assert separated  # the grouped test above is not passing by luck


def test_grouping_changes_nothing_on_a_corpus_without_copies():
    corpus = make_corpus(n_subjects=50, seed=4)
    tables = corpus["images"], corpus["rois"], corpus["subjects"]
    hashes = table_hashes(corpus["images"])
    grouped, balance, _ = partition_tables(*tables, dict(CHEAP), seed=11, hashes=hashes)
    plain, balance_plain, _ = partition_tables(*tables, {**CHEAP, "group_duplicates": False}, seed=11)
    pd.testing.assert_frame_equal(grouped, plain)
    pd.testing.assert_frame_equal(balance, balance_plain)
