"""Per-item work of a whole-corpus job spread over the job's cores.

The rules that see the whole corpus in one job (ingest, image hashing, the
selector's training, the segmentation evaluations) loop over images whose work
is independent. `ordered_map` runs such a loop in worker processes and returns
the results in the order of the items, so the output does not depend on the
number of workers: the same config gives the same bytes with 1 or 64 cores.

Workers are forked, so the function and its arguments need no pickling on the
way in (only the results travel back), and a Snakemake script, which has no
``if __name__ == "__main__"`` guard, is not imported again. Each worker is
limited to one BLAS/OpenMP thread, as the job's single-threaded run is, so
that numerical libraries give the same results whatever the cores.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from threadpoolctl import threadpool_limits

Item = TypeVar("Item")
Result = TypeVar("Result")

# the function and items of the current ordered_map, inherited by the forked workers
_WORK: tuple[Callable, Sequence] | None = None


def _run(index: int):
    function, items = _WORK  # type: ignore[misc]
    return function(items[index])


def _start_worker() -> None:
    # a forked worker inherits its parent's signal handlers; a SIGTERM handler that does not exit
    # (Snakemake's scheduler installs one in any process that ran a workflow in-process) would
    # keep the worker alive when the pool is terminated, and the pool's join would wait forever
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # kept for the worker's lifetime: threadpool_limits undoes itself only when used as a context
    _start_worker.limits = threadpool_limits(1)  # type: ignore[attr-defined]


def ordered_map(function: Callable[[Item], Result], items: Iterable[Item], workers: int = 1) -> list[Result]:
    """[function(item) for item in items], computed by up to `workers` forked processes.

    The results come back in the order of `items` whatever the workers. With
    workers <= 1 or fewer than two items the loop runs here, in this process.
    An exception raised by `function` is raised again here, for the first
    failing item in order, and the remaining work is cancelled.
    """
    global _WORK
    items = list(items)
    workers = min(int(workers), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    if _WORK is not None:
        raise RuntimeError("ordered_map cannot be nested")
    _WORK = (function, items)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_start_worker) as pool:
            # chunks of one keep a slow image from holding up a whole chunk of others
            results = list(pool.imap(_run, range(len(items)), chunksize=1))
            # let the workers finish on their own; leaving the block terminates them only after an error
            pool.close()
            pool.join()
            return results
    finally:
        _WORK = None
