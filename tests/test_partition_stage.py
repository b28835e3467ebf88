"""Partition stage: assignment rules, balance on a realistic 120-subject corpus, given splits, enrichment."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from calcsig.partition.balance import cramers_v
from calcsig.partition.covariates import design_matrix, subject_covariates
from calcsig.partition.optimiser import worst_abs_smd
from calcsig.partition.stage import PartitionError, partition_params, partition_tables, read_assignment, run_partition
from calcsig.tables import validate_corpus, write_tables

SITES = {"site_a": (0.45, 0.55), "site_b": (0.35, 0.30), "site_c": (0.20, 0.70)}


def make_corpus(n_subjects: int = 120, seed: int = 7, enrichment_subjects: int = 0) -> dict:
    """Random but realistic corpus tables: sites with different prevalence and race mix,
    age-dependent density, one or two images per subject, ROIs with fine classes and
    morphology, ~7 % missing age and ~10 % missing race. Returns typed tables."""
    rng = np.random.default_rng(seed)
    races = ["white", "black", "hispanic", "asian"]
    race_mix = {"site_a": [0.6, 0.15, 0.15, 0.1], "site_b": [0.35, 0.4, 0.2, 0.05], "site_c": [0.45, 0.1, 0.15, 0.3]}
    site_names = list(SITES)
    subjects, images, rois = [], [], []
    for s in range(n_subjects):
        sid = f"S{s:03d}"
        site = site_names[rng.choice(3, p=[w for w, _ in SITES.values()])]
        age = float(np.clip(rng.normal(57, 10), 30, 90).round())
        density = "ABCD"[int(np.clip(rng.normal(2.2 - (age - 57) / 15, 0.9), 0, 3))]
        race = races[rng.choice(4, p=race_mix[site])] if rng.random() > 0.1 else None
        subjects.append(
            {
                "subject_id": sid,
                "age": age if rng.random() > 0.07 else None,
                "density": density,
                "race_ethnicity": race,
                "site": site,
                "cohort": "test",
                "n_images": 0,
            }
        )
        finding = rng.random()
        kind = "normal" if finding < 0.15 else ("actionable" if rng.random() < SITES[site][1] else "benign")
        views = ["CC", "MLO"] if rng.random() < 0.8 else ["CC"]
        laterality = "L" if rng.random() < 0.5 else "R"
        for view in views:
            iid = f"{sid}_{laterality}_{view}"
            images.append(
                {
                    "image_id": iid,
                    "subject_id": sid,
                    "has_pixels": False,
                    "laterality": laterality,
                    "view": view,
                    "site": site,
                    "source": "test",
                    "subset": "main",
                }
            )
            if kind == "normal":
                continue
            fine = rng.choice(["dcis", "invasive", "high_risk"]) if kind == "actionable" else "benign"
            rois.append(
                {
                    "roi_id": f"{iid}_1",
                    "image_id": iid,
                    "shape": "image",
                    "label": kind,
                    "fine_class": fine,
                    "calc_type": rng.choice(["pleomorphic", "amorphous", "punctate"]),
                    "calc_distribution": rng.choice(["clustered", "segmental"]),
                    "source": "test",
                }
            )
        subjects[-1]["n_images"] = len(views)
    for e in range(enrichment_subjects):
        sid = f"S{e:03d}"
        images.append(
            {
                "image_id": f"{sid}_ENR",
                "subject_id": sid,
                "has_pixels": False,
                "laterality": "L",
                "view": "CC",
                "source": "test",
                "subset": "enrichment",
            }
        )
    return validate_corpus(pd.DataFrame(images), pd.DataFrame(rois), pd.DataFrame(subjects), "fixture")


FAST = {"n_restarts": 5}
CHEAP = {"n_restarts": 2, "max_iterations": 300, "patience": 100}


@pytest.fixture(scope="module")
def corpus() -> dict:
    return make_corpus()


@pytest.fixture(scope="module")
def partitioned(corpus):
    return partition_tables(corpus["images"], corpus["rois"], corpus["subjects"], dict(FAST), seed=11)


def test_balance_targets_on_120_subjects(partitioned):
    _, table, summary = partitioned
    split = summary["scopes"]["split"]
    assert split["worst_abs_smd"] <= 0.1
    assert split["label_max_deviation_pp"] <= 3.0
    assert split["n_subjects"] == {"train": 72, "dev": 18, "eval": 30}
    folds = summary["scopes"]["outer_fold"]
    assert folds["n_subjects"] == {f"fold_{k}": n for k, n in zip(range(1, 5), (23, 23, 22, 22))} or sorted(
        folds["n_subjects"].values()
    ) == [22, 22, 23, 23]
    assert folds["worst_abs_smd"] <= 0.2
    split_rows = table[(table["scope"] == "split") & (table["kind"] != "stratum")]
    assert split_rows["max_abs_smd"].max() == pytest.approx(split["worst_abs_smd"])
    assert split_rows["is_worst"].sum() == 1
    assert set(split_rows["covariate"]) == {
        "age_band",
        "density",
        "site",
        "race_ethnicity",
        "calc_type",
        "calc_distribution",
        "fine_class",
        "age",
    }


def test_optimised_split_beats_random_grouped_split(corpus, partitioned):
    from sklearn.model_selection import GroupShuffleSplit

    assignment, _, _ = partitioned
    params = partition_params({})
    cov = subject_covariates(
        corpus["images"],
        corpus["rois"],
        corpus["subjects"],
        covariates=params["covariates"],
        numeric_covariates=params["numeric_covariates"],
        morphology=params["morphology"],
        age_bins=params["age_bins"],
    )
    X, _ = design_matrix(cov)
    subjects = cov.frame.index.to_numpy()
    split_of = assignment[assignment["level"] == "subject"].set_index("subject_id")["split"]
    ours = worst_abs_smd(X, split_of.reindex(subjects).map({"train": 0, "dev": 1, "eval": 2}).to_numpy(), 3)
    random_worst = []
    for seed in range(20):
        outer = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)
        trainval, test = next(outer.split(X, groups=subjects))
        inner = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
        train, dev = next(inner.split(trainval, groups=subjects[trainval]))
        groups = np.full(len(subjects), 2)
        groups[trainval[train]], groups[trainval[dev]] = 0, 1
        random_worst.append(worst_abs_smd(X, groups, 3))
    assert ours <= 0.1
    assert ours < min(random_worst)
    assert np.median(random_worst) > 2 * ours


def test_assignment_rows_and_grouping(corpus, partitioned):
    assignment, _, _ = partitioned
    assert list(assignment.columns) == ["level", "subject_id", "image_id", "roi_id", "split", "outer_fold", "group_id"]
    # no image is a copy of another: every subject is its own group
    assert (assignment["group_id"] == assignment["subject_id"]).all()
    assert (assignment["level"] == "subject").sum() == len(corpus["subjects"])
    assert (assignment["level"] == "image").sum() == len(corpus["images"])
    assert (assignment["level"] == "roi").sum() == len(corpus["rois"])
    assert assignment.groupby("subject_id")["split"].nunique().max() == 1
    assert assignment.groupby("subject_id")["outer_fold"].nunique().max() <= 1
    training = assignment["split"].isin(["train", "dev"])
    assert assignment.loc[training, "outer_fold"].between(1, 4).all()
    assert assignment.loc[~training, "outer_fold"].isna().all()


def test_deterministic_for_a_seed():
    corpus = make_corpus(n_subjects=50, seed=4)
    tables = corpus["images"], corpus["rois"], corpus["subjects"]
    first, balance, _ = partition_tables(*tables, dict(CHEAP), seed=11)
    again, balance_again, _ = partition_tables(*tables, dict(CHEAP), seed=11)
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(balance_again, balance)
    other, _, _ = partition_tables(*tables, dict(CHEAP), seed=12)
    assert not other["split"].equals(first["split"])


def test_missing_values_are_their_own_level(corpus, partitioned):
    _, table, summary = partitioned
    levels = set(table.loc[(table["scope"] == "split") & (table["covariate"] == "race_ethnicity"), "level"])
    assert "missing" in levels
    race = table[(table["scope"] == "split") & (table["covariate"] == "race_ethnicity") & (table["level"] == "missing")]
    assert race["n_total"].item() == corpus["subjects"]["race_ethnicity"].isna().sum()
    # six subjects without age: too rare to balance, pooled into other, and still reported
    missing_age = int(corpus["subjects"]["age"].isna().sum())
    assert summary["covariates"]["missing_subjects"]["age_band"] == missing_age
    assert "missing" in summary["covariates"]["pooled_into_other"]["age_band"]
    params = partition_params({})
    cov = subject_covariates(
        corpus["images"],
        corpus["rois"],
        corpus["subjects"],
        covariates=["age_band"],
        numeric_covariates=[],
        morphology=[],
        age_bins=params["age_bins"],
        min_level_subjects=1,
    )
    assert (cov.frame["age_band"] == "missing").sum() == missing_age


def test_cramers_v_matches_definition():
    table = np.array([[30, 10], [10, 30]])
    v, p = cramers_v(table)
    assert v == pytest.approx(0.5)
    assert p < 0.001
    assert np.isnan(cramers_v(np.array([[5, 5]]))[0])


def test_enrichment_images_forced_into_train():
    corpus = make_corpus(n_subjects=60, seed=3, enrichment_subjects=10)
    assignment, _, _ = partition_tables(corpus["images"], corpus["rois"], corpus["subjects"], dict(CHEAP), seed=5)
    enrichment = assignment["image_id"].fillna("").str.endswith("_ENR") & (assignment["level"] == "image")
    assert (assignment.loc[enrichment, "split"] == "train").all()
    assert assignment.loc[enrichment, "outer_fold"].notna().all()
    subject_split = assignment[assignment["level"] == "subject"].set_index("subject_id")["split"]
    core = assignment[(assignment["level"] == "image") & ~enrichment]
    assert (core["split"].to_numpy() == core["subject_id"].map(subject_split).to_numpy()).all()
    spanning = assignment.groupby("subject_id")["split"].nunique()
    enriched = {f"S{e:03d}" for e in range(10)}
    assert set(spanning.index[spanning > 1]) <= enriched
    assert (subject_split[sorted(enriched)] != "train").any()


def test_given_split_is_honoured_and_train_divided(corpus):
    images = corpus["images"].copy()
    eval_subjects = set(corpus["subjects"]["subject_id"][::4])
    images["given_split"] = np.where(images["subject_id"].isin(eval_subjects), "test", "train")
    assignment, _, summary = partition_tables(
        images, corpus["rois"], corpus["subjects"], {**CHEAP, "use_given_split": True}, seed=1
    )
    subject_split = assignment[assignment["level"] == "subject"].set_index("subject_id")["split"]
    assert set(subject_split.index[subject_split == "eval"]) == eval_subjects
    pool = subject_split[~subject_split.index.isin(eval_subjects)]
    assert set(pool) == {"train", "dev"}
    assert (pool == "dev").sum() == round(len(pool) * 0.2)
    assert summary["mode"] == "given_split"


def test_given_split_conflict_is_kept_for_the_audit(corpus):
    images = corpus["images"].copy()
    images["given_split"] = "train"
    two_view = images["subject_id"].value_counts()
    subject = two_view.index[two_view == 2][0]
    first_image = images.index[images["subject_id"] == subject][0]
    images.loc[first_image, "given_split"] = "test"
    assignment, _, _ = partition_tables(
        images, corpus["rois"], corpus["subjects"], {**CHEAP, "use_given_split": True}, seed=1
    )
    rows = assignment[(assignment["subject_id"] == subject) & (assignment["level"] == "image")]
    assert set(rows["split"]) == {"eval", "train"} or set(rows["split"]) == {"eval", "dev"}


def test_split_file(tmp_path, corpus):
    subjects = corpus["subjects"]["subject_id"]
    split_file = tmp_path / "split.tsv"
    given = pd.DataFrame(
        {
            "subject_id": subjects,
            "split": np.where(
                np.arange(len(subjects)) % 5 == 0, "eval", np.where(np.arange(len(subjects)) % 5 == 1, "dev", "train")
            ),
        }
    )
    given.to_csv(split_file, sep="\t", index=False)
    assignment, _, _ = partition_tables(
        corpus["images"], corpus["rois"], corpus["subjects"], {**CHEAP, "split_file": str(split_file)}, seed=1
    )
    subject_split = assignment[assignment["level"] == "subject"].set_index("subject_id")["split"]
    assert subject_split.reindex(given["subject_id"]).tolist() == given["split"].tolist()
    given.iloc[:3].to_csv(split_file, sep="\t", index=False)
    with pytest.raises(PartitionError, match="does not cover"):
        partition_tables(corpus["images"], corpus["rois"], corpus["subjects"], {"split_file": str(split_file)}, seed=1)


def test_run_partition_writes_files(tmp_path):
    corpus = make_corpus(n_subjects=40, seed=9)
    paths = {kind: tmp_path / f"{kind}.tsv" for kind in corpus}
    write_tables(corpus, paths)
    out = tmp_path / "splits"
    summary = run_partition(
        paths["images"],
        paths["rois"],
        paths["subjects"],
        dict(CHEAP),
        3,
        out / "assignment.tsv",
        out / "balance.tsv",
        out / "balance.json",
    )
    assignment = read_assignment(out / "assignment.tsv")
    assert assignment["outer_fold"].dtype == "Int64"
    assert set(assignment["split"]) == {"train", "dev", "eval"}
    balance = pd.read_csv(out / "balance.tsv", sep="\t")
    assert {
        "scope",
        "covariate",
        "level",
        "n_train",
        "value_eval",
        "smd_train_vs_eval",
        "cramers_v",
        "chi2_p",
        "is_worst",
    } <= set(balance.columns)
    document = json.loads((out / "balance.json").read_text())
    assert document["summary"]["worst_abs_smd"] == pytest.approx(summary["worst_abs_smd"])


def test_bad_params_are_named():
    from calcsig.errors import ConfigError

    with pytest.raises(ConfigError, match="partition.outer_folds"):
        partition_params({"outer_folds": 1})
    with pytest.raises(ConfigError, match="unexpected|Additional"):
        partition_params({"no_such_key": 1})


def test_fine_class_strata_are_kept_on_target(corpus):
    assignment, table, summary = partition_tables(
        corpus["images"], corpus["rois"], corpus["subjects"], {**CHEAP, "stratify_by": "fine_class"}, seed=2
    )
    strata = table[(table["scope"] == "split") & (table["kind"] == "stratum")]
    assert set(strata["level"]) == {"benign", "dcis", "invasive", "high_risk", "normal"}
    for _, row in strata.iterrows():
        expected = row["n_total"] * np.array([0.6, 0.15, 0.25])
        assert np.abs(row[["n_train", "n_dev", "n_eval"]].to_numpy(float) - expected).max() < 1.5
    assert summary["scopes"]["split"]["label_max_deviation_pp"] <= 6.0


def test_partition_then_audit_reports_only_enrichment_overlap():
    from calcsig.partition.audit import audit_corpus

    corpus = make_corpus(n_subjects=60, seed=3, enrichment_subjects=10)
    assignment, _, _ = partition_tables(corpus["images"], corpus["rois"], corpus["subjects"], dict(CHEAP), seed=5)
    subject_split = assignment[assignment["level"] == "subject"].set_index("subject_id")["split"]
    enriched = [f"S{e:03d}" for e in range(10)]
    hashes = pd.DataFrame({"pixel_hash": None, "phash": None}, index=corpus["images"]["image_id"])
    report = audit_corpus(
        corpus["images"],
        corpus["rois"],
        assignment,
        declared_enrichment=["enrichment"],
        hamming=36,
        hash_size=16,
        hashes=hashes,
    )
    overlapping = {e["subject_id"] for e in report["subject_overlap"]}
    assert overlapping == {s for s in enriched if subject_split[s] != "train"}
    assert all(e["declared"] for e in report["subject_overlap"])
    assert report["fold_overlap"] == [] and report["violations"] == []
    undeclared = audit_corpus(
        corpus["images"], corpus["rois"], assignment, declared_enrichment=[], hamming=36, hash_size=16, hashes=hashes
    )
    assert len(undeclared["violations"]) >= len(overlapping) > 0
