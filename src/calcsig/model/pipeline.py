"""The classifier pipelines: aggregation -> imputation -> SMOTE-ENN -> LightGBM, and the mask forest.

imbalanced-learn Pipelines, so the resampler runs on the training part of
whatever fit it is inside and never on data being predicted. X is the ROI
table with its ``objects`` column (see :mod:`calcsig.model.aggregation`) for
the aggregation pipelines, and the mask pixels for the mask forest.
"""

from __future__ import annotations

from imblearn.ensemble import BalancedRandomForestClassifier
from imblearn.pipeline import Pipeline
from lightgbm import LGBMClassifier
from sklearn.impute import SimpleImputer

from .aggregation import BagOfObjects, MeanStd
from .resampling import AdaptiveSMOTEENN

AGGREGATIONS = {"bag_of_objects": BagOfObjects, "mean_std": MeanStd}


def make_lightgbm(seed: int = 0, n_jobs: int = 1, **params) -> LGBMClassifier:
    """LightGBM with the settings that make it reproducible and quiet."""
    base = dict(random_state=seed, n_jobs=n_jobs, verbose=-1, deterministic=True, force_col_wise=True)
    base.update(params)
    return LGBMClassifier(**base)


def build_pipeline(
    aggregation: str = "bag_of_objects",
    *,
    n_clusters: int = 15,
    n_init: int = 3,
    families=("fg_", "rp_", "bg_"),
    seed: int = 0,
    n_jobs: int = 1,
    smote_k_neighbors: int = 5,
    enn_n_neighbors: int = 3,
    resample: bool = True,
    lightgbm_params: dict | None = None,
) -> Pipeline:
    """aggregate -> impute -> resample -> classifier, with step names used in grids.

    Grid keys are ``aggregate__<param>`` (e.g. ``aggregate__n_clusters``) and
    ``classifier__<param>`` (LightGBM).
    """
    if aggregation == "bag_of_objects":
        agg = BagOfObjects(n_clusters=n_clusters, families=tuple(families), n_init=n_init, random_state=seed)
    elif aggregation == "mean_std":
        agg = MeanStd(families=tuple(families))
    else:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {sorted(AGGREGATIONS)}")
    steps = [
        ("aggregate", agg),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if resample:
        steps.append(
            (
                "resample",
                AdaptiveSMOTEENN(k_neighbors=smote_k_neighbors, enn_n_neighbors=enn_n_neighbors, random_state=seed),
            )
        )
    steps.append(("classifier", make_lightgbm(seed, n_jobs, **(lightgbm_params or {}))))
    return Pipeline(steps)


def build_mask_forest(seed: int = 0, n_jobs: int = 1, n_estimators: int = 100) -> Pipeline:
    """The enrichment paper's baseline: imbalanced-learn's balanced random forest on mask pixels.

    X is the matrix of flattened resized masks (:func:`calcsig.model.baselines.mask_pixels`);
    the forest keeps imbalanced-learn's defaults otherwise.
    """
    forest = BalancedRandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
    return Pipeline([("classifier", forest)])
