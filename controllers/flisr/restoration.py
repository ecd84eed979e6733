"""Isolation and restoration: the switching sequence after a located fault, checked by AC.

See :mod:`controllers.flisr` for the method. Healthy de-energised buses form *dead parts*
(connected through closed switches); each is restored by closing one open switch between it and
a live bus, so no plan uses more switching than one close per part. A part is tried from every
such switch: the one needing the least shedding wins, then a normally-open point or tie over a
bus-tie or coupler over anything else, then the lowest loading. Shedding is searched in one
batch: every prefix of the part's loads in shedding order is solved and the shortest one that
keeps the limits is taken. Parts are tried most important first (lowest priority number, then
most customers), so a shared alternative supply goes to them first. A part is never split to
be fed from two sides. Violations present after isolation (elsewhere) are reported as
pre-existing; a restoration may not add to them. If the final state still has violations, one
bus coupler or bus-tie is closed when that clears them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower as pp

from controllers.flisr.ac import AcStep, StudyNet, acceptable
from controllers.flisr.context import FlisrContext, LoadInfo
from controllers.flisr.location import FaultZone, locate, zones_location
from controllers.flisr.records import (
    FaultKind,
    LoadRecord,
    OperatingValues,
    ProtectionReport,
    RestorationPlan,
    StepAction,
    SwitchingStep,
)
from network_models.ac_checks import AcLimits, Violation
from network_models.registry import SwitchRole

__all__ = ["CLOSABLE_ROLES", "restore"]

CLOSABLE_ROLES: frozenset[SwitchRole] = frozenset(
    {
        SwitchRole.NORMALLY_OPEN_POINT,
        SwitchRole.TIE,
        SwitchRole.BUS_TIE,
        SwitchRole.BUS_COUPLER,
        SwitchRole.RING_SWITCH,
        SwitchRole.SECTIONALISER,
        SwitchRole.FEEDER_BREAKER,
    }
)
_ROLE_PREFERENCE = {
    SwitchRole.NORMALLY_OPEN_POINT: 0,
    SwitchRole.TIE: 0,
    SwitchRole.BUS_TIE: 1,
    SwitchRole.BUS_COUPLER: 1,
}
_RELIEF_ROLES = (SwitchRole.BUS_COUPLER, SwitchRole.BUS_TIE)


@dataclass
class _Run:
    """The evolving plan of one FLISR run."""

    ctx: FlisrContext
    study: StudyNet
    state: np.ndarray
    forbidden: set[int]
    steps: list[SwitchingStep]
    shed: set[int]  # net.load positions kept off
    notes: list[str]

    def add(self, action: StepAction, device: str, reason: str) -> None:
        self.steps.append(
            SwitchingStep(order=len(self.steps) + 1, action=action, device=device, reason=reason)
        )


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
    run = _Run(ctx, study, state.copy(), forbidden, [], set(), [])
    zone_buses = {_bus(ctx, b) for z in zones for s in z.sections for b in s.buses}
    earlier_buses = {_bus(ctx, b) for s in earlier for b in s.buses} - zone_buses
    tripped = {k for z in zones for k in z.tripped}
    islanded = _islanded_microgrid_buses(ctx, state, tripped) - zone_buses
    if islanded:
        run.notes.append("microgrid islanded (breaker open): left to the islanding controller")
    # loads of earlier isolated sections were off before this fault: not this fault's
    interrupted = _loads_on(
        ctx, _in_service(run) - study.energised(state) - islanded - earlier_buses)

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
    _restore_dead_parts(run, zone_buses | earlier_buses | islanded | unknown, preexisting)
    _relieve(run, preexisting)
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


def _isolate_and_reclose(run: _Run, zones: list[FaultZone]) -> None:
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
# restoration


def _restore_dead_parts(run: _Run, excluded: set[int], preexisting: list[Violation]) -> None:
    tried: set[frozenset[int]] = set()
    while True:
        live = run.study.energised(run.state)
        parts = [p for p in _dead_parts(run, live, excluded) if p not in tried]
        if not parts:
            return
        parts.sort(key=lambda p: _importance(run.ctx, p))
        part = parts[0]
        tried.add(part)
        choice = _best_supply(run, part, live, preexisting)
        if choice is None:
            loads = _loads_on(run.ctx, part)
            if loads:
                run.notes.append(
                    f"no supply within limits for {len(loads)} loads at "
                    f"{_bus_list(run.ctx, part)}: left unserved"
                )
            continue
        switch, shed, far = choice
        for info in shed:
            run.add(
                StepAction.SHED,
                info.device,
                f"capacity short: keep off ({_load_words(info)}) before closing "
                f"{run.ctx.switch_id(switch)}",
            )
            run.shed.add(info.position)
        loads = [i for i in _loads_on(run.ctx, part) if i not in shed]
        mw = float(sum(run.study.load_p_mw[i.position] for i in loads))
        what = f"{len(loads)} loads, {mw:.2f} MW" if loads else "no loads on it"
        run.add(
            StepAction.CLOSE,
            run.ctx.switch_id(switch),
            f"re-energise {_bus_list(run.ctx, part)} ({what}) from {run.ctx.bus_names[far]}",
        )
        run.state[switch] = True


def _best_supply(
    run: _Run, part: frozenset[int], live: set[int], preexisting: list[Violation]
) -> tuple[int, list[LoadInfo], int] | None:
    """(switch to close, loads to shed, live bus it connects to), or None."""
    order = sorted(_loads_on(run.ctx, part), key=LoadInfo.shed_rank)
    prefixes = [
        frozenset(run.shed | {i.position for i in order[:n]}) for n in range(len(order) + 1)
    ]
    best: tuple[tuple[int, int, float], int, int, int] | None = None
    for switch, far in _supply_switches(run, part, live):
        trial = run.state.copy()
        trial[switch] = True
        solved = run.study.solve(trial, prefixes)
        n = next((n for n, s in enumerate(solved) if acceptable(s, preexisting)), None)
        if n is None or (order and n == len(order)):
            continue  # closing onto a part with every load shed restores nobody
        key = (n, _ROLE_PREFERENCE.get(run.ctx.role(switch), 2), _loading(solved[n]))
        if best is None or key < best[0]:
            best = (key, switch, n, far)
    if best is None:
        return None
    _, switch, n, far = best
    return switch, order[:n], far


def _supply_switches(run: _Run, part: frozenset[int], live: set[int]) -> list[tuple[int, int]]:
    """Open switches that would join ``part`` to a live bus: (position, that live bus)."""
    ctx, net = run.ctx, run.study.net
    found = []
    for k in np.flatnonzero(~run.state):
        k = int(k)
        device = ctx.devices[k]
        if (
            k in run.forbidden
            or device is None
            or device.role not in CLOSABLE_ROLES
            or not device.remote_controlled
        ):
            continue
        sides = _sides(ctx, net, run.state, k)
        if sides is None:
            continue
        a, b = sides
        if a in part and b in live:
            found.append((k, b))
        elif b in part and a in live:
            found.append((k, a))
    return found


def _sides(
    ctx: FlisrContext, net: pp.pandapowerNet, state: np.ndarray, k: int
) -> tuple[int, int] | None:
    """The two buses a switch joins when closed (through its branch), if that branch conducts."""
    bus, element, et = int(ctx.switch_bus[k]), int(ctx.switch_element[k]), ctx.switch_et[k]
    if et == "b":
        return bus, element
    if et == "l":
        if not bool(net.line.at[element, "in_service"]):
            return None
        ends = ctx.line_ends[element]
        far = ends[1] if ends[0] == bus else ends[0]
        if not all(state[j] for j in ctx.switches_at.get(("l", element, far), ())):
            return None
        return bus, far
    if et == "t":
        if not bool(net.trafo.at[element, "in_service"]):
            return None
        hv, lv = int(net.trafo.at[element, "hv_bus"]), int(net.trafo.at[element, "lv_bus"])
        far = lv if hv == bus else hv
        if not all(state[j] for j in ctx.switches_at.get(("t", element, far), ())):
            return None
        return bus, far
    return None


def _relieve(run: _Run, preexisting: list[Violation]) -> None:
    """If the restored state has violations, close one coupler or bus-tie that clears them."""
    now = run.study.solve(run.state, [frozenset(run.shed)])[0]
    if not now.violations:
        return
    for k in np.flatnonzero(~run.state):
        k = int(k)
        device = run.ctx.devices[k]
        if k in run.forbidden or device is None or device.role not in _RELIEF_ROLES:
            continue
        trial = run.state.copy()
        trial[k] = True
        after = run.study.solve(trial, [frozenset(run.shed)])[0]
        if after.converged and not after.violations:
            run.add(
                StepAction.CLOSE,
                device.id,
                "relieve "
                + ", ".join(sorted({f"{v.kind} at {v.element}" for v in now.violations})),
            )
            run.state[k] = True
            return
    run.notes.append(
        f"{len(now.violations)} violations remain after restoration (those present after "
        "isolation are not made worse); no single bus coupler or bus-tie clears them"
    )


# ---------------------------------------------------------------------------------------------
# parts, loads and the record


def _in_service(run: _Run) -> set[int]:
    bus = run.study.net.bus
    return {int(b) for b, ok in zip(bus.index, bus["in_service"], strict=True) if ok}


def _dead_parts(run: _Run, live: set[int], excluded: set[int]) -> list[frozenset[int]]:
    """Connected sets of healthy buses without supply (``excluded`` left out)."""
    dead = _in_service(run) - live - excluded
    graph = run.study.graph(run.state)
    sub = nx.Graph()
    sub.add_nodes_from(dead)
    sub.add_edges_from((u, v) for u, v in graph.edges() if u in dead and v in dead)
    return [frozenset(c) for c in nx.connected_components(sub)]


def _importance(ctx: FlisrContext, part: frozenset[int]) -> tuple[int, int]:
    loads = [i for i in _loads_on(ctx, part) if i.kind == "load"]
    top = min((i.priority or 99 for i in loads), default=99)
    return (top, -sum(i.customers for i in loads))


def _loads_on(ctx: FlisrContext, buses: set[int] | frozenset[int]) -> list[LoadInfo]:
    return [i for i in ctx.loads if i.bus in buses]


def _islanded_microgrid_buses(ctx: FlisrContext, state: np.ndarray, tripped: set[int]) -> set[int]:
    """Buses of microgrids whose breaker was opened to island (not tripped by protection)."""
    return {
        b
        for k, buses in ctx.microgrid_breakers.items()
        if not state[k] and k not in tripped
        for b in buses
    }


def _loading(step: AcStep) -> float:
    return max(step.max_line_loading_pct, step.max_trafo_loading_pct)


def _bus(ctx: FlisrContext, name: str) -> int:
    return next(i for i, n in ctx.bus_names.items() if n == name)


def _bus_list(ctx: FlisrContext, buses: frozenset[int]) -> str:
    names = sorted(ctx.bus_names[b] for b in buses)
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _load_words(info: LoadInfo) -> str:
    if info.kind == "ev_site":
        return "EV charging"
    critical = ", critical" if info.critical else ""
    return f"priority {info.priority}, {info.customers} customers{critical}"


def _record(run: _Run, info: LoadInfo) -> LoadRecord:
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
    run: _Run,
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
