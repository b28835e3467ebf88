"""Partition the corpus by subject with demographic balancing, and audit the result.

Modules:
- `covariates`: one row per subject (label stratum, covariates, morphology) and its design matrix;
- `optimiser`: seeded swap search that balances covariates across groups (splits or folds);
- `balance`: the balance report (counts, proportions, SMD, Cramér's V, chi-square);
- `hashing`: pixel content hash and perceptual hash of images;
- `audit`: subject overlap, exact / near duplicates, label conflicts, policy;
- `stage`: the entry points the workflow calls (`run_partition`, `run_audit`).
"""

from .audit import AuditError, audit_corpus
from .stage import PartitionError, run_audit, run_partition

__all__ = ["AuditError", "PartitionError", "audit_corpus", "run_audit", "run_partition"]
