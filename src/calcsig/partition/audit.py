"""Leakage audit of an assignment: subject overlap, duplicate images, label conflicts, at every level.

audit.json holds:
- ``subject_overlap``: one entry per subject with rows in more than one split:
  subject_id, splits, subject_split (its subject row), cross_split_images (the
  images outside the subject split, with their subsets) and ``declared``: true
  when every such image comes from a subset listed in declared_enrichment
  (matched on subset or source:subset).
- ``fold_overlap``: subjects whose rows carry more than one outer fold.
- ``exact_duplicates``: one entry per pair of images with identical decoded
  pixels (hashing.pixel_hash), with their subjects, splits, ``group`` (the
  shared hash), ``across_splits``, ``straddles`` (the levels whose sides
  separate the two images), ``leak_levels`` (those where that is a violation)
  and ``leak`` (any leak level).
- ``near_duplicates``: pairs within the Hamming threshold of the perceptual
  hash (method ``perceptual``, with ``distance``; pairs already exact are left
  out) and, for images without pixels, pairs sharing the metadata key
  subject_id + laterality + view (method ``metadata``, with ``key``; a pair with
  an image of a declared subset is marked ``declared`` and is no leak: it is the
  declared second examination, judged under subject_overlap). Two images
  that both have pixels are judged by their pixels only: the same breast and
  view of one person on another day is a different film. Same keys as exact.
- ``levels``: one section per level (levels.py): ``split``, ``outer_fold`` and,
  when the model's number of inner folds and seed are given, ``inner_fold:<k>``
  for each outer fold k and ``inner_fold:eval`` for the final model. Each has
  ``checked`` (false with a ``reason`` when its folds cannot be made),
  ``settings``, ``straddles`` (every duplicate pair or subject on two sides of
  the level: kind ``subject``, ``exact_duplicate`` or ``near_duplicate``, with
  image_ids, subject_ids, sides, declared, violation) and their counts.
  A straddle is a violation when it is not declared and, at the split level,
  when one side is training (train, dev) and the other held out (eval,
  external); at a fold level every undeclared straddle is one. A subject
  straddles the split level exactly when it is in subject_overlap.
- ``label_conflicts``: images with identical pixels, or a near-duplicate pair
  (perceptual hash, with ``distance``), whose ROI label sets differ (both
  labelled), and located ROIs (bbox, circle, mask) with the same geometry on
  the same image or on an identical copy whose label or fine class differ.
  Whole-image ROIs on one image are several findings, not a conflict. Each is
  a violation: one finding cannot carry two labels (or two fine classes).
- ``unreadable_images``: images marked has_pixels whose file could not be read
  (they are audited by their metadata key instead).
- ``violations``: what the policy acts on: undeclared subject overlap, fold
  overlap, every violating straddle at any level, and every label conflict
  (the external cohort is held out like eval).
An image's split is that of its image row in the assignment, or of its subject
row when the assignment has no image rows.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import pandas as pd

from ..errors import CalcsigError
from ..paths import atomic_path
from .hashing import duplicate_pairs, image_hashes
from .levels import OUTER_FOLD, SPLIT, Level, audit_levels, image_splits

TRAINING = ("train", "dev")
HELD_OUT = ("eval", "external")
CHECKS = (
    "subject_overlap",
    "fold_overlap",
    "exact_duplicates",
    "near_duplicates",
    "label_conflicts",
    "unreadable_images",
)


class AuditError(CalcsigError):
    """The audit found leaks and the policy is fail. `violations` lists every one."""

    def __init__(self, violations: list[str], report_path: str | None = None):
        self.violations = list(violations)
        where = f" (details in {report_path})" if report_path else ""
        shown = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(
            f"audit: {len(self.violations)} violation(s) with audit_policy fail{where}\n{shown}\n"
            "Fix the split or the corpus (a label conflict: correct the labels, or drop one of the ROIs), "
            "declare the enrichment subset in partition.declared_enrichment, or set "
            "partition.audit_policy: warn."
        )


def _subset_listed(image: pd.Series, subsets: set[str]) -> bool:
    return str(image.get("subset")) in subsets or f"{image.get('source')}:{image.get('subset')}" in subsets


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
    return {
        "image_ids": [a, b],
        "subject_ids": [subject_of.get(a), subject_of.get(b)],
        "splits": splits,
        **extra,
        "across_splits": splits[0] != splits[1],
    }


def _violates(level: str, sides: list, declared: bool) -> bool:
    """Whether a straddle at `level` with these two sides is a violation (see the module docstring)."""
    if declared:
        return False
    if level == SPLIT:
        return (sides[0] in TRAINING and sides[1] in HELD_OUT) or (sides[1] in TRAINING and sides[0] in HELD_OUT)
    return True


def _level_section(level: Level, pairs: list[tuple[str, dict]], subject_straddles: list[dict]) -> dict:
    """The per-level section: subject and pair straddles, each judged by `_violates`."""
    straddles = list(subject_straddles)
    for kind, entry in pairs:
        a, b = entry["image_ids"]
        if a not in level.side_of_image.index or b not in level.side_of_image.index:
            continue
        sides = [level.side_of_image[a], level.side_of_image[b]]
        if sides[0] == sides[1]:
            continue
        declared = bool(entry.get("declared", False))
        item = {
            "kind": kind,
            "image_ids": [a, b],
            "subject_ids": list(entry["subject_ids"]),
            "sides": sides,
            "declared": declared,
            "violation": _violates(level.name, sides, declared),
        }
        for key in ("method", "distance"):
            if key in entry:
                item[key] = entry[key]
        straddles.append(item)
        entry["straddles"].append(level.name)
        if item["violation"]:
            entry["leak_levels"].append(level.name)
    return {
        "checked": level.checked,
        **({"reason": level.reason} if level.reason else {}),
        "settings": level.settings,
        "n_straddles": len(straddles),
        "n_violations": sum(s["violation"] for s in straddles),
        "straddles": straddles,
    }


def _subject_straddles(level: Level, overlap: list[dict], images: pd.DataFrame) -> list[dict]:
    """Subjects on several sides of a level; at the split level, the subject_overlap entries."""
    if level.name == SPLIT:
        return [
            {
                "kind": "subject",
                "image_ids": [i["image_id"] for i in e["cross_split_images"]],
                "subject_ids": [e["subject_id"]],
                "sides": e["splits"],
                "declared": e["declared"],
                "violation": not e["declared"],
            }
            for e in overlap
        ]
    images_of = images.groupby("subject_id")["image_id"].agg(sorted)
    side = level.side_of_image
    result = []
    for subject, sides in level.subject_sides.items():
        placed = [i for i in images_of.get(subject, []) if i in side.index]
        result.append(
            {
                "kind": "subject",
                "image_ids": placed,
                "subject_ids": [subject],
                "sides": sides,
                "declared": False,
                "violation": True,
            }
        )
    return result


def _straddle_text(level: str, item: dict) -> str:
    """One violation line: what straddles, on which sides, at which level."""
    if item["kind"] == "subject":
        return f"subject {item['subject_ids'][0]} is on sides {', '.join(map(str, item['sides']))} of level {level}"
    name = item["kind"].replace("_", " ")
    how = ""
    if item.get("method"):
        how = f" ({item['method']}" + (f", distance {item['distance']})" if item.get("distance") is not None else ")")
    (a, b), (sa, sb) = item["image_ids"], item["sides"]
    return f"{name} images {a} ({sa}) and {b} ({sb}){how} straddle level {level}"


def _conflict_text(conflict: dict) -> str:
    labels = ", ".join(f"{k} {v}" for k, v in conflict["labels"].items())
    if conflict["kind"] == "image":
        how = "identical images"
        if "distance" in conflict:
            how = f"near-duplicate images (distance {conflict['distance']})"
        return f"label conflict: {how} with different ROI labels: {labels}"
    fine = {k: v for k, v in conflict.get("fine_classes", {}).items() if v is not None}
    extra = f"; fine classes {', '.join(f'{k} {v}' for k, v in fine.items())}" if fine else ""
    return (
        f"label conflict: ROIs at the same place on image(s) {', '.join(conflict['image_ids'])} "
        f"are labelled {labels}{extra}"
    )


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


def _label_conflicts(images: pd.DataFrame, rois: pd.DataFrame, hashes: pd.DataFrame, pairs: pd.DataFrame) -> list[dict]:
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
    for pair in pairs[pairs["method"] == "perceptual"].itertuples(index=False):
        a, b = pair.image_a, pair.image_b
        if a in labels_of_image.index and b in labels_of_image.index and labels_of_image[a] != labels_of_image[b]:
            conflicts.append(
                {
                    "kind": "image",
                    "image_ids": [a, b],
                    "roi_ids": [],
                    "labels": {a: list(labels_of_image[a]), b: list(labels_of_image[b])},
                    "distance": int(pair.distance),
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
    inner_folds: int | None = None,
    seed: int | None = None,
) -> dict:
    """The audit report (see module docstring) of `assignment` over the typed corpus tables.

    `hashes` (image_id -> pixel_hash, phash) may be given to skip reading
    images (the partition's hash table, tests); otherwise the images are read.
    inner_folds, seed: the model stage's model.inner_folds and model.seed; with
    both given, the inner folds of every outer fold are checked too.
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

    exact, near = [], []
    pixel_pairs = duplicate_pairs(hashes, hamming)
    for pair in pixel_pairs.itertuples(index=False):
        if pair.method == "exact":
            exact.append(_pair_entry(pair.image_a, pair.image_b, subject_of, split_of, group=pair.pixel_hash))
        else:
            near.append(
                _pair_entry(
                    pair.image_a, pair.image_b, subject_of, split_of, method="perceptual", distance=int(pair.distance)
                )
            )
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
                    near.append(entry)
    near.sort(key=lambda e: (e["method"], e["image_ids"]))
    for entry in exact + near:
        entry.update(straddles=[], leak_levels=[])

    pairs = [("exact_duplicate", e) for e in exact] + [("near_duplicate", e) for e in near]
    levels = {}
    for level in audit_levels(images, rois, assignment, inner_folds=inner_folds, seed=seed):
        levels[level.name] = _level_section(level, pairs, _subject_straddles(level, overlap, images))
    for entry in exact + near:
        entry["leak"] = bool(entry["leak_levels"])

    conflicts = _label_conflicts(images, rois, hashes, pixel_pairs)

    violations = []
    for entry in overlap:
        if not entry["declared"]:
            violations.append(f"subject {entry['subject_id']} is in {', '.join(entry['splits'])} (undeclared overlap)")
    for entry in fold_overlap:
        violations.append(f"subject {entry['subject_id']} is in outer folds {entry['outer_folds']}")
    for name, section in levels.items():
        for item in section["straddles"]:
            # subject overlap and fold overlap are listed above, once
            if item["violation"] and not (item["kind"] == "subject" and name in (SPLIT, OUTER_FOLD)):
                violations.append(_straddle_text(name, item))
    violations += [_conflict_text(c) for c in conflicts]
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
        "straddles_per_level": {name: section["n_straddles"] for name, section in levels.items()},
        "violations_per_level": {name: section["n_violations"] for name, section in levels.items()},
        "levels_not_checked": [name for name, section in levels.items() if not section["checked"]],
        "violations": len(violations),
    }
    return {
        "policy": policy,
        "settings": {
            "declared_enrichment": list(declared_enrichment),
            "near_duplicate_hamming": hamming,
            "hash_size": hash_size,
            "inner_folds": inner_folds,
            "seed": seed,
        },
        "summary": summary,
        "subject_overlap": overlap,
        "fold_overlap": fold_overlap,
        "exact_duplicates": exact,
        "near_duplicates": near,
        "levels": levels,
        "label_conflicts": conflicts,
        "unreadable_images": unreadable,
        "violations": violations,
    }


