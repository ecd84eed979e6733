"""Isolation and restoration: the switching sequence after a located fault, checked by AC.

See :mod:`controllers.flisr` for the method. :func:`restore` locates the fault
(:mod:`~controllers.flisr.location`), opens the switches that isolate it, re-closes the tripped
breakers up to it, has the healthy dead parts re-supplied (:mod:`~controllers.flisr.resupply`)
and writes the decision record. Violations present after isolation (elsewhere) are reported as
pre-existing; a restoration may not add to them.
"""

from __future__ import annotations

import time

import numpy as np

from controllers.flisr.ac import AcStep, StudyNet
from controllers.flisr.context import FlisrContext
from controllers.flisr.location import locate, zones_location
from controllers.flisr.records import (
    FaultKind,
    FaultZone,
    LoadInfo,
    LoadRecord,
    OperatingValues,
    ProtectionReport,
    RestorationPlan,
    StepAction,
)
from controllers.flisr.resupply import (
    RestorationRun,
    in_service_buses,
    loads_on,
    relieve,
    restore_dead_parts,
)
from network_models.ac_checks import AcLimits, Violation

__all__ = ["restore"]


def restore(
    ctx: FlisrContext,
    report: ProtectionReport,
    operating: OperatingValues,
    limits: AcLimits,
    start: float,
    *,
    isolated: tuple[str, ...] = (),
) -> RestorationPlan:
    """The plan for ``report`` (see :func:`controllers.flisr.plan_restoration`)."""
    state = ctx.state_from(report.switch_closed)
    study = StudyNet(ctx, operating, limits)
    zones, unlocated = locate(ctx, report, state, study.net)
    study.set_trafos_out(ctx.trafo_index[t] for z in zones for t in z.trafos)
    # earlier faults still isolated: their switches stay open, their buses dead
    earlier = [s for s in ctx.sections if s.name in set(isolated)]
    forbidden = {k for z in zones for k in z.bounding}
    forbidden |= set(ctx.positions_of(tuple(sw for s in earlier for sw in s.bounding_switches)))
    run = RestorationRun(ctx, study, state.copy(), forbidden, [], set(), [])
    zone_buses = {_bus(ctx, b) for z in zones for s in z.sections for b in s.buses}
    earlier_buses = {_bus(ctx, b) for s in earlier for b in s.buses} - zone_buses
    tripped = {k for z in zones for k in z.tripped}
    islanded = _islanded_microgrid_buses(ctx, state, tripped) - zone_buses
    if islanded:
        run.notes.append("microgrid islanded (breaker open): left to the islanding controller")
    # loads of earlier isolated sections were off before this fault: not this fault's
    interrupted = loads_on(
        ctx, in_service_buses(run) - study.energised(state) - islanded - earlier_buses)

    if not zones and not unlocated:
        return _plan(ctx, run, report, zones, interrupted, "no_fault", start, limits, [])
    unknown: set[int] = set()
    for k in unlocated:
        # the fault is somewhere below: nothing there is re-energised from any side
        trial = state.copy()
        trial[k] = True
        unknown |= study.energised(trial) - study.energised(state)
        run.notes.append(
            f"{ctx.switch_id(k)} tripped but the indicators locate no section below it: it "
            "stays open and what it fed stays off"
        )
    _isolate_and_reclose(run, zones)
    baseline = study.solve(run.state, [frozenset()])[0]
    preexisting = list(baseline.violations)
    restore_dead_parts(run, zone_buses | earlier_buses | islanded | unknown, preexisting)
    relieve(run, preexisting)
    final = study.solve(run.state, [frozenset(run.shed)])[0]
    if not zones:
        status = "not_located"
    elif not [i for i in interrupted if i.bus not in zone_buses]:
        status = "nothing_to_restore"
    else:
        status = "pending"  # decided in _plan from what was restored
    return _plan(ctx, run, report, zones, interrupted, status, start, limits, preexisting, final)


# ---------------------------------------------------------------------------------------------
# isolation


def _isolate_and_reclose(run: RestorationRun, zones: list[FaultZone]) -> None:
    ctx = run.ctx
    for zone in zones:
        what = _zone_words(ctx, zone)
        for k in zone.isolating:
            if run.state[k]:
                run.add(StepAction.OPEN, ctx.switch_id(k), f"isolate {what}")
                run.state[k] = False
    for zone in zones:
        for k in zone.tripped:
            if k not in run.forbidden and not run.state[k]:
                run.add(
                    StepAction.CLOSE,
                    ctx.switch_id(k),
                    f"re-energise the healthy part up to the isolated {_zone_words(ctx, zone)}",
                )
                run.state[k] = True


def _zone_words(ctx: FlisrContext, zone: FaultZone) -> str:
    if zone.trafos:
        return "lost transformer " + ", ".join(zone.trafos)
    return "faulted section " + ", ".join(s.name for s in zone.sections)


# ---------------------------------------------------------------------------------------------
# lookups and the record


def _islanded_microgrid_buses(ctx: FlisrContext, state: np.ndarray, tripped: set[int]) -> set[int]:
    """Buses of microgrids whose breaker was opened to island (not tripped by protection)."""
    return {
        b
        for k, buses in ctx.microgrid_breakers.items()
        if not state[k] and k not in tripped
        for b in buses
    }


def _bus(ctx: FlisrContext, name: str) -> int:
    return next(i for i, n in ctx.bus_names.items() if n == name)


def _record(run: RestorationRun, info: LoadInfo) -> LoadRecord:
    return LoadRecord(
        device=info.device,
        kind=info.kind,
        bus=run.ctx.bus_names[info.bus],
        p_mw=float(run.study.load_p_mw[info.position]),
        customers=info.customers,
        priority=info.priority,
        critical=info.critical,
    )


def _plan(
    ctx: FlisrContext,
    run: RestorationRun,
    report: ProtectionReport,
    zones: list[FaultZone],
    interrupted: list[LoadInfo],
    status: str,
    start: float,
    limits: AcLimits,
    preexisting: list[Violation],
    final: AcStep | None = None,
) -> RestorationPlan:
    if final is None:
        final = run.study.solve(run.state, [frozenset(run.shed)])[0]
    live = run.study.energised(run.state)
    restored = [i for i in interrupted if i.bus in live and i.position not in run.shed]
    shed = [i for i in interrupted if i.position in run.shed]
    unserved = [i for i in interrupted if i.bus not in live and i.position not in run.shed]
    if status == "pending":
        zone_buses = {_bus(ctx, b) for z in zones for s in z.sections for b in s.buses}
        outside = [i for i in unserved if i.bus not in zone_buses]
        status = "partially_restored" if shed or outside else "restored"
    location = zones_location(ctx, zones)
    if zones and location.kind is FaultKind.NOT_LOCATED:
        status = "not_located"
    return RestorationPlan(
        model=ctx.model.name,
        status=status,
        location=location,
        steps=tuple(run.steps),
        interrupted=tuple(_record(run, i) for i in interrupted),
        restored=tuple(_record(run, i) for i in restored),
        shed=tuple(_record(run, i) for i in shed),
        unserved=tuple(_record(run, i) for i in unserved),
        check=final.as_check(
            [
                v
                for v in final.violations
                if (v.kind, v.element) in {(p.kind, p.element) for p in preexisting}
            ],
            limits,
        ),
        final_switch_closed={ctx.switch_id(k): bool(run.state[k]) for k in range(len(run.state))},
        solve_time_s=time.perf_counter() - start,
        notes=tuple(run.notes),
    )
