"""SMOTE-ENN that adapts to tiny classes: an imbalanced-learn sampler.

It subclasses :class:`imblearn.base.BaseSampler`, so imbalanced-learn
validates its input, records ``sampling_strategy_`` and hands back the same
container type it was given, and it composes in an imblearn Pipeline like any
sampler: it runs on the training part of whatever fit it is inside, never on
data being predicted.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
from imblearn.base import BaseSampler
from imblearn.combine import SMOTEENN
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import EditedNearestNeighbours

log = logging.getLogger(__name__)


class AdaptiveSMOTEENN(BaseSampler):
    """SMOTE-ENN whose neighbour counts shrink to fit a tiny class, or that steps aside.

    SMOTE needs at least ``k_neighbors + 1`` minority samples; with fewer, k
    is reduced to ``n_minority - 1``. With a minority of one sample nothing
    can be synthesised and the data pass through unchanged. If the edited
    nearest-neighbours cleaning would leave a class with fewer than two
    samples, the SMOTE output is used without cleaning. Each decision is
    logged and kept in ``log_`` (a list of strings) for the run record, and
    ``applied_`` says what was done: ``"smote_enn"``, ``"smote"`` or
    ``"none"``. A single class is an error (ValueError), as for every
    imbalanced-learn sampler; so is a non-finite value (impute before this step).

    Parameters
    ----------
    sampling_strategy : str, float, dict or callable
        imbalanced-learn's sampling strategy of the SMOTE step (default "auto":
        oversample every class but the majority up to the majority's size).
    k_neighbors : int
        SMOTE neighbours (imbalanced-learn default 5).
    enn_n_neighbors : int
        Edited-nearest-neighbours neighbours (default 3).
    random_state : int or None
        Seed of SMOTE.
    """

    _sampling_type = "over-sampling"
    # types only: scikit-learn checks them before fitting; ranges are checked in _fit_resample
    _parameter_constraints: dict = {
        "sampling_strategy": [numbers.Real, str, dict, callable],
        "k_neighbors": [numbers.Integral],
        "enn_n_neighbors": [numbers.Integral],
        "random_state": ["random_state"],
    }

    def __init__(self, *, sampling_strategy="auto", k_neighbors=5, enn_n_neighbors=3, random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.k_neighbors = k_neighbors
        self.enn_n_neighbors = enn_n_neighbors
        self.random_state = random_state

    def _note(self, message: str) -> None:
        log.info("SMOTE-ENN: %s", message)
        self.log_.append(message)

    def _fit_resample(self, X, y):
        for name in ("k_neighbors", "enn_n_neighbors"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"AdaptiveSMOTEENN: {name} must be an integer >= 1, got {value!r}")
        self.log_ = []
        self.applied_ = "none"
        classes, counts = np.unique(y, return_counts=True)
        n_min = int(counts.min())
        if n_min < 2:
            self._note(f"skipped: minority class has {n_min} sample, SMOTE needs at least 2")
            return X, y
        k = min(self.k_neighbors, n_min - 1)
        if k < self.k_neighbors:
            self._note(f"k_neighbors reduced from {self.k_neighbors} to {k}: minority class has {n_min} samples")
        smote = SMOTE(sampling_strategy=self.sampling_strategy, k_neighbors=k, random_state=self.random_state)
        enn = EditedNearestNeighbours(n_neighbors=max(1, min(self.enn_n_neighbors, len(y) - 1)))
        Xr, yr = SMOTEENN(smote=smote, enn=enn, random_state=self.random_state).fit_resample(X, y)
        _, after = np.unique(yr, return_counts=True)
        if len(after) < len(classes) or after.min() < 2:
            self._note("ENN cleaning would empty a class: SMOTE output used without cleaning")
            Xr, yr = SMOTE(
                sampling_strategy=self.sampling_strategy, k_neighbors=k, random_state=self.random_state
            ).fit_resample(X, y)
            self.applied_ = "smote"
        else:
            self.applied_ = "smote_enn"
        return Xr, yr
