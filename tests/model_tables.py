"""Small simulated inputs of the model stage (features, corpus, cohort and split tables) for the tests.

Actionable ROIs get objects drawn from a shifted distribution in a few
features, so that a model has something to learn; each ROI also has a fine
class (``benign`` for benign subjects, one of `actionable_classes` for the
others) that shifts a second feature, so a multi-class model has something to
learn too. Everything is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from calcsig.paths import RESOURCE_DIR, atomic_path


def make_tables(
    n_subjects=40,
    rois_per_subject=2,
    objects_per_roi=8,
    n_fg=6,
    n_rp=3,
    n_bg=4,
    n_global=5,
    n_outer=3,
    eval_fraction=0.25,
    positive_fraction=0.35,
    signal=1.5,
    empty_fraction=0.05,
    seed=0,
    actionable_classes=("high_risk", "dcis", "invasive"),
    fine_signal=1.0,
):
    """Return dict of DataFrames: objects, rois (features), corpus_rois, cohort, images, assignment.

    Each subject has one breast side with a CC and an MLO image and
    `rois_per_subject` ROIs spread over them; a subject's ROIs share its
    label and fine class. About `empty_fraction` of ROIs have no objects
    (global features NaN). The k-th actionable class adds ``k * fine_signal``
    to the second feature of each family.
    """
    rng = np.random.default_rng(seed)
    subjects = [f"S{i:03d}" for i in range(n_subjects)]
    subj_label = (rng.random(n_subjects) < positive_fraction).astype(int)
    subj_label[:2] = [1, 0]
    # a separate stream, so the fine classes leave every other draw as it was
    fine_rng = np.random.default_rng([seed, 1])
    fine_index = fine_rng.integers(0, max(1, len(actionable_classes)), size=n_subjects)
    subj_fine = ["benign" if not lab else actionable_classes[k] for lab, k in zip(subj_label, fine_index)]
    order = rng.permutation(n_subjects)
    n_eval = int(round(eval_fraction * n_subjects))
    split = np.array(["train"] * n_subjects, dtype=object)
    split[order[:n_eval]] = "eval"
    outer = np.zeros(n_subjects, dtype=int)
    dev_idx = order[n_eval:]
    for lab in (0, 1):
        members = [i for i in dev_idx if subj_label[i] == lab]
        for j, i in enumerate(members):
            outer[i] = j % n_outer + 1
    images, corpus, assign, roi_rows, obj_rows = [], [], [], [], []
    for si, s in enumerate(subjects):
        side = "L" if rng.random() < 0.5 else "R"
        views = ["CC", "MLO"]
        img_ids = [f"{s}_{side}_{v}" for v in views]
        for iid, v in zip(img_ids, views):
            images.append(
                {
                    "image_id": iid,
                    "subject_id": s,
                    "path": f"{iid}.png",
                    "has_pixels": True,
                    "laterality": side,
                    "view": v,
                    "source": "synthetic",
                    "subset": "enrichment" if si % 7 == 3 else "main",
                }
            )
        fold = "" if split[si] == "eval" else str(outer[si])
        assign.append(
            {"level": "subject", "subject_id": s, "image_id": "", "roi_id": "", "split": split[si], "outer_fold": fold}
        )
        for iid in img_ids:
            assign.append(
                {
                    "level": "image",
                    "subject_id": s,
                    "image_id": iid,
                    "roi_id": "",
                    "split": split[si],
                    "outer_fold": fold,
                }
            )
        for r in range(rois_per_subject):
            rid = f"{s}_r{r}"
            iid = img_ids[r % 2]
            lab = int(subj_label[si])
            corpus.append(
                {
                    "roi_id": rid,
                    "image_id": iid,
                    "shape": "image",
                    "label": "actionable" if lab else "benign",
                    "fine_class": subj_fine[si],
                    "source": "synthetic",
                }
            )
            assign.append(
                {
                    "level": "roi",
                    "subject_id": s,
                    "image_id": iid,
                    "roi_id": rid,
                    "split": split[si],
                    "outer_fold": fold,
                }
            )
            n_obj = (
                0
                if rng.random() < empty_fraction
                else int(rng.integers(max(1, objects_per_roi // 2), objects_per_roi * 3 // 2 + 1))
            )
            shift = signal * lab
            fine_shift = fine_signal * (fine_index[si] + 1) * lab
            for o in range(n_obj):
                row = {"roi_id": rid, "object_id": o + 1}
                for fam, n in (("fg", n_fg), ("rp", n_rp), ("bg", n_bg)):
                    v = rng.normal(size=n)
                    v[0] += shift
                    if n > 1:
                        v[1] += fine_shift
                    row.update({f"{fam}_f{j}": float(v[j]) for j in range(n)})
                obj_rows.append(row)
            g = rng.normal(size=n_global) + (0.5 * shift if n_global else 0)
            roi = {"roi_id": rid, "n_objects": n_obj}
            roi.update({f"hc_g{j}": (float(g[j]) if n_obj else np.nan) for j in range(n_global)})
            roi["qc_n_dropped"] = int(rng.integers(0, 3))
            roi_rows.append(roi)
    cols = ["roi_id", "object_id"] + [
        f"{fam}_f{j}" for fam, n in (("fg", n_fg), ("rp", n_rp), ("bg", n_bg)) for j in range(n)
    ]
    corpus = pd.DataFrame(corpus)
    image_subject = pd.DataFrame(images).set_index("image_id")["subject_id"]
    return {
        "objects": pd.DataFrame(obj_rows, columns=cols),
        "rois": pd.DataFrame(roi_rows),
        "corpus_rois": corpus,
        "cohort": cohort_table(corpus, image_subject, roi_split=roi_splits(pd.DataFrame(assign))),
        "images": pd.DataFrame(images),
        "assignment": pd.DataFrame(assign),
    }


def roi_splits(assignment: pd.DataFrame) -> pd.Series:
    """Each ROI's split (ROI rows of an assignment table), indexed by roi_id."""
    rows = assignment[assignment["level"] == "roi"]
    return rows.set_index("roi_id")["split"]


