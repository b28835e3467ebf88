"""The calcsig source files a workflow script runs, found by reading its imports.

Snakemake reruns a job when its script changes, but not when the library code
the script calls changes. The workflow therefore lists, as inputs of each rule,
the calcsig modules its script imports, directly or through other calcsig
modules (imports inside functions included), so that a change to any of them
reruns exactly the rules that use it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "calcsig"


def _module_file(package_root: Path, dotted: str) -> Path | None:
    """The file of module `dotted` (``calcsig.x.y``) under `package_root` (the folder holding ``calcsig/``)."""
    parts = dotted.split(".")
    base = package_root.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _package_of(package_root: Path, module_file: Path) -> str:
    """Dotted name of the package a module file belongs to."""
    # calcsig/x/y.py is in package calcsig.x; calcsig/x/__init__.py is package calcsig.x itself
    return ".".join(module_file.relative_to(package_root).with_suffix("").parts[:-1])


def imported_modules(source: str, package: str | None = None) -> set[str]:
    """Dotted names of the calcsig modules `source` imports (``from a import b`` gives ``a`` and ``a.b``).

    package : the dotted package of the file, to resolve relative imports.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


@functools.cache
def _imports_of(path: Path, mtime_ns: int, package: str | None) -> frozenset[str]:
    # each file is parsed once per process (and again only when it changes)
    return frozenset(imported_modules(path.read_text(), package))


@functools.cache
def _closure(package_root: Path, start: tuple[Path, ...]) -> tuple[Path, ...]:
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = _package_of(package_root, path) if path.is_relative_to(package_root) else None
        for dotted in _imports_of(path, path.stat().st_mtime_ns, package):
            parts = dotted.split(".")
            # the module itself and every package on its way (their __init__ runs on import)
            for depth in range(1, len(parts) + 1):
                found = _module_file(package_root, ".".join(parts[:depth]))
                if found is not None and found not in seen:
                    todo.append(found)
    return tuple(sorted(p for p in seen if p.is_relative_to(package_root)))


def code_files(scripts, package_root: str | Path, modules=()) -> list[Path]:
    """Every calcsig source file that `scripts` (and the dotted `modules`) import, transitively.

    package_root : the folder that holds the ``calcsig`` package (``src/`` of the repository).
    modules : modules imported dynamically (by name at run time), e.g. an ingest adapter.
    """
    package_root = Path(package_root).resolve()
    start = [Path(s).resolve() for s in scripts]
    for dotted in modules:
        found = _module_file(package_root, dotted)
        if found is None:
            raise ValueError(f"module {dotted} not found under {package_root}")
        start.append(found)
    return list(_closure(package_root, tuple(start)))
