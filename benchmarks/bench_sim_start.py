"""Time the simulator's start on Jiuke Oasis, split into its phases (prints figures only).

    .venv/bin/python benchmarks/bench_sim_start.py [--repeat 3] [--model jiuke_oasis]

Each run builds a ``SimServer`` (step mode, 127.0.0.1, free port) and times ``start()``; the
phases are measured on the real code path by wrapping the functions ``SimServer.start`` calls:
``Server.init`` (asyncua's standard address space), security set-up, ``build_address_space``
(the field contract's nodes), the first publish of every reading, and opening the endpoint.
Also shows how much of Server.init and of the address space was CPython's cyclic garbage
collector ("gc"): each full collection scans the whole heap (~0.95 M objects, most of them
asyncua's standard address space) for ~0.4 s, so one more or one fewer in a phase moves it a lot.
Prints every run, then the median of each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout as is

from asyncua import Server

import hil_sim.server as sim_server
from hil_sim.server import SimServer
from network_models import load_model

START = "2026-07-15 12:00"
PHASES = ("Server.init", "security", "address space", "first publish", "endpoint")
GC_PHASES = ("Server.init", "address space")


class _CollectorClock:
    """Wall time spent in the cyclic garbage collector so far (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started


_COLLECTOR = _CollectorClock()


def _timed(times: dict[str, float], phase: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (async) with its wall time added to ``times[phase]`` and the collector's share
    of it to ``times[phase + " gc"]``."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, gc0 = time.perf_counter(), _COLLECTOR.total
        try:
            return await func(*args, **kwargs)
        finally:
            times[phase] += time.perf_counter() - t0
            times[f"{phase} gc"] += _COLLECTOR.total - gc0

    return wrapper


def _split(times: dict[str, float]) -> str:
    parts = []
    for phase in PHASES:
        part = f"{phase} {times.get(phase, 0.0):.3f}"
        if phase in GC_PHASES:
            part += f" (gc {times.get(f'{phase} gc', 0.0):.3f})"
        parts.append(part)
    return ", ".join(parts)


@contextlib.contextmanager
def _phase_timers(times: dict[str, float]) -> Iterator[None]:
    """Wrap what ``SimServer.start`` calls; the first publish is the one before the endpoint."""
    patches: list[tuple[Any, str, Any]] = [
        (Server, "init", _timed(times, "Server.init", Server.init)),
        (Server, "start", _timed(times, "endpoint", Server.start)),
        (sim_server, "configure_server",
         _timed(times, "security", sim_server.configure_server)),
        (sim_server, "build_address_space",
         _timed(times, "address space", sim_server.build_address_space)),
        (SimServer, "_publish", _timed(times, "first publish", SimServer._publish)),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


async def _one_start(model: Any) -> dict[str, float]:
    times: dict[str, float] = defaultdict(float)
    server = SimServer(model, port=0, step_mode=True, start=START)  # physics built here
    with _phase_timers(times):
        t0 = time.perf_counter()
        await server.start()
        times["start total"] = time.perf_counter() - t0
    await server.stop()
    return dict(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="jiuke_oasis")
    args = parser.parse_args()
    model = load_model(args.model)
    gc.callbacks.append(_COLLECTOR)
    runs = []
    for k in range(args.repeat):
        times = asyncio.run(_one_start(model))
        runs.append(times)
        print(f"run {k + 1}: start {times['start total']:.3f} s ({_split(times)})")
    keys = {key for r in runs for key in r}
    median = {key: statistics.median(r.get(key, 0.0) for r in runs) for key in keys}
    print(f"median: start {median['start total']:.3f} s ({_split(median)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
