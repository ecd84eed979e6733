"""Monte Carlo reliability of a grid on Dask: SAIFI, SAIDI, CAIDI, ASAI, MAIFI and ENS of the
model as built (``as_built``: the diamond, for Jiuke) and of its single-ring derivative, with
FLISR and with manual switching.

Two stages of independent tasks on a ``dask.distributed`` cluster (a ``LocalCluster`` on this
machine by default, or an existing scheduler):

1. **plans**: gridctl's FLISR for every (design, failure, load level), a few per task; each plan
   is made once and reused by every year (the cache of issue 17: the figures equal those of
   the uncached run, ``plan_cache=False``, which plans each failure where it is drawn);
2. **years**: simulated years (:mod:`~gridctl.studies.reliability_years`), each from its own
   seed, a few per task; the figures are the same for any number of workers and any task size.

Each finished task is stored (:class:`~gridctl.studies.reliability_store.TaskStore`) as it
arrives, so a study that is stopped resumes with what is missing; a worker lost mid-study costs
its running tasks, which the scheduler runs again elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower as pp

from gridctl.studies.reliability_assumptions import ReliabilityAssumptions
from gridctl.studies.reliability_elements import (
    NOT_DRAWN,
    FailableElement,
    OutageEffect,
    consumers_of,
    failable_elements,
    load_levels,
    operating_at,
    outage_effect,
    single_ring_model,
)
from gridctl.studies.reliability_store import TaskStore
from gridctl.studies.reliability_years import YearInputs, indices, simulate_year
from network_models.model import GridModel

__all__ = ["ReliabilitySettings", "ReliabilityStudy", "run_reliability"]

Progress = Callable[[str, int, int], None]  # (stage, tasks done, tasks in all)


@dataclass(frozen=True, kw_only=True)
class ReliabilitySettings:
    years: int = 1000
    seed: int = 0
    load_levels: int = 3
    years_per_task: int = 25
    plans_per_task: int = 12
    plan_cache: bool = True


@dataclass(frozen=True)
class ReliabilityStudy:
    """What was studied and what it gave (``figures`` as :func:`~.reliability_years.indices`)."""

    designs: dict[str, str]  # design -> model name
    opened_for_single_ring: tuple[str, ...]
    elements: tuple[FailableElement, ...]
    figures: dict
    years: int
    study_key: str
    plans_made: int
    years_resumed: int
    notes: tuple[str, ...]
    plans_wall_s: float = 0.0
    years_wall_s: float = 0.0


def run_reliability(model: GridModel, table: ReliabilityAssumptions,
                    settings: ReliabilitySettings, *, client=None, scheduler: str | None = None,
                    workers: int = 2, processes: bool = True, store: str | Path | None = None,
                    progress: Progress | None = None) -> ReliabilityStudy:
    """The study of ``model`` (see the module). ``client``: an existing ``distributed.Client``;
    else ``scheduler`` (``tcp://HOST:PORT``); else a ``LocalCluster`` of ``workers`` on
    127.0.0.1 (``processes=False``: threads of this process)."""
    designs = {"as_built": model}
    opened: tuple[str, ...] = ()
    notes = [NOT_DRAWN]
    if model.switching_stations and model.backbone_lines:
        designs["single_ring"], opened = single_ring_model(model)
    else:
        notes.append("no switching stations with a backbone: no single-ring derivative")
    elements = failable_elements(model, table)
    levels = load_levels(model, table, settings.load_levels)
    plan_key = _plan_key(designs, table, settings)
    key = hashlib.sha256(f"{plan_key};format=2;seed={settings.seed}".encode()).hexdigest()[:20]
    faults = sorted({e.fault for e in elements if e.fault[0] != "lv"})
    consumers = consumers_of(model)
    inputs = YearInputs(
        seed=settings.seed, designs=tuple(designs),
        rates_per_year=np.array([e.rate_per_year for e in elements]),
        repair_h=np.array([e.repair_h for e in elements]), levels=levels,
        consumer_class=tuple(c.customer_class for c in consumers),
        customers=np.array([c.customers for c in consumers], dtype=float),
        restoration_h={"flisr": table.flisr_restoration_h,
                       "manual": table.manual_restoration_h},
        momentary_h=table.momentary_threshold_h,
        element_kind=tuple(e.kind for e in elements))
    tasks = TaskStore(store, key, plan_key)
    with ExitStack() as stack:
        stack.callback(tasks.close)
        client = client or stack.enter_context(_client(scheduler, workers, processes))
        ops = [operating_at(model, levels, k, table) for k in range(settings.load_levels)]
        plans_made = 0
        start = time.perf_counter()
        if settings.plan_cache:
            plans_made = _plan_stage(client, tasks, designs, faults, ops, settings, progress)
            plans = tasks.plans()
            effects = _effects_table(elements, designs, plans, settings.load_levels)
            source = ("table", effects)
        else:
            source = ("plan", (designs, [e.fault for e in elements], ops))
        planned = time.perf_counter()
        done = tasks.years(settings.years)
        resumed = len(done)
        done.update(_year_stage(client, tasks, inputs, source, settings, set(done), progress))
        simulated = time.perf_counter()
    figures = indices([done[y] for y in range(settings.years)], consumers)
    return ReliabilityStudy(designs={d: m.name for d, m in designs.items()},
                            opened_for_single_ring=opened, elements=elements, figures=figures,
                            years=settings.years, study_key=key, plans_made=plans_made,
                            years_resumed=resumed, notes=tuple(notes),
                            plans_wall_s=planned - start, years_wall_s=simulated - planned)


@contextmanager
def _client(scheduler: str | None, workers: int, processes: bool) -> Iterator:
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler, timeout=10) as client:
            yield client
        return
    # its HTTP server on a free loopback port (8787 may be another study's); one thread per
    # worker: FLISR's context serves one plan at a time, and two cores are two
    # workers; numeric libraries kept to one thread each (no oversubscription)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                      protocol="tcp", host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        yield client


def _plan_stage(client, tasks: TaskStore, designs: dict[str, GridModel], faults: list,
                ops: list, settings: ReliabilitySettings, progress: Progress | None) -> int:
    from distributed import as_completed

    have = tasks.plans()
    todo = [(d, f, k) for d in designs for f in faults for k in range(len(ops))
            if (d, _fault_name(f), k) not in have]
    if not todo:
        return 0
    models = {d: client.scatter(m, broadcast=True, hash=False) for d, m in designs.items()}
    ops_future = client.scatter(ops, broadcast=True, hash=False)
    chunks = [todo[i:i + settings.plans_per_task]
              for i in range(0, len(todo), settings.plans_per_task)]
    futures = []
    for chunk in chunks:
        design = chunk[0][0]
        same = [c for c in chunk if c[0] == design]
        rest = [c for c in chunk if c[0] != design]
        for part in (same, rest):
            if part:
                futures.append(client.submit(_plans_task, models[part[0][0]], part, ops_future,
                                             pure=False))
    try:
        for n, future in enumerate(as_completed(futures), start=1):
            tasks.add_plans(future.result())
            if progress:
                progress("plans", n, len(futures))
    except BaseException:  # stopped: what is stored stays, nothing runs on for nobody
        client.cancel(futures)
        raise
    return len(todo)


def _plans_task(model: GridModel, chunk: list, ops: list) -> list:
    from controllers.flisr import FlisrContext

    ctx = FlisrContext.of(model)
    return [(design, _fault_name(fault), level, outage_effect(model, ctx, fault, ops[level]))
            for design, fault, level in chunk]


def _effects_table(elements, designs, plans, n_levels: int) -> dict:
    """``{design: [[effect per level] per element]}``; distribution transformers need no plan."""
    out = {}
    for design, model in designs.items():
        rows = []
        for e in elements:
            if e.fault[0] == "lv":
                effect = outage_effect(model, None, e.fault, None)  # type: ignore[arg-type]
                rows.append([effect] * n_levels)
            else:
                rows.append([plans[(design, _fault_name(e.fault), k)] for k in range(n_levels)])
        out[design] = rows
    return out


def _year_stage(client, tasks: TaskStore, inputs: YearInputs, source, settings,
                done: set[int], progress: Progress | None) -> dict[int, dict]:
    from distributed import as_completed

    todo = [y for y in range(settings.years) if y not in done]
    chunks = [todo[i:i + settings.years_per_task]
              for i in range(0, len(todo), settings.years_per_task)]
    if not chunks:
        return {}
    shared = client.scatter((inputs, source), broadcast=True, hash=False)
    futures = [client.submit(_years_task, chunk, shared, pure=False) for chunk in chunks]
    out: dict[int, dict] = {}
    try:
        for n, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            tasks.add_years(result)
            out.update(result)
            if progress:
                progress("years", n, len(futures))
    except BaseException:
        client.cancel(futures)
        raise
    return out


def _years_task(years: list[int], shared) -> dict[int, dict]:
    inputs, (kind, data) = shared
    if kind == "table":
        def effect_of(design: str, element: int, level: int) -> OutageEffect:
            return data[design][element][level]
    else:
        from controllers.flisr import FlisrContext

        designs, faults, ops = data
        contexts = {d: FlisrContext.of(m) for d, m in designs.items()}

        def effect_of(design: str, element: int, level: int) -> OutageEffect:
            return outage_effect(designs[design], contexts[design], faults[element], ops[level])
    return {y: simulate_year(y, inputs, effect_of) for y in years}


def _fault_name(fault: tuple[str, str]) -> str:
    return f"{fault[0]}:{fault[1]}"


def _plan_key(designs: dict[str, GridModel], table: ReliabilityAssumptions,
              settings: ReliabilitySettings) -> str:
    """What the plans depend on: the designs, the table and the load levels (not the seed)."""
    digest = hashlib.sha256()
    for design, model in designs.items():
        digest.update(design.encode())
        digest.update(pp.to_json(model.net).encode())
        digest.update(repr(model.registry.devices).encode())
    digest.update(table.fingerprint().encode())
    digest.update(f"levels={settings.load_levels}".encode())
    return digest.hexdigest()[:20]
