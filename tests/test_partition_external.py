"""External test cohort (partition.external): held out as split `external`, outside the optimiser and the balance."""

from __future__ import annotations

import pandas as pd
import pytest
from test_partition_stage import CHEAP, make_corpus

from calcsig.errors import ConfigError
from calcsig.partition.audit import audit_corpus
from calcsig.partition.stage import PartitionError, partition_tables, read_assignment, write_assignment

EXTERNAL = {"column": "site", "values": ["site_c"]}


@pytest.fixture(scope="module")
def cohort():
    """60 subjects; site_c images external, plus one site_c image planted on a two-image site_a subject."""
    corpus = make_corpus(n_subjects=60, seed=3)
    images = corpus["images"].copy()
    counts = images.groupby("subject_id")["image_id"].transform("size")
    mixed = images.loc[(images["site"] == "site_a") & (counts == 2), "subject_id"].iloc[0]
    planted = images.index[images["subject_id"] == mixed][0]
    images.loc[planted, "site"] = "site_c"
    external = images["site"] == "site_c"
    params = {**CHEAP, "external": EXTERNAL}
    assignment, table, summary = partition_tables(images, corpus["rois"], corpus["subjects"], params, seed=5)
    return {
        "corpus": corpus,
        "images": images,
        "external": external,
        "mixed": mixed,
        "planted": images.loc[planted, "image_id"],
        "assignment": assignment,
        "table": table,
        "summary": summary,
    }


def test_exactly_the_external_images_are_external(cohort):
    a, images, external = cohort["assignment"], cohort["images"], cohort["external"]
    image_rows = a[a["level"] == "image"].set_index("image_id")
    ext_ids = set(images.loc[external, "image_id"])
    assert set(image_rows.index[image_rows["split"] == "external"]) == ext_ids
    assert image_rows.loc[sorted(ext_ids), "outer_fold"].isna().all()
    roi_rows = a[a["level"] == "roi"]
    assert ((roi_rows["split"] == "external") == roi_rows["image_id"].isin(ext_ids)).all()
    # subjects with only external images are external; the mixed subject keeps its development split
    subject_rows = a[a["level"] == "subject"].set_index("subject_id")["split"]
    only_external = set(images["subject_id"]) - set(images.loc[~external, "subject_id"])
    assert set(subject_rows.index[subject_rows == "external"]) == only_external and only_external
    assert subject_rows[cohort["mixed"]] in ("train", "dev", "eval")
    assert set(a.loc[a["subject_id"] == cohort["mixed"], "split"]) == {subject_rows[cohort["mixed"]], "external"}
    ext = cohort["summary"]["external"]
    assert ext["n_images"] == len(ext_ids) and ext["n_subjects_external_only"] == len(only_external)
    assert ext["n_subjects"] == len(only_external) + 1


def test_development_corpus_is_split_as_without_the_external_images(cohort):
    corpus, images, external = cohort["corpus"], cohort["images"], cohort["external"]
    dev_images = images.loc[~external]
    dev_rois = corpus["rois"].loc[corpus["rois"]["image_id"].isin(set(dev_images["image_id"]))]
    dev_subjects = corpus["subjects"].loc[corpus["subjects"]["subject_id"].isin(set(dev_images["subject_id"]))]
    alone, table_alone, summary_alone = partition_tables(dev_images, dev_rois, dev_subjects, dict(CHEAP), seed=5)
    a = cohort["assignment"]
    developed = a[a["split"] != "external"].reset_index(drop=True)
    pd.testing.assert_frame_equal(developed, alone)
    assert cohort["summary"]["scopes"] == summary_alone["scopes"]
    pd.testing.assert_frame_equal(cohort["table"], table_alone)


def test_without_external_nothing_changes():
    corpus = make_corpus(n_subjects=60, seed=3)
    default, _, summary = partition_tables(corpus["images"], corpus["rois"], corpus["subjects"], dict(CHEAP), seed=5)
    explicit, _, _ = partition_tables(
        corpus["images"], corpus["rois"], corpus["subjects"], {**CHEAP, "external": None}, seed=5
    )
    pd.testing.assert_frame_equal(default, explicit)
    assert "external" not in set(default["split"]) and "external" not in summary


def test_assignment_round_trip_and_audit_of_the_mixed_subject(cohort, tmp_path):
    write_assignment(cohort["assignment"], tmp_path / "assignment.tsv")
    back = read_assignment(tmp_path / "assignment.tsv")
    assert (back["split"] == "external").sum() == (cohort["assignment"]["split"] == "external").sum()
    assert back.loc[back["split"] == "external", "outer_fold"].isna().all()
    images = cohort["images"]
    hashes = pd.DataFrame({"pixel_hash": None, "phash": None}, index=images["image_id"])
    report = audit_corpus(
        images,
        cohort["corpus"]["rois"],
        back,
        declared_enrichment=["enrichment"],
        hamming=36,
        hash_size=16,
        hashes=hashes,
    )
    overlap = {e["subject_id"]: e for e in report["subject_overlap"]}
    assert set(overlap) == {cohort["mixed"]}
    entry = overlap[cohort["mixed"]]
    assert not entry["declared"] and "external" in entry["splits"]
    assert [i["image_id"] for i in entry["cross_split_images"]] == [cohort["planted"]]
    assert any(cohort["mixed"] in v and "undeclared" in v for v in report["violations"])


def test_bad_external_settings_are_named():
    corpus = make_corpus(n_subjects=20, seed=1)
    with pytest.raises(PartitionError, match="scanner"):
        partition_tables(
            corpus["images"],
            corpus["rois"],
            corpus["subjects"],
            {**CHEAP, "external": {"column": "scanner", "values": ["x"]}},
            seed=1,
        )
    with pytest.raises(PartitionError, match="every image"):
        partition_tables(
            corpus["images"],
            corpus["rois"],
            corpus["subjects"],
            {**CHEAP, "external": {"column": "source", "values": ["test"]}},
            seed=1,
        )
    with pytest.raises(ConfigError, match="partition.external"):
        partition_tables(
            corpus["images"], corpus["rois"], corpus["subjects"], {**CHEAP, "external": {"column": "site"}}, seed=1
        )
