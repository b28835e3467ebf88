"""Leakage audit of an assignment: subject overlap, duplicate images, label conflicts, policy.

audit.json holds:
- ``subject_overlap``: one entry per subject with rows in more than one split:
  subject_id, splits, subject_split (its subject row), cross_split_images (the
  images outside the subject split, with their subsets) and ``declared``: true
  when every such image comes from a subset listed in declared_enrichment
  (matched on subset or source:subset).
- ``fold_overlap``: subjects whose rows carry more than one outer fold.
- ``exact_duplicates``: one entry per pair of images with identical decoded
  pixels (hashing.pixel_hash), with their subjects, splits, ``group`` (the
  shared hash), ``across_splits`` and ``leak`` (one in train/dev, one held out:
  eval or external).
- ``near_duplicates``: pairs within the Hamming threshold of the perceptual
  hash (method ``perceptual``, with ``distance``; pairs already exact are left
  out) and, for images without pixels, pairs sharing the metadata key
  subject_id + laterality + view (method ``metadata``, with ``key``; a pair with
  an image of a declared subset is marked ``declared`` and is no leak: it is the
  declared second examination, judged under subject_overlap). Two images
  that both have pixels are judged by their pixels only: the same breast and
  view of one person on another day is a different film.
- ``label_conflicts``: images with identical pixels whose ROI label sets differ
  (both labelled), and located ROIs (bbox, circle, mask) with the same geometry
  on the same image or on an identical copy whose label or fine class differ.
  Whole-image ROIs on one image are several findings, not a conflict.
- ``unreadable_images``: images marked has_pixels whose file could not be read
  (they are audited by their metadata key instead).
- ``violations``: what the policy acts on: undeclared subject overlap, fold
  overlap, and exact or near duplicates across train/dev vs eval or external
  (the external cohort is held out like eval). Label
  conflicts are reported but never stop the run.
An image's split is that of its image row in the assignment, or of its subject
row when the assignment has no image rows.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CalcsigError
from ..paths import atomic_path
from .hashing import hamming_matrix, perceptual_hash, pixel_hash

TRAINING = ("train", "dev")
HELD_OUT = ("eval", "external")


class AuditError(CalcsigError):
    """The audit found leaks and the policy is fail. `violations` lists every one."""

    def __init__(self, violations: list[str], report_path: str | None = None):
        self.violations = list(violations)
        where = f" (details in {report_path})" if report_path else ""
        shown = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(
            f"audit: {len(self.violations)} leak(s) with audit_policy fail{where}\n{shown}\n"
            "Fix the split or the corpus, declare the enrichment subset in "
            "partition.declared_enrichment, or set partition.audit_policy: warn."
        )


def _subset_listed(image: pd.Series, subsets: set[str]) -> bool:
    return str(image.get("subset")) in subsets or f"{image.get('source')}:{image.get('subset')}" in subsets


def image_hashes(images: pd.DataFrame, hash_size: int) -> tuple[pd.DataFrame, list[dict]]:
    """Pixel and perceptual hash of every image with pixels.

    Returns a frame indexed by image_id with columns pixel_hash and phash (packed
    bytes; None for images without pixels) and the list of unreadable images.
    calcsig.imageio is imported here so that the metadata-only audit needs no
    image reader.
    """
    from ..imageio import read_image

    records, unreadable = [], []
    for _, image in images.iterrows():
        has = bool(image.get("has_pixels")) if not pd.isna(image.get("has_pixels")) else False
        path = image.get("path")
        pixel, phash = None, None
        if has and isinstance(path, str) and path:
            try:
                pixels = read_image(path).pixels
                pixel, phash = pixel_hash(pixels), perceptual_hash(pixels, hash_size)
            except (CalcsigError, OSError, ValueError) as error:
                unreadable.append({"image_id": image["image_id"], "path": path, "problem": str(error)})
        records.append({"image_id": image["image_id"], "pixel_hash": pixel, "phash": phash})
    return pd.DataFrame.from_records(records, columns=["image_id", "pixel_hash", "phash"]).set_index(
        "image_id"
    ), unreadable


def image_splits(images: pd.DataFrame, assignment: pd.DataFrame) -> pd.Series:
    """image_id -> split from the assignment's image rows, else from the subject row."""
    image_rows = assignment[assignment["level"] == "image"].drop_duplicates("image_id").set_index("image_id")["split"]
    subject_rows = (
        assignment[assignment["level"] == "subject"].drop_duplicates("subject_id").set_index("subject_id")["split"]
    )
    by_subject = images["subject_id"].map(subject_rows)
    own = images["image_id"].map(image_rows)
    return pd.Series(own.where(own.notna(), by_subject).to_numpy(), index=images["image_id"].to_numpy(), name="split")


