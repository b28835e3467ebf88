"""Real mini-MIAS films: 104 distinct films, so grouping ties no subjects and every level audits clean."""

from __future__ import annotations

import pytest

from calcsig.partition.audit import audit_corpus
from calcsig.partition.hashing import image_hashes
from calcsig.partition.stage import partition_tables
from calcsig.tables import validate_corpus

pytestmark = pytest.mark.shared_data


def test_real_films_form_no_duplicate_group_and_audit_clean_at_every_level(shared_data, tmp_path):
    from calcsig.ingest.mini_mias import ingest_mini_mias

    raw = ingest_mini_mias(shared_data / "mini-mias-dev", {}, tmp_path)
    corpus = validate_corpus(raw["images"], raw["rois"], raw["subjects"], "mini-mias")
    hashes, unreadable = image_hashes(corpus["images"], 16)
    assert unreadable == [] and hashes["pixel_hash"].notna().all()
    params = {"n_restarts": 2, "max_iterations": 300, "patience": 100}
    assignment, _, summary = partition_tables(
        corpus["images"], corpus["rois"], corpus["subjects"], params, seed=1, hashes=hashes
    )
    assert summary["duplicate_groups"]["groups_with_several_subjects"] == 0
    assert (assignment["group_id"] == assignment["subject_id"]).all()
    report = audit_corpus(
        corpus["images"],
        corpus["rois"],
        assignment,
        declared_enrichment=[],
        hamming=36,
        hash_size=16,
        hashes=hashes,
        inner_folds=5,
        seed=1,
    )
    assert report["summary"]["levels_not_checked"] == []
    assert set(report["summary"]["straddles_per_level"].values()) == {0}
    assert report["label_conflicts"] == [] and report["violations"] == []
