"""Partition the corpus by subject with demographic balancing, and audit the result.

Modules:
- `covariates`: one row per subject (label stratum, covariates, morphology) and its design matrix;
- `optimiser`: seeded swap search that balances covariates across groups (splits or folds);
- `balance`: the balance report (counts, proportions, SMD, Cramér's V, chi-square);
- `hashing`: pixel content hash and perceptual hash of images, duplicate pairs, the hash table;
- `grouping`: subjects tied by duplicate images into partition groups;
- `folds`: the inner folds the model stage and the audit both make (`inner_folds`);
- `levels`: where each image sits at the split, outer-fold and inner-fold levels;
- `audit`: subject overlap, exact / near duplicates at every level, label conflicts, policy;
- `stage`: the entry points the workflow calls (`run_partition`, `run_audit`).
"""

from .audit import AuditError, audit_corpus
from .folds import InnerFoldError, fold_splits, inner_folds
from .stage import PartitionError, run_audit, run_partition

__all__ = [
    "AuditError",
    "InnerFoldError",
    "PartitionError",
    "audit_corpus",
    "fold_splits",
    "inner_folds",
    "run_audit",
    "run_partition",
]
