"""Model stage: per-ROI aggregation of object features, SMOTE-ENN + LightGBM with nested
cross-validation over the partition's outer folds, baselines, operating points, metrics and
comparisons that respect subjects.

One job per module:

- ``data`` parameters, grids, and the cases (cohort + partition + features); ``cohort`` the cohort table;
- ``aggregation``, ``resampling``, ``pipeline``, ``baselines`` the estimators and pipelines;
- ``fitting``, ``nested_cv``, ``multiclass``, ``thresholds`` fitting, inner search and operating points;
- ``folds`` one job: a model on an outer fold or the final model; gathering predictions;
- ``levels``, ``metrics``, ``curves``, ``stats``, ``clustered``, ``comparisons``, ``evaluate``,
  ``flat_table`` the evaluation;
- ``stage`` the entry points the workflow calls; ``records`` JSON records.
"""
