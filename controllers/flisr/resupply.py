"""Re-supply of the healthy dead parts after isolation, by one close each, checked by AC.

Healthy de-energised buses form *dead parts* (connected through closed switches); each is
restored by closing one open switch between it and a live bus, so no plan uses more switching
than one close per part. A part is tried from every such switch: the one needing the least
shedding wins, then a normally-open point or tie over a bus-tie or coupler over anything else,
then the lowest loading. Shedding is searched in one batch: every prefix of the part's loads in
shedding order is solved and the shortest one that keeps the limits is taken. Parts are tried
most important first (lowest priority number, then most customers), so a shared alternative
supply goes to them first. A part is never split to be fed from two sides. A restoration may not
add to the violations present after isolation. If the final state still has violations, one bus
coupler or bus-tie is closed when that clears them (:func:`relieve`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp

from controllers.flisr.ac import AcStep, StudyNet, acceptable
from controllers.flisr.context import FlisrContext
from controllers.flisr.records import LoadInfo, StepAction, SwitchingStep
from network_models.ac_checks import Violation
from network_models.registry import SwitchRole

__all__ = [
    "CLOSABLE_ROLES",
    "RestorationRun",
    "in_service_buses",
    "loads_on",
    "relieve",
    "restore_dead_parts",
]

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
class RestorationRun:
    """The evolving plan of one FLISR run: switch states, steps so far, loads kept off."""

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


def restore_dead_parts(
    run: RestorationRun, excluded: set[int], preexisting: list[Violation]
) -> None:
    """Re-supply every dead part not in ``excluded`` (buses never re-energised), most important
    first, adding its sheds and its close to ``run``."""
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
            loads = loads_on(run.ctx, part)
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
        loads = [i for i in loads_on(run.ctx, part) if i not in shed]
        mw = float(sum(run.study.load_p_mw[i.position] for i in loads))
        what = f"{len(loads)} loads, {mw:.2f} MW" if loads else "no loads on it"
        run.add(
            StepAction.CLOSE,
            run.ctx.switch_id(switch),
            f"re-energise {_bus_list(run.ctx, part)} ({what}) from {run.ctx.bus_names[far]}",
        )
        run.state[switch] = True


def _best_supply(
    run: RestorationRun, part: frozenset[int], live: set[int], preexisting: list[Violation]
) -> tuple[int, list[LoadInfo], int] | None:
    """(switch to close, loads to shed, live bus it connects to), or None."""
    order = sorted(loads_on(run.ctx, part), key=LoadInfo.shed_rank)
    prefixes = [
        frozenset(run.shed | {i.position for i in order[:n]}) for n in range(len(order) + 1)
    ]
    best: tuple[tuple[int, int, float], int, int, int] | None = None
    candidates = _supply_switches(run, part, live)
    trials = []
    for switch, _ in candidates:
        trial = run.state.copy()
        trial[switch] = True
        trials.append((trial, prefixes))
    # every candidate's every prefix in one AC batch
    for (switch, far), solved in zip(candidates, run.study.solve_many(trials), strict=True):
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


def _supply_switches(
    run: RestorationRun, part: frozenset[int], live: set[int]
) -> list[tuple[int, int]]:
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


def relieve(run: RestorationRun, preexisting: list[Violation]) -> None:
    """If the restored state has violations, close one coupler or bus-tie that clears them."""
    shed = [frozenset(run.shed)]
    now = run.study.solve(run.state, shed)[0]
    if not now.violations:
        return
    candidates = []
    for k in np.flatnonzero(~run.state):
        k = int(k)
        device = run.ctx.devices[k]
        if k in run.forbidden or device is None or device.role not in _RELIEF_ROLES:
            continue
        trial = run.state.copy()
        trial[k] = True
        candidates.append((k, device, trial))
    # every candidate in one AC batch; the first that clears the violations is taken
    solved = run.study.solve_many([(trial, shed) for _, _, trial in candidates])
    for (k, device, _), (after,) in zip(candidates, solved, strict=True):
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
# parts and loads


def in_service_buses(run: RestorationRun) -> set[int]:
    """Buses in service in the study net (net indices)."""
    bus = run.study.net.bus
    return {int(b) for b, ok in zip(bus.index, bus["in_service"], strict=True) if ok}


def _dead_parts(run: RestorationRun, live: set[int], excluded: set[int]) -> list[frozenset[int]]:
    """Connected sets of healthy buses without supply (``excluded`` left out)."""
    dead = in_service_buses(run) - live - excluded
    return run.ctx.parts_in(run.study.net, run.state, dead)


def _importance(ctx: FlisrContext, part: frozenset[int]) -> tuple[int, int]:
    loads = [i for i in loads_on(ctx, part) if i.kind == "load"]
    top = min((i.priority or 99 for i in loads), default=99)
    return (top, -sum(i.customers for i in loads))


def loads_on(ctx: FlisrContext, buses: set[int] | frozenset[int]) -> list[LoadInfo]:
    """The sheddable consumers at ``buses`` (net indices)."""
    return [i for i in ctx.loads if i.bus in buses]


def _loading(step: AcStep) -> float:
    return max(step.max_line_loading_pct, step.max_trafo_loading_pct)


def _bus_list(ctx: FlisrContext, buses: frozenset[int]) -> str:
    names = sorted(ctx.bus_names[b] for b in buses)
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _load_words(info: LoadInfo) -> str:
    if info.kind == "ev_site":
        return "EV charging"
    critical = ", critical" if info.critical else ""
    return f"priority {info.priority}, {info.customers} customers{critical}"
