"""Calcification segmentation: breast region, HDoG candidates, selector, evaluation.

Candidates on disk: `calcsig.segment.store`; the selector: `calcsig.segment.selector`;
evaluation: `calcsig.segment.evaluate` (metrics) and `calcsig.segment.evaluate_files`
(its worst cases: `calcsig.segment.worst_cases`);
which config keys each part uses: `calcsig.segment.params`.
"""
