"""Partition groups: subjects that no split or fold may separate, because their images are copies.

A duplicate pair (hashing.duplicate_pairs: identical pixels, or perceptual
hashes within the Hamming threshold) whose images belong to two subjects links
those subjects; the groups are the connected components of the links, so a
chain A ~ B ~ C is one group even when A and C share no image. Decisions:
- ``group_id`` is the smallest subject_id of the group (as text), so a subject
  in no duplicate pair has its own subject_id as group_id, and a group keeps
  its ID when its pairs are found in another order.
- Images without pixels are in no pixel pair; the audit's fallback for them,
  the key subject_id + laterality + view, never crosses subjects, so such an
  image simply stays with its subject.
- An image of an enrichment subset is forced into train whatever its subject's
  split. A pair with exactly one such image therefore pins the group to
  ``train``, the only place where both copies are training data. A pair between
  a development image and an external (held-out) one pins the group to
  ``eval``, where its copy cannot be trained on. A group pinned both ways
  cannot be kept out of every split (an enrichment image copied into the
  external cohort); it is pinned to train and listed under ``conflicts``, and
  the audit reports the pair.
- Declared enrichment overlap (one subject's enrichment images in train, the
  rest held out) is untouched: it links no subjects and pins nothing unless an
  enrichment image is itself a copy of another image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

TRAIN = "train"
EVAL = "eval"


@dataclass(frozen=True)
class PartitionGroups:
    """Result of `partition_groups`.

    group_of: subject_id -> group_id for every subject of the images table;
    pinned: group_id -> ``train`` or ``eval`` for groups a pair pins (see the
    module docstring); conflicts: groups pinned both ways; links: the pairs
    that joined two subjects (image_a, image_b, method, subject_a, subject_b).
    """

    group_of: pd.Series
    pinned: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    links: pd.DataFrame = field(default_factory=pd.DataFrame)

    def members(self) -> dict[str, list[str]]:
        """group_id -> its subject IDs (sorted), for groups of two or more subjects."""
        sizes = self.group_of.value_counts()
        shared = self.group_of[self.group_of.isin(sizes.index[sizes > 1])]
        return {g: sorted(s) for g, s in shared.groupby(shared, sort=True).groups.items()}

    def summary(self) -> dict:
        """Counts and members for balance.json: groups, subjects in them, pins, conflicts."""
        members = self.members()
        return {
            "groups_with_several_subjects": len(members),
            "subjects_in_shared_groups": sum(len(m) for m in members.values()),
            "linking_pairs": int(len(self.links)),
            "members": members,
            "pinned": dict(sorted(self.pinned.items())),
            "conflicts": list(self.conflicts),
        }


def _components(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, str]:
    """node -> smallest node of its connected component (union-find)."""
    parent = {n: n for n in nodes}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            # the smaller ID becomes the root, so the root is the group's smallest member
            parent[max(ra, rb)] = min(ra, rb)
    return {n: root(n) for n in nodes}


def identity_groups(subject_ids) -> PartitionGroups:
    """Every subject its own group (grouping switched off, or a corpus without pixels)."""
    ids = pd.Index(pd.unique(pd.Series(list(subject_ids), dtype=object).astype(str)), name="subject_id")
    return PartitionGroups(pd.Series(ids.to_numpy(), index=ids, name="group_id"))


def partition_groups(
    images: pd.DataFrame,
    pairs: pd.DataFrame,
    *,
    forced_train: pd.Series | None = None,
    held_out: pd.Series | None = None,
    subject_ids=None,
) -> PartitionGroups:
    """Group subjects linked by duplicate pairs (see module docstring).

    images: image_id and subject_id of every image; pairs: image_a, image_b,
    method (hashing.duplicate_pairs); forced_train / held_out: boolean per row
    of `images` (enrichment images, external images), or None; subject_ids:
    extra subjects to include (e.g. subjects.tsv rows without images).
    """
    subject_of = images.set_index("image_id")["subject_id"].astype(str)
    ids = list(pd.unique(subject_of))
    if subject_ids is not None:
        ids += [str(s) for s in subject_ids if str(s) not in set(ids)]
    unknown = sorted((set(pairs["image_a"]) | set(pairs["image_b"])) - set(subject_of.index))
    if unknown:
        raise ValueError(f"duplicate pairs name image(s) not in the images table: {unknown[:5]}")
    sub_a = pairs["image_a"].map(subject_of)
    sub_b = pairs["image_b"].map(subject_of)
    linking = (sub_a != sub_b).to_numpy()
    root = _components(sorted(ids), list(zip(sub_a[linking], sub_b[linking])))
    group_of = pd.Series([root[s] for s in ids], index=pd.Index(ids, name="subject_id"), name="group_id")

    forced = _flags(images, forced_train)
    external = _flags(images, held_out)
    wants: dict[str, set[str]] = {}
    for a, b, sa in zip(pairs["image_a"], pairs["image_b"], sub_a):
        group = root[sa]
        if forced[a] != forced[b]:
            wants.setdefault(group, set()).add(TRAIN)
        if external[a] != external[b]:
            wants.setdefault(group, set()).add(EVAL)
    pinned = {g: (TRAIN if TRAIN in w else EVAL) for g, w in wants.items()}
    conflicts = sorted(g for g, w in wants.items() if len(w) > 1)
    links = pairs.loc[linking, ["image_a", "image_b", "method"]].assign(
        subject_a=sub_a[linking].to_numpy(), subject_b=sub_b[linking].to_numpy()
    )
    return PartitionGroups(group_of, pinned, conflicts, links.reset_index(drop=True))


def _flags(images: pd.DataFrame, flags: pd.Series | None) -> dict[str, bool]:
    if flags is None:
        return dict.fromkeys(images["image_id"], False)
    return dict(zip(images["image_id"], pd.Series(flags).to_numpy(bool)))
