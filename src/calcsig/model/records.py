"""JSON records of the model stage (search.json, models.json): plain values, atomic writes."""

from __future__ import annotations

import json

import numpy as np

from ..paths import atomic_path


def jsonable(obj):
    """`obj` with numpy scalars and arrays made plain and non-finite floats made None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj


def write_json(path, obj) -> dict:
    """Write `obj` (made :func:`jsonable`) as indented JSON through a temporary file; return what was written."""
    plain = jsonable(obj)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(plain, indent=2))
    return plain
