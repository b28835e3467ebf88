"""Assign whole subjects to groups (splits or folds) so that covariates are balanced.

The objective is the worst absolute standardised mean difference (SMD) over
every balanced column and every pair of groups, plus a small term (weight
`RMS_WEIGHT`) for the root mean square SMD so that the search still has a
direction when a move improves many columns but not yet the worst one.

SMD of column j between groups g and h (population moments, ddof = 0, so a
level indicator's variance is p (1 - p)):

    (mean_g - mean_h) / sqrt((var_g + var_h) / 2)

When both variances are zero the denominator is floored at `SMD_FLOOR`, so a
level present in every subject of one group and absent from another gives a
large finite SMD rather than infinity.

Search: each restart draws a stratified assignment that meets the target size
of every (stratum, group) cell exactly (largest-remainder apportionment), then
improves it by swapping two subjects of the same stratum between two groups.
A swap keeps every group's size and label mix fixed, so label proportions stay
on target by construction and only the covariates move. At each step the
same-stratum swaps among up to 16 x 16 subjects of one pair of groups (half the
time the pair with the worst SMD) are scored at once and the best is taken when
it improves the objective, or, while the annealing temperature (falling
linearly to zero over `max_iter` steps) allows, with probability
exp(-worsening / temperature); pure descent stalls in local minima where the
worst level can only improve through a worse intermediate swap. A restart
stops after `patience` steps without a new best and returns its best state;
the best of `n_restarts` restarts wins. Everything draws from one
`numpy.random.default_rng(seed)`, so a seed gives one assignment.

Subjects may be pinned to a group (`fixed`): they count in the balance but
never move; the free subjects of each stratum fill what is left of the targets.

Subjects may be tied into units (`units`, e.g. subjects whose images are
duplicates of each other): a unit of several subjects always sits in one group.
Each restart first places the free units at random, with probability
proportional to `fractions`, among the groups that still have room for every
stratum of the unit (the group with the least overflow when none has), and the
single subjects fill what is left of each (stratum, group) cell. Besides the
pair swaps of single subjects, a share `UNIT_MOVE_SHARE` of the steps tries a
unit move: a random free unit against up to 16 sets, per other group, of single
subjects drawn to match the unit's strata one for one; the best exchange is
taken under the same rule as a swap, so group sizes and label mix still stay on
target. With no unit of two or more subjects the search is
exactly the subject search (the same draws, the same result).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

SMD_FLOOR = 1e-3
RMS_WEIGHT = 0.05
CANDIDATES_PER_SIDE = 16
UNIT_MOVE_SHARE = 0.2


@dataclass(frozen=True)
class Assignment:
    """Result of `optimise_groups`: a group index per subject and its balance."""

    groups: np.ndarray
    worst_abs_smd: float
    objective: float
    restarts: int


def pairwise_smd(sums: np.ndarray, sqsums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """SMD for every pair of groups from per-group moments.

    `sums`, `sqsums`: (..., G, L) sums of x and x**2 per group; `counts`: (G,).
    Returns (..., P, L) with pairs in `itertools.combinations(range(G), 2)` order.
    Groups with no subjects give SMD 0 against every other group.
    """
    n = np.maximum(counts, 1).astype(float)[:, None]
    means = sums / n
    var = np.clip(sqsums / n - means**2, 0.0, None)
    pairs = list(combinations(range(counts.shape[0]), 2))
    first = [g for g, _ in pairs]
    second = [h for _, h in pairs]
    diff = means[..., first, :] - means[..., second, :]
    denom = np.sqrt(np.maximum((var[..., first, :] + var[..., second, :]) / 2.0, SMD_FLOOR**2))
    smd = diff / denom
    empty = (counts[first] == 0) | (counts[second] == 0)
    smd[..., empty, :] = 0.0
    return smd


def _objective(smd: np.ndarray) -> np.ndarray:
    flat = smd.reshape(*smd.shape[:-2], -1)
    if flat.shape[-1] == 0:
        return np.zeros(flat.shape[:-1])
    return np.abs(flat).max(axis=-1) + RMS_WEIGHT * np.sqrt((flat**2).mean(axis=-1))


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights` (largest remainder)."""
    weights = np.asarray(weights, float)
    if total <= 0:
        return np.zeros(len(weights), int)
    if weights.sum() <= 0:
        weights = np.ones(len(weights))
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def cell_targets(strata: np.ndarray, fractions: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """How many free subjects of each stratum go to each group: (S, G) integer array.

    Group totals are apportioned first (largest remainder over all subjects);
    each stratum's share of a group is then apportioned so that rows sum to the
    stratum's free subjects and columns to the group's free capacity. Pinned
    subjects (fixed >= 0) count towards their group's and cell's target.
    """
    levels = np.unique(strata)
    n_groups = len(fractions)
    group_total = _apportion(len(strata), fractions)
    pinned = np.zeros((len(levels), n_groups), int)
    free = np.zeros(len(levels), int)
    for s, level in enumerate(levels):
        in_s = strata == level
        free[s] = int((in_s & (fixed < 0)).sum())
        for g in range(n_groups):
            pinned[s, g] = int((in_s & (fixed == g)).sum())
    capacity = np.maximum(group_total - pinned.sum(axis=0), 0)
    if capacity.sum() != free.sum():
        capacity = _apportion(int(free.sum()), np.maximum(capacity, 0) + 1e-9 * fractions)
    # ideal cell counts, then a rounding that respects both margins
    stratum_total = free + pinned.sum(axis=1)
    ideal = np.maximum(stratum_total[:, None] * fractions[None, :] / fractions.sum() - pinned, 0.0)
    targets = np.zeros_like(pinned)
    for s in range(len(levels)):
        weights = ideal[s] if ideal[s].sum() > 0 else fractions
        targets[s] = _apportion(free[s], weights)
    # repair columns: move units from over-full to under-full groups within a stratum
    for _ in range(int(free.sum()) + 1):
        excess = targets.sum(axis=0) - capacity
        if not excess.any():
            break
        over, under = int(np.argmax(excess)), int(np.argmin(excess))
        gap = ideal[:, under] - targets[:, under] - (ideal[:, over] - targets[:, over])
        movable = np.flatnonzero(targets[:, over] > 0)
        s = movable[np.argmax(gap[movable])]
        targets[s, over] -= 1
        targets[s, under] += 1
    return targets


def _place_units(
    codes: np.ndarray, targets: np.ndarray, units: list[np.ndarray], fractions: np.ndarray, rng: np.random.Generator
) -> tuple[dict[int, int], np.ndarray]:
    """Group of each free multi-subject unit (by position in `units`) and the cell room left for singles."""
    room = targets.copy()
    placed: dict[int, int] = {}
    for u in rng.permutation(len(units)):
        need = np.bincount(codes[units[u]], minlength=room.shape[0])
        overflow = np.clip(need[:, None] - room, 0, None).sum(axis=0)
        fits = np.flatnonzero(overflow == 0)
        if fits.size:
            g = int(rng.choice(fits, p=fractions[fits] / fractions[fits].sum()))
        else:
            g = int(np.argmin(overflow))
        placed[int(u)] = g
        room[:, g] -= need
    return placed, room


def _initial(
    strata_codes: np.ndarray,
    targets: np.ndarray,
    fixed: np.ndarray,
    rng: np.random.Generator,
    units: list[np.ndarray] | None = None,
    single: np.ndarray | None = None,
    fractions: np.ndarray | None = None,
) -> np.ndarray:
    groups = fixed.copy()
    room = targets
    if units:
        placed, room = _place_units(strata_codes, targets, units, fractions, rng)
        for u, g in placed.items():
            groups[units[u]] = g
    for s in range(targets.shape[0]):
        members = np.flatnonzero((strata_codes == s) & (fixed < 0) & (True if single is None else single))
        members = rng.permutation(members)
        counts = room[s]
        if counts.min() < 0 or counts.sum() != members.size:
            # a unit overfilled a cell: the singles of this stratum share out what room is left
            counts = _apportion(members.size, np.clip(counts, 0, None) + 1e-9)
        labels = np.repeat(np.arange(targets.shape[1]), counts)
        groups[members] = labels
    return groups


def _moments(X: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sums = np.zeros((n_groups, X.shape[1]))
    sqsums = np.zeros((n_groups, X.shape[1]))
    np.add.at(sums, groups, X)
    np.add.at(sqsums, groups, X**2)
    return sums, sqsums, np.bincount(groups, minlength=n_groups)


def _unit_candidates(units, codes, groups, single, n_groups, rng):
    """Candidate unit moves: a random free unit (in group g) against up to CANDIDATES_PER_SIDE sets of
    single subjects in each other group h that match its strata one for one.

    Returns (unit, g, hs, partners) with partners an (n_candidates, unit size) index array, or None.
    """
    unit = units[rng.integers(len(units))]
    g = int(groups[unit[0]])
    strata, need = np.unique(codes[unit], return_counts=True)
    hs, partners = [], []
    for h in range(n_groups):
        if h == g:
            continue
        pools = [np.flatnonzero((groups == h) & single & (codes == s)) for s in strata]
        if any(pool.size < k for pool, k in zip(pools, need)):
            continue
        for _ in range(CANDIDATES_PER_SIDE):
            partners.append(np.concatenate([rng.choice(pool, k, replace=False) for pool, k in zip(pools, need)]))
            hs.append(h)
    if not partners:
        return None
    return unit, g, np.array(hs), np.stack(partners)


def _search(X, X2, codes, groups, free, counts, sums, sqsums, rng, max_iter, patience, temperature, units=None):
    n_groups = counts.shape[0]
    pairs = list(combinations(range(n_groups), 2))
    current_smd = pairwise_smd(sums, sqsums, counts)
    current = float(_objective(current_smd))
    best_groups, best = groups.copy(), current
    stale = 0
    for step in range(max_iter):
        if stale >= patience:
            break
        stale += 1
        heat = temperature * (1.0 - step / max(max_iter, 1))
        if units and n_groups > 1 and rng.random() < UNIT_MOVE_SHARE:
            move = _unit_candidates(units, codes, groups, free, n_groups, rng)
            if move is None:
                continue
            unit, g, hs, partners = move
            rows = np.arange(len(hs))
            delta = X[partners].sum(axis=1) - X[unit].sum(axis=0)
            delta2 = X2[partners].sum(axis=1) - X2[unit].sum(axis=0)
            new_sums = np.broadcast_to(sums, (len(hs),) + sums.shape).copy()
            new_sq = np.broadcast_to(sqsums, (len(hs),) + sqsums.shape).copy()
            new_sums[:, g] += delta
            new_sums[rows, hs] -= delta
            new_sq[:, g] += delta2
            new_sq[rows, hs] -= delta2
            scores = _objective(pairwise_smd(new_sums, new_sq, counts))
            pick = int(np.argmin(scores))
            worse = scores[pick] - current
            if worse < -1e-12 or (heat > 0 and rng.random() < np.exp(-worse / heat)):
                h = int(hs[pick])
                groups[unit], groups[partners[pick]] = h, g
                sums, sqsums = new_sums[pick], new_sq[pick]
                current_smd = pairwise_smd(sums, sqsums, counts)
                current = float(scores[pick])
                if current < best - 1e-12:
                    best_groups, best = groups.copy(), current
                    stale = 0
            continue
        if rng.random() < 0.5:
            worst = np.unravel_index(np.argmax(np.abs(current_smd)), current_smd.shape)[0]
            g, h = pairs[worst]
        else:
            g, h = pairs[rng.integers(len(pairs))]
        side_a = np.flatnonzero((groups == g) & free)
        side_b = np.flatnonzero((groups == h) & free)
        if side_a.size > CANDIDATES_PER_SIDE:
            side_a = rng.choice(side_a, CANDIDATES_PER_SIDE, replace=False)
        if side_b.size > CANDIDATES_PER_SIDE:
            side_b = rng.choice(side_b, CANDIDATES_PER_SIDE, replace=False)
        a_idx = np.repeat(side_a, side_b.size)
        b_idx = np.tile(side_b, side_a.size)
        same = codes[a_idx] == codes[b_idx]
        a_idx, b_idx = a_idx[same], b_idx[same]
        if a_idx.size == 0:
            continue
        delta = X[b_idx] - X[a_idx]
        delta2 = X2[b_idx] - X2[a_idx]
        new_sums = np.broadcast_to(sums, (len(a_idx),) + sums.shape).copy()
        new_sq = np.broadcast_to(sqsums, (len(a_idx),) + sqsums.shape).copy()
        new_sums[:, g] += delta
        new_sums[:, h] -= delta
        new_sq[:, g] += delta2
        new_sq[:, h] -= delta2
        scores = _objective(pairwise_smd(new_sums, new_sq, counts))
        pick = int(np.argmin(scores))
        # annealing: a worse best-candidate is taken with a probability that
        # vanishes as the temperature falls linearly to zero over max_iter steps
        worse = scores[pick] - current
        if worse < -1e-12 or (heat > 0 and rng.random() < np.exp(-worse / heat)):
            a, b = a_idx[pick], b_idx[pick]
            groups[a], groups[b] = h, g
            sums, sqsums = new_sums[pick], new_sq[pick]
            current_smd = pairwise_smd(sums, sqsums, counts)
            current = float(scores[pick])
            if current < best - 1e-12:
                best_groups, best = groups.copy(), current
                stale = 0
    return best_groups, best


def _unit_members(units, fixed: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Free units of two or more subjects (member index arrays, in order of first member) and the single mask.

    Raises ValueError when a unit mixes pinned subjects of different groups, or
    pinned and free subjects.
    """
    n = len(fixed)
    if units is None:
        return [], np.ones(n, bool)
    units = np.asarray(units, dtype=object).astype(str)
    if units.shape != (n,):
        raise ValueError(f"units has {units.shape[0]} entries for {n} subjects")
    _, codes, sizes = np.unique(units, return_inverse=True, return_counts=True)
    multi = sizes[codes] > 1
    members = []
    for code in np.unique(codes[multi]):
        idx = np.flatnonzero(codes == code)
        pins = set(fixed[idx].tolist())
        if len(pins) > 1:
            raise ValueError(
                f"unit {str(units[idx[0]])!r} ties subjects pinned to different groups (or pinned and free): "
                f"{sorted(pins)}; pin the whole unit to one group"
            )
        if fixed[idx[0]] < 0:
            members.append(idx)
    members.sort(key=lambda idx: int(idx[0]))
    return members, ~multi


def optimise_groups(
    strata,
    X: np.ndarray,
    fractions,
    *,
    seed,
    n_restarts: int = 10,
    max_iter: int = 1500,
    patience: int = 300,
    temperature: float = 0.02,
    fixed=None,
    units=None,
) -> Assignment:
    """Assign each subject (row of `X`) to one of len(`fractions`) groups.

    strata: label stratum per subject (any hashable values); X: (n, L) balanced
    columns (level indicators and numeric values, see covariates.design_matrix);
    fractions: target share of subjects per group (renormalised); fixed: optional
    int array, group index for pinned subjects and -1 for free ones; units:
    optional label per subject, subjects with the same label always land in the
    same group (a unit's members must be all free or all pinned to one group);
    seed: int or numpy SeedSequence; temperature: initial annealing temperature
    in units of the objective (0 = pure descent).
    Returns the best assignment over `n_restarts` seeded restarts. Sizes and
    strata meet their targets exactly unless a unit is too large for every
    group's room in one of its strata.
    """
    strata = np.asarray(strata, dtype=object).astype(str)
    X = np.asarray(X, float)
    fractions = np.asarray(fractions, float)
    fractions = fractions / fractions.sum()
    n_groups = len(fractions)
    fixed = np.full(len(strata), -1, int) if fixed is None else np.asarray(fixed, int)
    unit_list, single = _unit_members(units, fixed)
    levels, codes = np.unique(strata, return_inverse=True)
    targets = cell_targets(strata, fractions, fixed)
    free = fixed < 0
    X2 = X**2
    rng = np.random.default_rng(seed)
    best_groups, best_score = None, np.inf
    for _ in range(max(1, n_restarts)):
        groups = _initial(codes, targets, fixed, rng, unit_list, single, fractions)
        sums, sqsums, counts = _moments(X, groups, n_groups)
        groups, score = _search(
            X, X2, codes, groups, free & single, counts, sums, sqsums, rng, max_iter, patience, temperature, unit_list
        )
        if score < best_score - 1e-12:
            best_groups, best_score = groups.copy(), score
    sums, sqsums, counts = _moments(X, best_groups, n_groups)
    smd = pairwise_smd(sums, sqsums, counts)
    worst = float(np.abs(smd).max()) if smd.size else 0.0
    return Assignment(best_groups, worst, best_score, max(1, n_restarts))


def worst_abs_smd(X: np.ndarray, groups: np.ndarray, n_groups: int) -> float:
    """Worst |SMD| over all columns and pairs of groups for a given assignment."""
    sums, sqsums, counts = _moments(np.asarray(X, float), np.asarray(groups, int), n_groups)
    smd = pairwise_smd(sums, sqsums, counts)
    return float(np.abs(smd).max()) if smd.size else 0.0