def _subject_overlap(
    images: pd.DataFrame, assignment: pd.DataFrame, split_of_image: pd.Series, declared: set[str]
) -> tuple[list[dict], list[dict]]:
    image_info = images.set_index("image_id")
    overlap, folds = [], []
    for subject, rows in assignment.groupby("subject_id", sort=True):
        splits = sorted(set(rows["split"].dropna()))
        fold_values = sorted(int(f) for f in rows["outer_fold"].dropna().unique())
        if len(fold_values) > 1:
            folds.append({"subject_id": subject, "outer_folds": fold_values})
        if len(splits) < 2:
            continue
        subject_row = rows.loc[rows["level"] == "subject", "split"]
        if len(subject_row) and pd.notna(subject_row.iloc[0]):
            main = subject_row.iloc[0]
        else:
            core = [
                split_of_image[i]
                for i in rows["image_id"].dropna().unique()
                if i in image_info.index and not _subset_listed(image_info.loc[i], declared)
            ]
            main = pd.Series(core or list(rows["split"].dropna())).value_counts().index[0]
        cross_rows = rows[(rows["split"] != main) & rows["split"].notna()]
        cross_images = sorted(set(cross_rows["image_id"].dropna()))
        subsets = sorted({str(image_info.loc[i, "subset"]) for i in cross_images if i in image_info.index})
        is_declared = bool(cross_images) and all(
            i in image_info.index and _subset_listed(image_info.loc[i], declared) for i in cross_images
        )
        overlap.append(
            {
                "subject_id": subject,
                "splits": splits,
                "subject_split": main,
                "cross_split_images": [
                    {
                        "image_id": i,
                        "split": split_of_image.get(i),
                        "subset": str(image_info.loc[i, "subset"]) if i in image_info.index else None,
                    }
                    for i in cross_images
                ],
                "cross_split_subsets": subsets,
                "declared": is_declared,
            }
        )
    return overlap, folds


def _pair_entry(a: str, b: str, subject_of: pd.Series, split_of: pd.Series, **extra) -> dict:
    a, b = sorted((a, b))
    splits = [split_of.get(a), split_of.get(b)]
    leak = (splits[0] in TRAINING and splits[1] in HELD_OUT) or (splits[1] in TRAINING and splits[0] in HELD_OUT)
    return {
        "image_ids": [a, b],
        "subject_ids": [subject_of.get(a), subject_of.get(b)],
        "splits": splits,
        **extra,
        "across_splits": splits[0] != splits[1],
        "leak": bool(leak),
    }


def _roi_key(roi: pd.Series, canonical: str) -> tuple | None:
    shape = roi.get("shape")
    if shape == "bbox":
        geometry = tuple(roi.get(c) for c in ("x_min", "y_min", "x_max", "y_max"))
    elif shape == "circle":
        geometry = tuple(roi.get(c) for c in ("center_x", "center_y", "radius_px"))
    elif shape == "mask":
        geometry = (roi.get("mask_path"),)
    else:
        return None
    if any(pd.isna(v) for v in geometry):
        return None
    return (canonical, shape) + tuple(float(v) if not isinstance(v, str) else v for v in geometry)


def _label_conflicts(images: pd.DataFrame, rois: pd.DataFrame, hashes: pd.DataFrame) -> list[dict]:
    canonical = {i: (h if isinstance(h, str) else f"id:{i}") for i, h in hashes["pixel_hash"].items()}
    conflicts = []
    labels_of_image = rois.groupby("image_id")["label"].agg(lambda s: tuple(sorted(set(s))))
    for digest, members in hashes[hashes["pixel_hash"].notna()].groupby("pixel_hash"):
        labelled = [i for i in sorted(members.index) if i in labels_of_image.index]
        sets = {i: labels_of_image[i] for i in labelled}
        if len(set(sets.values())) > 1:
            conflicts.append(
                {
                    "kind": "image",
                    "image_ids": labelled,
                    "roi_ids": [],
                    "labels": {i: list(v) for i, v in sets.items()},
                    "pixel_hash": digest,
                }
            )
    keyed: dict[tuple, list[int]] = {}
    for index, roi in rois.iterrows():
        key = _roi_key(roi, canonical.get(roi["image_id"], f"id:{roi['image_id']}"))
        if key is not None:
            keyed.setdefault(key, []).append(index)
    for members in keyed.values():
        if len(members) < 2:
            continue
        group = rois.loc[members]
        fine = group["fine_class"].dropna() if "fine_class" in group.columns else pd.Series(dtype=object)
        if group["label"].nunique() > 1 or fine.nunique() > 1:
            conflicts.append(
                {
                    "kind": "roi",
                    "image_ids": sorted(set(group["image_id"])),
                    "roi_ids": sorted(group["roi_id"]),
                    "labels": {r: lab for r, lab in zip(group["roi_id"], group["label"])},
                    "fine_classes": {
                        r: (None if pd.isna(f) else f)
                        for r, f in zip(group["roi_id"], group.get("fine_class", [None] * len(group)))
                    },
                }
            )
    return conflicts


