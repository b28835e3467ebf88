"""Model stage: per-ROI aggregation of object features, SMOTE-ENN + LightGBM with nested
cross-validation over the partition's outer folds, baselines, metrics and comparison tests.

Entry points for the workflow are in :mod:`calcsig.model.stage`.
"""
