"""Entry points of the model and evaluate stages: file paths and plain parameters in, files out.

The workflow's scripts and rules call these; each lives in the module that does its job:

- :func:`run_outer_fold` one model on one outer fold (or the final model on eval),
  :func:`run_final` the final model, :func:`gather_predictions` one predictions
  table (:mod:`calcsig.model.folds`);
- :func:`evaluate_models` metrics, curves, operating points and comparisons into
  ``models.json`` and a flat TSV (:mod:`calcsig.model.evaluate`);
- :func:`model_names`, :func:`outer_folds` the workflow's wildcards, and
  :func:`resolve_params` the completed ``model`` config section (:mod:`calcsig.model.data`).
"""

from .data import load_model_data, model_names, outer_folds, resolve_params
from .evaluate import evaluate_models
from .folds import (
    MULTICLASS_COLUMNS,
    PREDICTION_COLUMNS,
    fold_cases,
    gather_predictions,
    predict_cases,
    run_final,
    run_outer_fold,
)

__all__ = [
    "MULTICLASS_COLUMNS",
    "PREDICTION_COLUMNS",
    "evaluate_models",
    "fold_cases",
    "gather_predictions",
    "load_model_data",
    "model_names",
    "outer_folds",
    "predict_cases",
    "resolve_params",
    "run_final",
    "run_outer_fold",
]