def audit_corpus(
    images: pd.DataFrame,
    rois: pd.DataFrame,
    assignment: pd.DataFrame,
    *,
    declared_enrichment: list[str],
    hamming: int,
    hash_size: int,
    policy: str = "fail",
    hashes: pd.DataFrame | None = None,
    unreadable: list[dict] | None = None,
) -> dict:
    """The audit report (see module docstring) of `assignment` over the typed corpus tables.

    `hashes` (image_id -> pixel_hash, phash) may be given to skip reading
    images (tests, or a cache); otherwise the images are read.
    """
    if policy not in ("fail", "warn"):
        raise ValueError(f"audit policy must be 'fail' or 'warn', not {policy!r}")
    if hashes is None:
        hashes, unreadable = image_hashes(images, hash_size)
    hashes = hashes.reindex(images["image_id"])
    unreadable = list(unreadable or [])
    split_of = image_splits(images, assignment)
    subject_of = images.set_index("image_id")["subject_id"]
    overlap, fold_overlap = _subject_overlap(images, assignment, split_of, set(declared_enrichment))

    exact = []
    hashed = hashes[hashes["pixel_hash"].notna()]
    for digest, members in hashed.groupby("pixel_hash", sort=True):
        for a, b in combinations(sorted(members.index), 2):
            exact.append(_pair_entry(a, b, subject_of, split_of, group=digest))

    near = []
    with_phash = hashes[hashes["phash"].notna()]
    if len(with_phash) > 1:
        ids = list(with_phash.index)
        packed = np.stack([np.asarray(h, dtype=np.uint8) for h in with_phash["phash"]])
        for i, j, distance in hamming_matrix(packed, hamming):
            if with_phash["pixel_hash"].iloc[i] == with_phash["pixel_hash"].iloc[j]:
                continue
            near.append(_pair_entry(ids[i], ids[j], subject_of, split_of, method="perceptual", distance=distance))
    without = set(hashes.index[hashes["phash"].isna()])
    declared_ids = set(
        images.loc[[_subset_listed(row, set(declared_enrichment)) for _, row in images.iterrows()], "image_id"]
    )
    meta_columns = ("subject_id", "laterality", "view")
    if without and all(c in images.columns for c in meta_columns):
        keyed = images.dropna(subset=list(meta_columns))
        for key, group in keyed.groupby(list(meta_columns), sort=True):
            for a, b in combinations(sorted(group["image_id"]), 2):
                if a in without or b in without:
                    entry = _pair_entry(
                        a, b, subject_of, split_of, method="metadata", distance=None, key="|".join(str(k) for k in key)
                    )
                    # an image of a declared subset sharing the key is the declared
                    # second examination, not a copy: reported, judged by subject_overlap
                    entry["declared"] = bool(declared_ids & {a, b})
                    entry["leak"] = entry["leak"] and not entry["declared"]
                    near.append(entry)
    near.sort(key=lambda e: (e["method"], e["image_ids"]))

    conflicts = _label_conflicts(images, rois, hashes)

    violations = []
    for entry in overlap:
        if not entry["declared"]:
            violations.append(f"subject {entry['subject_id']} is in {', '.join(entry['splits'])} (undeclared overlap)")
    for entry in fold_overlap:
        violations.append(f"subject {entry['subject_id']} is in outer folds {entry['outer_folds']}")
    for name, entries in (("exact duplicate", exact), ("near duplicate", near)):
        for entry in entries:
            if entry["leak"]:
                how = (
                    f" ({entry['method']}"
                    + (f", distance {entry['distance']})" if entry.get("distance") is not None else ")")
                    if "method" in entry
                    else ""
                )
                violations.append(
                    f"{name} images {entry['image_ids'][0]} ({entry['splits'][0]}) and "
                    f"{entry['image_ids'][1]} ({entry['splits'][1]}){how}"
                )
    summary = {
        "subjects_in_several_splits": len(overlap),
        "undeclared_subject_overlap": sum(not e["declared"] for e in overlap),
        "declared_subject_overlap": sum(e["declared"] for e in overlap),
        "subjects_in_several_folds": len(fold_overlap),
        "exact_duplicate_pairs": len(exact),
        "exact_duplicate_pairs_leaking": sum(e["leak"] for e in exact),
        "near_duplicate_pairs": len(near),
        "near_duplicate_pairs_leaking": sum(e["leak"] for e in near),
        "label_conflicts": len(conflicts),
        "images": int(len(images)),
        "images_hashed": int(hashes["pixel_hash"].notna().sum()),
        "images_unreadable": len(unreadable),
        "violations": len(violations),
    }
    return {
        "policy": policy,
        "settings": {
            "declared_enrichment": list(declared_enrichment),
            "near_duplicate_hamming": hamming,
            "hash_size": hash_size,
        },
        "summary": summary,
        "subject_overlap": overlap,
        "fold_overlap": fold_overlap,
        "exact_duplicates": exact,
        "near_duplicates": near,
        "label_conflicts": conflicts,
        "unreadable_images": unreadable,
        "violations": violations,
    }


