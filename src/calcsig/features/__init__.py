"""Features stage: per-object radiomics and region properties, per-ROI topology, geometry and QC.

Entry point: :func:`calcsig.features.stage.extract_roi_features`; column names
and the generated catalogue (docs/features.md): :mod:`calcsig.features.table`.
"""