def cohort_table(
    corpus: pd.DataFrame, image_subject: pd.Series, excluded: dict | None = None, roi_split: pd.Series | None = None
) -> pd.DataFrame:
    """The cohort table of a simulated corpus: every ROI included, except `excluded` ({roi_id: reason});
    `roi_split` gives each ROI's split (the cohort stage takes it from the partition)."""
    excluded = excluded or {}
    reason = corpus["roi_id"].map(lambda r: excluded.get(r, ""))
    return pd.DataFrame(
        {
            "roi_id": corpus["roi_id"],
            "image_id": corpus["image_id"],
            "subject_id": corpus["image_id"].map(image_subject),
            "split": corpus["roi_id"].map(roi_split).fillna("") if roi_split is not None else "",
            "included": np.where(reason == "", "true", "false"),
            "reason": reason,
            "label": corpus["label"],
            "fine_class": corpus["fine_class"],
        }
    )


def write_tables(tables: dict, out_dir) -> dict[str, Path]:
    """Write the tables of make_tables under out_dir; return their paths by name, and the shipped grid file's."""
    out_dir = Path(out_dir)
    files = {
        "objects": out_dir / "objects.parquet",
        "rois": out_dir / "rois.parquet",
        "corpus_rois": out_dir / "corpus_rois.tsv",
        "cohort": out_dir / "cohort.tsv",
        "images": out_dir / "images.tsv",
        "assignment": out_dir / "assignment.tsv",
    }
    for name, path in files.items():
        with atomic_path(path) as tmp:
            if path.suffix == ".parquet":
                tables[name].to_parquet(tmp, index=False)
            else:
                tables[name].to_csv(tmp, sep="\t", index=False, na_rep="")
    return {**files, "grid": RESOURCE_DIR / "model_grid.yaml"}