def audit_table(report: dict) -> pd.DataFrame:
    """The human-readable table: one row per finding, leaks first and marked LEAK.

    Columns: status (LEAK | declared | reported), check, items, splits, detail.
    A first row per check gives its count, so an empty check is visibly empty.
    """
    rows = []
    for entry in report["subject_overlap"]:
        rows.append(
            {
                "status": "declared" if entry["declared"] else "LEAK",
                "check": "subject_overlap",
                "items": entry["subject_id"],
                "splits": ",".join(entry["splits"]),
                "detail": f"subject split {entry['subject_split']}; other split images: "
                + ", ".join(f"{i['image_id']} ({i['split']}, {i['subset']})" for i in entry["cross_split_images"]),
            }
        )
    for entry in report["fold_overlap"]:
        rows.append(
            {
                "status": "LEAK",
                "check": "fold_overlap",
                "items": entry["subject_id"],
                "splits": "",
                "detail": "outer folds " + ",".join(str(f) for f in entry["outer_folds"]),
            }
        )
    for check in ("exact_duplicates", "near_duplicates"):
        for entry in report[check]:
            detail = f"subjects {','.join(str(s) for s in entry['subject_ids'])}"
            if entry.get("method"):
                detail += f"; {entry['method']}"
                detail += (
                    f" distance {entry['distance']}" if entry.get("distance") is not None else f" key {entry['key']}"
                )
            rows.append(
                {
                    "status": "LEAK" if entry["leak"] else "reported",
                    "check": check,
                    "items": ",".join(entry["image_ids"]),
                    "splits": ",".join(str(s) for s in entry["splits"]),
                    "detail": detail,
                }
            )
    for entry in report["label_conflicts"]:
        rows.append(
            {
                "status": "reported",
                "check": "label_conflicts",
                "items": ",".join(entry["roi_ids"] or entry["image_ids"]),
                "splits": "",
                "detail": f"{entry['kind']}: " + ", ".join(f"{k}={v}" for k, v in entry["labels"].items()),
            }
        )
    for entry in report["unreadable_images"]:
        rows.append(
            {
                "status": "reported",
                "check": "unreadable_images",
                "items": entry["image_id"],
                "splits": "",
                "detail": entry["problem"],
            }
        )
    findings = pd.DataFrame(rows, columns=["status", "check", "items", "splits", "detail"])
    counts = []
    for check in (
        "subject_overlap",
        "fold_overlap",
        "exact_duplicates",
        "near_duplicates",
        "label_conflicts",
        "unreadable_images",
    ):
        part = findings[findings["check"] == check]
        leaks = int((part["status"] == "LEAK").sum())
        counts.append(
            {
                "status": "LEAK" if leaks else "count",
                "check": check,
                "items": str(len(part)),
                "splits": "",
                "detail": f"{leaks} leak(s) under policy {report['policy']}" if leaks else "no leak",
            }
        )
    order = {"LEAK": 0, "declared": 1, "reported": 2}
    findings = (
        findings.assign(_order=findings["status"].map(order))
        .sort_values(["_order", "check", "items"], kind="stable")
        .drop(columns="_order")
    )
    return pd.concat([pd.DataFrame(counts), findings], ignore_index=True)


def write_audit(report: dict, out_json: str | Path, out_table: str | Path) -> None:
    """Write audit.json and the TSV table, each atomically."""
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    with atomic_path(out_table) as tmp:
        audit_table(report).to_csv(tmp, sep="\t", index=False)


def enforce_policy(report: dict, report_path: str | None = None) -> None:
    """Raise AuditError listing every violation when the policy is fail; do nothing under warn."""
    if report["policy"] == "fail" and report["violations"]:
        raise AuditError(report["violations"], report_path)