def audit_table(report: dict) -> pd.DataFrame:
    """The human-readable table: one row per finding, violations first.

    Columns: status (LEAK | CONFLICT | declared | reported), check, items,
    splits (the sides: splits, or folds for a fold level), detail. A first row
    per check, then per level, gives its count, so an empty check is visibly
    empty; a level that could not be checked says so. Findings at the split
    level are the subject_overlap and duplicate rows; the fold levels add a row
    per straddling pair (and per subject on several inner folds; subjects on
    several outer folds are the fold_overlap rows).
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
            if entry.get("straddles"):
                detail += "; on two sides of: " + ", ".join(entry["straddles"])
            rows.append(
                {
                    "status": "LEAK" if entry["leak"] else ("declared" if entry.get("declared") else "reported"),
                    "check": check,
                    "items": ",".join(entry["image_ids"]),
                    "splits": ",".join(str(s) for s in entry["splits"]),
                    "detail": detail,
                }
            )
    levels = report.get("levels", {})
    for name, section in levels.items():
        if name == SPLIT:
            continue
        for item in section["straddles"]:
            if item["kind"] == "subject" and name == OUTER_FOLD:
                continue
            rows.append(
                {
                    "status": "LEAK" if item["violation"] else ("declared" if item["declared"] else "reported"),
                    "check": name,
                    "items": ",".join(item["subject_ids"] if item["kind"] == "subject" else item["image_ids"]),
                    "splits": ",".join(str(s) for s in item["sides"]),
                    "detail": f"{item['kind'].replace('_', ' ')}; subjects {','.join(map(str, item['subject_ids']))}",
                }
            )
    for entry in report["label_conflicts"]:
        rows.append(
            {
                "status": "CONFLICT",
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
    for check in CHECKS:
        part = findings[findings["check"] == check]
        flagged = int(part["status"].isin(["LEAK", "CONFLICT"]).sum())
        counts.append(
            {
                "status": ("CONFLICT" if check == "label_conflicts" else "LEAK") if flagged else "count",
                "check": check,
                "items": str(len(part)),
                "splits": "",
                "detail": f"{flagged} violation(s) under policy {report['policy']}" if flagged else "no violation",
            }
        )
    for name, section in levels.items():
        if not section["checked"]:
            status, detail = "not checked", section.get("reason", "")
        else:
            status = "LEAK" if section["n_violations"] else "count"
            detail = f"level {name}: {section['n_violations']} violation(s) among its straddles"
        counts.append(
            {
                "status": status,
                "check": f"level:{name}",
                "items": str(section["n_straddles"]),
                "splits": "",
                "detail": detail,
            }
        )
    order = {"LEAK": 0, "CONFLICT": 0, "declared": 1, "reported": 2}
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
