"""Fault location from protection trips and fault indicators, by the topology of the supply.

Fault current flows from the sources along the supply path to the fault. So, in a switch state:

- a fault indicator on line X at bus b sees fault current when X lies on the supply path of the
  fault, or X is the faulted line and b the end it is fed from;
- the breaker that trips is the first breaker met walking from the fault back to the source
  (overcurrent grading); a backbone cable's line differential protection opens the breakers at
  both its ends.

:func:`expected_protection_response` is that rule, for tests and drills. :func:`locate` inverts
it: every section the tripped breaker supplied before the trip is a candidate, and the one whose
expected indicator response matches the report (fewest disagreeing indicators) is the faulted
one. The supply path in a meshed part is one shortest path; indicators and feeder breakers sit
in the radial feeders, where the path is unique. Inverter infeed (PV, BESS) is neglected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandapower as pp

from controllers.flisr.context import FlisrContext
from controllers.flisr.records import FaultKind, FaultLocation, ProtectionReport
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import SwitchRole
from network_models.topology import Section, bus_graph

__all__ = ["FaultZone", "SupplyTree", "expected_protection_response", "locate"]

EdgeKey = tuple[str, int]
FaultPoint = tuple[str, int]  # ("line", line index) or ("bus", bus index)


@dataclass(frozen=True)
class SupplyTree:
    """Shortest supply paths: ``parent[bus] = (parent bus, edge key)``; sources have none."""

    parent: Mapping[int, tuple[int, EdgeKey]]
    reached: frozenset[int]

    @classmethod
    def of(cls, graph: nx.MultiGraph, sources: Iterable[int]) -> SupplyTree:
        parent: dict[int, tuple[int, EdgeKey]] = {}
        queue = deque(s for s in sorted(sources) if s in graph)
        reached = set(queue)
        while queue:
            bus = queue.popleft()
            for other, keys in graph.adj[bus].items():
                if other not in reached:
                    reached.add(other)
                    parent[other] = (bus, min(keys))
                    queue.append(other)
        return cls(parent=parent, reached=frozenset(reached))

    def upward(self, bus: int) -> list[tuple[EdgeKey, int, int]]:
        """(edge, child bus, parent bus) from ``bus`` to its source."""
        path = []
        while bus in self.parent:
            up, key = self.parent[bus]
            path.append((key, bus, up))
            bus = up
        return path


@dataclass(frozen=True, kw_only=True)
class FaultZone:
    """What a located fault takes out of service: sections, or transformers."""

    kind: FaultKind
    sections: tuple[Section, ...] = ()
    trafos: tuple[str, ...] = ()
    tripped: tuple[int, ...] = ()  # switch positions
    last_indicator_with_fault: str | None = None
    first_indicators_without_fault: tuple[str, ...] = ()
    indicator_mismatches: tuple[str, ...] = ()
    note: str = ""
    bounding: tuple[int, ...] = field(default=())  # switch positions touching the zone
    isolating: tuple[int, ...] = field(default=())  # those between the zone and the rest


# ---------------------------------------------------------------------------------------------
# the forward rule


def expected_protection_response(
    model: GridModel,
    *,
    line: str | None = None,
    bus: str | None = None,
    switch_closed: Mapping[str, bool] | None = None,
    context: FlisrContext | None = None,
) -> ProtectionReport:
    """What protection and indicators report for a fault on ``line`` (or at ``bus``).

    ``switch_closed`` overrides the normal switch states before the fault. The report's switch
    states are those after the trip.
    """
    ctx = context or FlisrContext.of(model)
    if (line is None) == (bus is None):
        raise InputError("expected exactly one of line and bus", source="argument", field="line")
    state = ctx.state_from(switch_closed or {})
    point = _point(ctx, line=line, bus=bus)
    tree = SupplyTree.of(_graph(ctx, state), ctx.sources)
    tripped, indicators = fault_response(ctx, state, tree, point, _indicators_at(ctx))
    after = state.copy()
    after[list(tripped)] = False
    return ProtectionReport(
        tripped_breakers=frozenset(ctx.switch_id(k) for k in tripped),
        fault_indicators=frozenset(indicators),
        switch_closed={ctx.switch_id(k): bool(after[k]) for k in range(len(after))},
    )


def fault_response(
    ctx: FlisrContext,
    state: np.ndarray,
    tree: SupplyTree,
    point: FaultPoint,
    indicators_at: Mapping[tuple[int, int], tuple[str, ...]],
) -> tuple[frozenset[int], tuple[str, ...]]:
    """(tripping breaker positions, indicators seeing fault current nearest the fault first)."""
    kind, index = point
    seeing: list[str] = []
    tripped: set[int] = set()
    if kind == "bus":
        if index in tree.reached:
            _walk(ctx, tree, index, [], seeing, tripped, indicators_at)
        return frozenset(tripped), tuple(dict.fromkeys(seeing))
    ends = ctx.line_ends[index]
    at_ends = [k for e in ends for k in ctx.switches_at.get(("l", index, e), ())]
    differential = [k for k in at_ends if ctx.role(k) == SwitchRole.BACKBONE_BREAKER]
    for end in ends:
        first = ctx.switches_at.get(("l", index, end), ())
        connected = all(state[k] for k in first)
        fed = end in tree.reached and tree.parent.get(end, (None, None))[1] != ("line", index)
        if connected and fed:
            seeing.extend(indicators_at.get((index, end), ()))
            _walk(ctx, tree, end, list(first), seeing, tripped, indicators_at)
    if differential:
        tripped = {k for k in differential if state[k]}
    return frozenset(tripped), tuple(dict.fromkeys(seeing))


def _walk(
    ctx: FlisrContext,
    tree: SupplyTree,
    bus: int,
    first: list[int],
    seeing: list[str],
    tripped: set[int],
    indicators_at: Mapping[tuple[int, int], tuple[str, ...]],
) -> None:
    """From the fault at ``bus`` to the source: indicators passed, and the first breaker."""
    breaker = next((k for k in first if ctx.is_breaker(k)), None)
    for (kind, index), child, parent in tree.upward(bus):
        if kind == "line":
            seeing.extend(indicators_at.get((index, child), ()))
            seeing.extend(indicators_at.get((index, parent), ()))
            passed = [
                *ctx.switches_at.get(("l", index, child), ()),
                *ctx.switches_at.get(("l", index, parent), ()),
            ]
        elif kind == "trafo":
            passed = [
                *ctx.switches_at.get(("t", index, child), ()),
                *ctx.switches_at.get(("t", index, parent), ()),
            ]
        elif kind == "switch":
            passed = [int(ctx.net.switch.index.get_loc(index))]
        else:
            passed = []
        if breaker is None:
            breaker = next((k for k in passed if ctx.is_breaker(k)), None)
    if breaker is not None:
        tripped.add(breaker)


# ---------------------------------------------------------------------------------------------
# the inverse: location


def locate(
    ctx: FlisrContext, report: ProtectionReport, state: np.ndarray, work: pp.pandapowerNet
) -> tuple[list[FaultZone], list[int]]:
    """The faulted zones of ``report`` (``state``: switch states after the trip).

    ``work`` is a study copy of the net; its switch states are changed. Returns the zones and the
    tripped breakers that located nothing (not to be re-closed).
    """
    tripped = [_position(ctx, d, "tripped_breakers") for d in sorted(report.tripped_breakers)]
    zones: list[FaultZone] = []
    unlocated: list[int] = []
    backbone: dict[int, list[int]] = {}
    trafos: dict[str, list[int]] = {}
    feeder: list[int] = []
    for k in tripped:
        role = ctx.role(k)
        if role == SwitchRole.BACKBONE_BREAKER and ctx.switch_et[k] == "l":
            backbone.setdefault(int(ctx.switch_element[k]), []).append(k)
        elif role == SwitchRole.TRANSFORMER_BREAKER and ctx.switch_et[k] == "t":
            trafos.setdefault(ctx.trafo_names[int(ctx.switch_element[k])], []).append(k)
        else:
            feeder.append(k)
    for device_id in sorted(report.transformers_out):
        name = _transformer_name(ctx, device_id)
        trafos.setdefault(name, [])

    for line, breakers in sorted(backbone.items()):
        section = ctx.section_of_line[ctx.line_names[line]]
        zones.append(_section_zone(ctx, FaultKind.BACKBONE_CABLE, (section,), tuple(breakers)))
    if trafos:
        zones.append(_trafo_zone(ctx, trafos))
    if feeder:
        pre = state.copy()
        pre[tripped] = True  # as it was when the fault struck
        work.switch["closed"] = pre
        graph = bus_graph(work)
        tree = SupplyTree.of(graph, ctx.sources)
        indicators_at = _indicators_at(ctx)
        for k in feeder:
            zone = _locate_below(ctx, report, pre, work, tree, k, indicators_at)
            if zone is None:
                unlocated.append(k)
            else:
                zones.append(zone)
    return zones, unlocated


def _locate_below(
    ctx: FlisrContext,
    report: ProtectionReport,
    pre: np.ndarray,
    work: pp.pandapowerNet,
    tree: SupplyTree,
    breaker: int,
    indicators_at: Mapping[tuple[int, int], tuple[str, ...]],
) -> FaultZone | None:
    """Among the sections ``breaker`` supplied, the one the indicators point at."""
    candidates = _sections_below(ctx, pre, work, tree, breaker)
    if not candidates:
        return None
    area_lines = {ln for s in candidates for ln in s.lines}
    relevant = {fi for fi, line, _ in ctx.indicators if ctx.line_names[line] in area_lines}
    reported = set(report.fault_indicators) & relevant
    scored = []
    for section in candidates:
        trips, seeing = fault_response(ctx, pre, tree, _section_point(ctx, section), indicators_at)
        if breaker not in trips:
            continue  # a fault there would have tripped another breaker first
        judged = relevant - _internal_indicators(ctx, section)
        mismatch = (reported ^ set(seeing)) & judged
        scored.append((len(mismatch), section, seeing, mismatch))
    if not scored:
        return None
    best = min(s[0] for s in scored)
    chosen = [s for s in scored if s[0] == best]
    seen_near_fault = [fi for fi in chosen[0][2] if fi in reported]
    boundary = {
        fi
        for fi, line, bus in ctx.indicators
        for s in (c[1] for c in chosen)
        if ctx.line_names[line] in s.lines or ctx.bus_names[bus] in s.buses
    }
    note = ""
    if len(chosen) > 1:
        note = "the indicators cannot tell these sections apart: all are isolated"
    return _section_zone(
        ctx,
        FaultKind.FEEDER_SECTION,
        tuple(c[1] for c in chosen),
        (breaker,),
        last_indicator_with_fault=seen_near_fault[0] if seen_near_fault else None,
        first_indicators_without_fault=tuple(sorted(boundary - set(report.fault_indicators))),
        indicator_mismatches=tuple(sorted(set().union(*(c[3] for c in chosen)))),
        note=note,
    )


def _sections_below(
    ctx: FlisrContext, pre: np.ndarray, work: pp.pandapowerNet, tree: SupplyTree, breaker: int
) -> list[Section]:
    """Sections energised through ``breaker`` before the trip (buses, or charged cables)."""
    opened = pre.copy()
    opened[breaker] = False
    work.switch["closed"] = opened
    without = SupplyTree.of(bus_graph(work), ctx.sources).reached
    work.switch["closed"] = pre
    below = tree.reached - without
    found: dict[str, Section] = {}
    for bus in sorted(below):
        section = ctx.section_of_bus.get(ctx.bus_names[bus])
        if section is not None:
            found.setdefault(section.name, section)
    lines = [
        line
        for line, ends in ctx.line_ends.items()
        for end in ends
        if end in below and all(pre[k] for k in ctx.switches_at.get(("l", line, end), ()))
    ]
    if ctx.switch_et[breaker] == "l":
        lines.append(int(ctx.switch_element[breaker]))
    for line in lines:
        section = ctx.section_of_line.get(ctx.line_names[line])
        if section is not None:
            found.setdefault(section.name, section)
    return list(found.values())


def _section_point(ctx: FlisrContext, section: Section) -> FaultPoint:
    if section.buses:
        return ("bus", _bus_index(ctx, section.buses[0]))
    return ("line", _line_index(ctx, section.lines[0]))


def _internal_indicators(ctx: FlisrContext, section: Section) -> set[str]:
    """Indicators inside a section (on its line, at an end without a switch): their answer
    depends on where in the section the fault is."""
    return {
        fi
        for fi, line, bus in ctx.indicators
        if ctx.line_names[line] in section.lines and not ctx.switches_at.get(("l", line, bus))
    }


def _section_zone(
    ctx: FlisrContext,
    kind: FaultKind,
    chosen: tuple[Section, ...],
    tripped: tuple[int, ...],
    **details: object,
) -> FaultZone:
    counts: dict[int, int] = {}
    for section in chosen:
        for k in ctx.positions_of(section.bounding_switches):
            counts[k] = counts.get(k, 0) + 1
    return FaultZone(
        kind=kind,
        sections=chosen,
        tripped=tripped,
        bounding=tuple(sorted(counts)),
        isolating=tuple(sorted(k for k, n in counts.items() if n == 1)),
        **details,  # type: ignore[arg-type]
    )


def _trafo_zone(ctx: FlisrContext, trafos: Mapping[str, list[int]]) -> FaultZone:
    names = tuple(sorted(trafos))
    bounding = sorted(
        k
        for name in names
        for (et, element, _), positions in ctx.switches_at.items()
        if et == "t" and element == ctx.trafo_index[name]
        for k in positions
    )
    lost_whole = [
        s.name
        for s in ctx.model.substations
        if s.transformers and set(s.transformers) <= set(names)
    ]
    return FaultZone(
        kind=FaultKind.SUBSTATION if lost_whole else FaultKind.SUBSTATION_TRANSFORMER,
        trafos=names,
        tripped=tuple(k for name in names for k in trafos[name]),
        bounding=tuple(bounding),
        isolating=tuple(bounding),
        note=f"substation {', '.join(lost_whole)} lost" if lost_whole else "",
    )


def zones_location(ctx: FlisrContext, zones: list[FaultZone]) -> FaultLocation:
    """One location record for all zones."""
    if not zones:
        return FaultLocation(kind=FaultKind.NOT_LOCATED)
    sections = [s for z in zones for s in z.sections]
    notes = [z.note for z in zones if z.note]
    first = zones[0]
    return FaultLocation(
        kind=first.kind,
        sections=tuple(s.name for s in sections),
        lines=tuple(ln for s in sections for ln in s.lines),
        buses=tuple(b for s in sections for b in s.buses),
        trafos=tuple(
            t for z in zones for t in (*z.trafos, *(t for s in z.sections for t in s.trafos))
        ),
        tripped_breakers=tuple(ctx.switch_id(k) for z in zones for k in z.tripped),
        last_indicator_with_fault=first.last_indicator_with_fault,
        first_indicators_without_fault=tuple(
            fi for z in zones for fi in z.first_indicators_without_fault
        ),
        indicator_mismatches=tuple(fi for z in zones for fi in z.indicator_mismatches),
        bounding_switches=tuple(ctx.switch_id(k) for z in zones for k in z.bounding),
        note="; ".join(notes),
    )


# ---------------------------------------------------------------------------------------------
# lookups


def _graph(ctx: FlisrContext, state: np.ndarray) -> nx.MultiGraph:
    work = ctx.study_net()
    work.switch["closed"] = state
    return bus_graph(work)


def _indicators_at(ctx: FlisrContext) -> dict[tuple[int, int], tuple[str, ...]]:
    out: dict[tuple[int, int], list[str]] = {}
    for fi, line, bus in ctx.indicators:
        out.setdefault((line, bus), []).append(fi)
    return {key: tuple(v) for key, v in out.items()}


def _point(ctx: FlisrContext, *, line: str | None, bus: str | None) -> FaultPoint:
    if line is not None:
        return ("line", _line_index(ctx, line))
    assert bus is not None
    return ("bus", _bus_index(ctx, bus))


def _line_index(ctx: FlisrContext, name: str) -> int:
    for index, line in ctx.line_names.items():
        if line == name:
            return index
    raise InputError(
        f"no line {name!r}: expected a line of the model",
        source="argument",
        element=name,
        field="line",
    )


def _bus_index(ctx: FlisrContext, name: str) -> int:
    for index, bus in ctx.bus_names.items():
        if bus == name:
            return index
    raise InputError(
        f"no bus {name!r}: expected a bus of the model",
        source="argument",
        element=name,
        field="bus",
    )


def _position(ctx: FlisrContext, device_id: str, field_name: str) -> int:
    if device_id not in ctx.device_position:
        raise InputError(
            f"no switch {device_id!r} in model {ctx.model.name!r}: expected a breaker id",
            source="ProtectionReport",
            element=device_id,
            field=field_name,
        )
    return ctx.device_position[device_id]


def _transformer_name(ctx: FlisrContext, device_id: str) -> str:
    registry = ctx.model.registry
    if device_id not in registry or registry[device_id].kind.value != "substation_transformer":
        raise InputError(
            f"no substation transformer {device_id!r} in model {ctx.model.name!r}",
            source="ProtectionReport",
            element=device_id,
            field="transformers_out",
        )
    return str(ctx.net.trafo.at[registry[device_id].element.index, "name"])
