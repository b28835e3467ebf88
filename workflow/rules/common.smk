# Shared helpers: config validation and input functions. No rules here.

import os
import sys
from pathlib import Path

import pandas as pd

from calcsig.config import load_config
from calcsig.errors import ConfigError

REPO = Path(workflow.basedir)

# Scripts import calcsig; in a per-stage conda env the package is not
# installed, so its source folder is put on the path of every job.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
)

try:
    config.update(load_config(config))
except ConfigError as error:
    sys.exit(f"calcsig: invalid configuration:\n{error}")


def package_code(*parts):
    """The calcsig source files a rule depends on, so a code change reruns it.

    Snakemake's code trigger sees a rule's script, not the library it calls;
    listing the library's files as inputs closes that gap.
    """
    files = []
    for part in ("__init__.py", "paths.py", "errors.py") + parts:
        path = REPO / "src" / "calcsig" / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [str(f.relative_to(REPO)) if f.is_relative_to(Path.cwd()) else str(f) for f in files]


def corpus_table(kind):
    return f"results/corpus/{kind}.tsv"


def final_targets():
    return [corpus_table(kind) for kind in ("images", "rois", "subjects")]
