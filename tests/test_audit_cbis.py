"""Real CBIS-DDSM calcification tables (metadata only): the official split is honoured and audits clean."""

from __future__ import annotations

import pytest

from calcsig.partition.audit import audit_corpus
from calcsig.partition.stage import partition_tables
from calcsig.tables import validate_corpus

pytestmark = pytest.mark.shared_data


def test_official_split_has_no_subject_overlap(shared_data, tmp_path):
    from calcsig.ingest.cbis_ddsm import ingest_cbis_ddsm

    raw = ingest_cbis_ddsm(shared_data / "cbis-ddsm", {"subsets": ["calc"]}, tmp_path)
    corpus = validate_corpus(raw["images"], raw["rois"], raw["subjects"], "cbis")
    params = {"use_given_split": True, "n_restarts": 1, "max_iterations": 200, "patience": 50}
    assignment, _, summary = partition_tables(corpus["images"], corpus["rois"], corpus["subjects"], params, seed=1)
    images = assignment[assignment["level"] == "image"].set_index("image_id")["split"]
    given = corpus["images"].set_index("image_id")["given_split"]
    assert ((given == "test") == (images.reindex(given.index) == "eval")).all()
    assert summary["scopes"]["split"]["n_subjects"]["eval"] == 151
    report = audit_corpus(
        corpus["images"], corpus["rois"], assignment, declared_enrichment=[], hamming=36, hash_size=16
    )
    assert report["summary"]["images_hashed"] == 0
    assert report["subject_overlap"] == [] and report["violations"] == []
    # the metadata key ran on every image (no pixels) and found no film under two IDs
    assert report["near_duplicates"] == [] and report["exact_duplicates"] == []
