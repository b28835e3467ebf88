"""A complete, small set of report inputs in the layout the stages write (docs/contracts.md and the agreed
metric keys), computed from simulated predictions with the real libraries (scikit-learn curves, the
segmentation FROC, the audit table), for the report's unit and browser tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from calcsig.partition.audit import audit_table
from calcsig.segment.evaluate import froc_curve

N_SUBJECTS = 12
GRID = np.linspace(0.0, 1.0, 101)


def _tsv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, sep="\t", index=False)
    return path


def _json(document, path: Path) -> Path:
    path.write_text(json.dumps(document, indent=1))
    return path


def corpus(root: Path, has_pixels: bool = True) -> dict[str, Path]:
    subjects = [f"S{k:02d}" for k in range(1, N_SUBJECTS + 1)]
    images, rois, assignment = [], [], []
    for k, subject in enumerate(subjects):
        split = ["train", "train", "dev", "eval"][k % 4]
        fold = "" if split == "eval" else str(k % 2 + 1)
        assignment.append(["subject", subject, "", "", split, fold])
        for view in ("CC", "MLO"):
            image_id = f"{subject}_{view}"
            roi_id = f"{image_id}_c1"
            label = "actionable" if k % 2 else "benign"
            images.append([image_id, subject, str(has_pixels), ["site_a", "site_b"][k % 2], "ABCD"[k % 4], "main"])
            rois.append([roi_id, image_id, "bbox", label, "dcis" if label == "actionable" else "benign"])
            assignment.append(["image", subject, image_id, "", split, fold])
            assignment.append(["roi", subject, image_id, roi_id, split, fold])
    paths = {
        "images": _tsv(
            pd.DataFrame(images, columns=["image_id", "subject_id", "has_pixels", "site", "density", "subset"]),
            root / "images.tsv",
        ),
        "rois": _tsv(
            pd.DataFrame(rois, columns=["roi_id", "image_id", "shape", "label", "fine_class"]), root / "rois.tsv"
        ),
        "subjects": _tsv(pd.DataFrame({"subject_id": subjects}), root / "subjects.tsv"),
        "assignment": _tsv(
            pd.DataFrame(assignment, columns=["level", "subject_id", "image_id", "roi_id", "split", "outer_fold"]),
            root / "assignment.tsv",
        ),
    }
    return paths


def splits(root: Path, findings: bool = False) -> dict[str, Path]:
    rows = []
    for covariate, levels, smds in (
        ("site", ["site_a", "site_b"], [0.05, 0.31]),
        ("density", ["A", "B", "C", "D"], [0.02, 0.04, 0.08, 0.06]),
    ):
        for level, smd in zip(levels, smds):
            rows.append(
                {"scope": "split", "covariate": covariate, "kind": "categorical", "level": level, "n_total": 6}
                | {"n_train": 3, "value_train": 0.5, "n_dev": 1, "value_dev": 0.5, "n_eval": 2, "value_eval": 0.5}
                | {"smd_train_vs_dev": smd, "smd_train_vs_eval": -smd / 2, "smd_dev_vs_eval": smd / 3}
                | {"max_abs_smd": smd, "cramers_v": 0.1, "chi2_p": 0.8}
            )
            rows.append(
                {"scope": "outer_fold", "covariate": covariate, "kind": "categorical", "level": level, "n_total": 4}
                | {"n_fold_1": 2, "value_fold_1": 0.5, "n_fold_2": 2, "value_fold_2": 0.5}
                | {"smd_fold_1_vs_fold_2": smd / 4}
            )
    balance = {
        "summary": {
            "scopes": {
                "split": {"n_subjects": {"train": 6, "dev": 3, "eval": 3}, "label_max_deviation_pp": 2.5},
                "outer_fold": {"n_subjects": {"fold_1": 5, "fold_2": 4}, "label_max_deviation_pp": 4.0},
            }
        }
    }
    overlap = (
        [
            {
                "subject_id": "S03",
                "splits": ["dev", "eval"],
                "subject_split": "dev",
                "cross_split_images": [{"image_id": "S03_MLO", "split": "eval", "subset": "main"}],
                "cross_split_subsets": ["main"],
                "declared": False,
            }
        ]
        if findings
        else []
    )
    duplicates = (
        [
            {
                "image_ids": ["S01_CC", "S04_CC"],
                "subject_ids": ["S01", "S04"],
                "splits": ["train", "eval"],
                "group": "abc",
                "across_splits": True,
                "leak": True,
            }
        ]
        if findings
        else []
    )
    audit = {
        "policy": "warn",
        "summary": {"images_hashed": 2 * N_SUBJECTS},
        "subject_overlap": overlap,
        "fold_overlap": [],
        "exact_duplicates": duplicates,
        "near_duplicates": [],
        "label_conflicts": [],
        "unreadable_images": [],
        "violations": [],
    }
    return {
        "balance": _tsv(pd.DataFrame(rows), root / "balance.tsv"),
        "balance_json": _json(balance, root / "balance.json"),
        "audit": _json(audit, root / "audit.json"),
        "audit_table": _tsv(audit_table(audit), root / "audit.tsv"),
    }


def segmentation(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    def block(separation: float) -> dict:
        is_tp = rng.random(400) < 0.4
        scores = rng.normal(is_tp * separation, 1.0)
        froc = froc_curve(scores, is_tp, n_truth=180, area_cm2=120.0)
        keep = scores > 1.0
        return {
            "froc": froc.corners(),
            "tpr_at_0.4_fp_per_cm2": froc.sensitivity_at(0.4),
            "operating_point_tpr": float(is_tp[keep].sum() / 180),
            "operating_point_fp_per_cm2": float((~is_tp[keep]).sum() / 120.0),
            "n_images_pixel_truth": 10,
            "n_truth_objects": 180,
            "breast_area_cm2": 120.0,
            "dice": 0.7,
            "mean_iou_matched": 0.6,
            "cluster_sensitivity": 0.8,
            "false_clusters_per_normal_image": 0.3,
            "cluster_froc": {
                "false_clusters_per_normal_image": [0.0, 0.1, 0.3, 0.9, 1.5],
                "cluster_sensitivity": [0.0, 0.4, 0.8, 0.9, 1.0],
                "threshold": [None, 0.9, 0.5, 0.3, 0.1],
            },
        }

    metrics = block(2.5) | {"n_images": 10, "n_annotated_clusters": 5, "n_normal_images": 4}
    metrics["plain_hdog"] = block(1.0)
    metrics["operating_point"] = {
        "threshold": 0.5,
        "rule": "highest threshold reaching the target cluster sensitivity",
        "target_cluster_sensitivity": 0.8,
        "chosen_on": "train split out-of-fold scores",
    }
    galleries = {}
    for name in ("gallery", "gallery_worst"):
        galleries[name] = root / f"{name}.png"
        Image.fromarray((rng.random((60, 120)) * 255).astype(np.uint8)).save(galleries[name])
    return {"segmentation": _json(metrics, root / "segmentation.json")} | galleries


def features(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    roi_ids = [f"S{k:02d}_{v}_c1" for k in range(1, N_SUBJECTS + 1) for v in ("CC", "MLO")]
    n_objects = rng.integers(0, 9, len(roi_ids))
    objects = pd.DataFrame(
        {
            "roi_id": np.repeat(roi_ids, n_objects),
            "object_id": np.concatenate([np.arange(1, n + 1) for n in n_objects]),
            "fg_shape2D_Sphericity": rng.random(int(n_objects.sum())),
            "bg_firstorder_Mean": rng.random(int(n_objects.sum())),
            "rp_area_mm2": rng.random(int(n_objects.sum())),
        }
    )
    rois = pd.DataFrame(
        {
            "roi_id": roi_ids,
            "n_objects": n_objects,
            "topo_s1_n_components": n_objects,
            "dist_linearity": rng.random(len(roi_ids)),
            "hc_area_std_mm2": rng.random(len(roi_ids)),
            "qc_fg_skipped_too_small": (n_objects == 1).astype(int),
        }
    )
    objects.to_parquet(root / "objects.parquet")
    rois.to_parquet(root / "rois.parquet")
    search = {
        "model": "bag_of_objects",
        "fold": "eval",
        "feature_importance": {
            "kind": "gain",
            "values": {"mean__dist_linearity": 12.5, "rp_area_mm2": 30.0, "cluster_7": 4.0},
        },
    }
    return {
        "objects": root / "objects.parquet",
        "features": root / "rois.parquet",
        "importance": _json(search, root / "search.json"),
    }


def _metric(value: float, width: float = 0.1) -> dict:
    return {"value": value, "ci_low": max(0.0, value - width), "ci_high": min(1.0, value + width)}


def _set_block(y: np.ndarray, p: np.ndarray, subjects: np.ndarray, rng: np.random.Generator, band: bool) -> dict:
    fpr, tpr, _ = roc_curve(y, p)
    curve = np.interp(GRID, fpr, tpr)
    boots = []
    for _ in range(50):
        chosen = rng.choice(np.unique(subjects), len(np.unique(subjects)))
        rows = np.concatenate([np.flatnonzero(subjects == s) for s in chosen])
        if len(set(y[rows])) == 2:
            f, t, _ = roc_curve(y[rows], p[rows])
            boots.append(np.interp(GRID, f, t))
    precision, recall, _ = precision_recall_curve(y, p)
    called = p >= 0.5
    tp, fp = int((called & (y == 1)).sum()), int((called & (y == 0)).sum())
    tn, fn = int((~called & (y == 0)).sum()), int((~called & (y == 1)).sum())
    sens, spec = tp / max(tp + fn, 1), tn / max(tn + fp, 1)
    edges = np.linspace(0, 1, 6)
    reliability = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (p >= low) & (p < high if high < 1 else p <= high)
        reliability.append(
            {
                "bin_low": float(low),
                "bin_high": float(high),
                "n": int(inside.sum()),
                "mean_predicted": float(p[inside].mean()) if inside.any() else None,
                "observed_fraction": float(y[inside].mean()) if inside.any() else None,
            }
        )
    prevalence = y.mean()
    net_benefit = []
    for t in np.arange(0.05, 0.96, 0.05):
        c = p >= t
        w = t / (1 - t)
        model = (c & (y == 1)).sum() / len(y) - (c & (y == 0)).sum() / len(y) * w
        net_benefit.append(
            {"threshold": float(t), "model": float(model), "treat_all": float(prevalence - (1 - prevalence) * w)}
            | {"treat_none": 0.0}
        )
    table = [
        {
            "threshold": float(t),
            "sensitivity": float(((p >= t) & (y == 1)).sum() / max((y == 1).sum(), 1)),
            "specificity": float(((p < t) & (y == 0)).sum() / max((y == 0).sum(), 1)),
        }
        for t in np.arange(0.1, 1.0, 0.1)
    ]
    block = {
        "n": len(y),
        "n_positive": int(y.sum()),
        "n_subjects": len(np.unique(subjects)),
        "metrics": {
            "roc_auc": _metric(float(roc_auc_score(y, p))),
            "sensitivity": _metric(sens),
            "specificity": _metric(spec),
            "pr_auc": _metric(0.7),
        },
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "threshold_table": table,
        "benign_biopsies_avoided": {"fraction": spec, "benign_spared": tn, "benign_total": tn + fp},
        "brier": float(np.mean((p - y) ** 2)),
        "reliability": reliability,
        "net_benefit": net_benefit,
        "roc": {"fpr": GRID.tolist(), "tpr": curve.tolist()},
        "pr": {"recall": recall.tolist(), "precision": precision.tolist()},
        "operating_points": {
            name: {
                "threshold": threshold,
                "rule": rule,
                "sensitivity": float(((p >= threshold) & (y == 1)).sum() / max((y == 1).sum(), 1)),
                "specificity": float(((p < threshold) & (y == 0)).sum() / max((y == 0).sum(), 1)),
                "benign_biopsies_avoided": _metric(spec, 0.15),
                "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
            }
            for name, threshold, rule in (
                ("target", 0.3, "highest threshold with inner-fold sensitivity >= 0.95"),
                ("margin", 0.2, "the target threshold lowered by the inner folds' spread"),
            )
        },
    }
    if band and boots:
        block["roc"]["tpr_ci_low"] = np.quantile(boots, 0.025, axis=0).tolist()
        block["roc"]["tpr_ci_high"] = np.quantile(boots, 0.975, axis=0).tolist()
    return block


def models(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    n = 2 * N_SUBJECTS
    subjects = np.repeat([f"S{k:02d}" for k in range(1, N_SUBJECTS + 1)], 2)
    y = np.tile([0, 0, 1, 1], n // 4)
    document = {
        "main_model": "bag_of_objects",
        "settings": {"ci_level": 0.95, "target_sensitivity": 0.95, "bootstrap_repeats": 50, "p_adjustment": "holm"}
        | {"p_adjustment_family": "every comparison with the main model"},
        "cohort": {
            "n_corpus_rois": n + 3,
            "n_included": n,
            "included": {"by_label": {"benign": n // 2, "actionable": n // 2}, "by_split": {"train": 12, "dev": 6}}
            | {},
            "excluded": {"no_location": 2, "not_calcification": 1},
        },
        "models": {},
        "comparisons": [],
    }
    for name, skill in (("bag_of_objects", 0.9), ("mean_std", 0.5)):
        p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + skill * (2 * y - 1))))
        model = {}
        for level in ("roi", "image"):
            model[level] = {s: _set_block(y, p, subjects, rng, band=True) for s in ("cv", "eval")}
        model["roi"]["folds"] = {
            str(k): {"n": n // 2, "roc": {"fpr": GRID.tolist(), "tpr": np.sqrt(GRID).tolist()}} for k in (1, 2)
        }
        document["models"][name] = model
    for level in ("roi", "image"):
        for s in ("cv", "eval"):
            document["comparisons"].append(
                {
                    "a": "bag_of_objects",
                    "b": "mean_std",
                    "level": level,
                    "set": s,
                    "n": n,
                    "n_subjects": N_SUBJECTS,
                    "clustered": {
                        "auc_difference": _metric(0.12) | {"p_value": 0.04, "p_adjusted": 0.08},
                        "accuracy_difference": _metric(0.05) | {"p_value": 0.3, "p_adjusted": 0.6},
                        "sensitivity_difference": _metric(0.02) | {"p_value": 0.7, "p_adjusted": 1.0},
                        "specificity_difference": _metric(0.07) | {"p_value": 0.2, "p_adjusted": 0.4},
                        "obuchowski": {"auc_a": 0.8, "auc_b": 0.68, "difference": 0.12, "se": 0.06, "z": 2.0}
                        | {"p_value": 0.046, "p_adjusted": 0.09},
                    },
                    "delong": {"auc_a": 0.8, "auc_b": 0.68, "difference": 0.12, "p_value": 0.01}
                    | {"assumes_independent_cases": True},
                    "mcnemar": {"p_value": 0.2, "method": "exact", "assumes_independent_cases": True},
                    "quote": "clustered",
                }
            )
    table = pd.DataFrame(
        [
            {"model": m, "level": "roi", "set": "cv", "metric": "roc_auc"} | block["roi"]["cv"]["metrics"]["roc_auc"]
            for m, block in document["models"].items()
        ]
    )
    return {"models": _json(document, root / "models.json"), "models_table": _tsv(table, root / "models.tsv")}


def cohort(root: Path) -> dict[str, Path]:
    rows = [[f"S{k:02d}_{v}_c1", "", True, ""] for k in range(1, N_SUBJECTS + 1) for v in ("CC", "MLO")]
    rows += [["X1", "", False, "no_location"], ["X2", "", False, "no_location"], ["X3", "", False, "not_calcification"]]
    table = pd.DataFrame(rows, columns=["roi_id", "image_id", "included", "reason"])
    summary = json.loads((root / "models.json").read_text())["cohort"] if (root / "models.json").exists() else {}
    return {
        "cohort_rois": _tsv(table, root / "cohort_rois.tsv"),
        "cohort_summary": _json(summary, root / "summary.json"),
    }


def complete_inputs(root: Path, seed: int = 7, findings: bool = False) -> dict[str, Path]:
    """Every input the report reads, as the stages would write them for a small study."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = corpus(root) | splits(root, findings) | segmentation(root, rng) | features(root, rng) | models(root, rng)
    return paths | cohort(root)


def metadata_only_inputs(root: Path) -> dict[str, Path]:
    """A corpus without pixels: corpus tables, split and audit only."""
    root.mkdir(parents=True, exist_ok=True)
    return corpus(root, has_pixels=False) | splits(root)
