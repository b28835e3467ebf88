"""Pieces shared by the binary and the multi-class nested cross-validation.

A grid search fits many candidates that differ only in the classifier's
settings; those share the steps before the classifier (the *front*:
aggregation, imputation and, for the binary model, resampling). The
functions here fit a pipeline's front once per inner fold, apply it to the
cases being predicted, and split grid parameters into front and classifier
parts. Data travel as a :class:`CaseSet`: X with the labels, groups and ids
of its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline

CLASSIFIER = "classifier"  # name of every pipeline's last step


@dataclass(frozen=True)
class CaseSet:
    """Cases of one fit or prediction: X and the label, group and ROI id of each of its rows."""

    X: pd.DataFrame | np.ndarray
    y: np.ndarray
    groups: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows) -> CaseSet:
        """The cases at positions `rows` (an integer index array)."""
        rows = np.asarray(rows, dtype=int)
        X = self.X.iloc[rows] if isinstance(self.X, pd.DataFrame) else np.asarray(self.X)[rows]
        return CaseSet(
            X=X,
            y=np.asarray(self.y)[rows],
            groups=np.asarray(self.groups)[rows],
            ids=np.asarray(self.ids)[rows],
        )

    def with_labels(self, y) -> CaseSet:
        """The same cases with another target (e.g. the fine class instead of the binary label)."""
        return CaseSet(self.X, np.asarray(y), self.groups, self.ids)


def split_params(params: dict) -> tuple[dict, dict]:
    """(front parameters, classifier parameters without the ``classifier__`` prefix) of a grid candidate."""
    prefix = f"{CLASSIFIER}__"
    front = {k: v for k, v in params.items() if not k.startswith(prefix)}
    clf = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    return front, clf


def plain_params(params: dict) -> dict:
    """Grid parameters with numpy scalars turned into Python ones (for JSON records)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()}


def _front_parts(pipeline: Pipeline):
    """(Pipeline of the transformers before the classifier or None, trailing sampler or None)."""
    front = list(pipeline.steps[:-1])
    sampler = None
    if front and hasattr(front[-1][1], "fit_resample"):
        sampler = front.pop()[1]
    return (Pipeline(front) if front else None), sampler


def fit_front(pipeline: Pipeline, cases: CaseSet) -> tuple[np.ndarray, np.ndarray]:
    """Fit the steps before the classifier on `cases`, in place; return what the classifier trains on.

    The transformers are fitted and applied, then the sampler, if any,
    resamples their output.
    """
    transformers, sampler = _front_parts(pipeline)
    Xt, yt = cases.X, np.asarray(cases.y)
    if transformers is not None:
        Xt = transformers.fit_transform(Xt, yt)
    if sampler is not None:
        Xt, yt = sampler.fit_resample(Xt, yt)
    return Xt, yt


def transform_front(pipeline: Pipeline, cases: CaseSet):
    """Apply the fitted steps before the classifier to cases being predicted (the sampler does not apply)."""
    transformers, _ = _front_parts(pipeline)
    return cases.X if transformers is None else transformers.transform(cases.X)


def resampler_log(pipeline: Pipeline) -> list[str]:
    """The decisions the pipeline's sampler logged in its last fit (empty without a sampler)."""
    _, sampler = _front_parts(pipeline)
    return list(getattr(sampler, "log_", [])) if sampler is not None else []


def positive_probability(classifier, X) -> np.ndarray:
    """Probability of class 1 from a fitted classifier (0 when it never saw class 1)."""
    proba = classifier.predict_proba(X)
    classes = list(classifier.classes_)
    if 1 not in classes:
        return np.zeros(proba.shape[0])
    return proba[:, classes.index(1)]
