"""Process-wide settings of the command line's long-running jobs (simulator, runtime, drills).

Python's cyclic garbage collector scans every tracked object at each full collection. A
simulator holds about a million long-lived ones (asyncua's standard address space alone is
~700k, then the field's nodes, the pandapower nets, the forecasts), so while it starts, full
collections run again and again (each ~0.4 s here: 2 of the 3.5 s of a simulator start were
collector passes, see ``benchmarks/bench_sim_start.py``) and later they stall the event loop
at random. What is built at start-up lives as long as the job: it is frozen out of the
collector's reach, as CPython's documentation suggests for this case (``gc.freeze``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator

__all__ = ["frozen_after_start_up"]


@contextlib.contextmanager
def frozen_after_start_up() -> Iterator[Callable[[], None]]:
    """Run a job whose start-up builds long-lived objects: no collector passes until the
    ``started()`` it yields is called, those objects frozen from then on. When the block ends,
    everything is handed back to the collector (a drill inside a longer process keeps
    nothing), and the collector is as it was."""
    was_enabled = gc.isenabled()
    # no collection first: garbage already there is frozen too, and handed back at the end
    gc.disable()
    state = {"frozen": False}

    def started() -> None:
        if not state["frozen"]:
            gc.freeze()
            state["frozen"] = True
            if was_enabled:
                gc.enable()

    try:
        yield started
    finally:
        if state["frozen"]:
            gc.unfreeze()
        if was_enabled:
            gc.enable()
