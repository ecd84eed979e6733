"""Open-loop distribution feeders: traced from their head breakers in the current switch state.

Public names are imported from :mod:`network_models.topology`, which holds the vocabulary
(names, not bus indices; every element uniquely named) this module follows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import pandapower as pp

from network_models._net_tables import (
    BRANCH_TABLES,
    SWITCHED_TABLE,
    BranchKey,
    branch_rows,
    build_bus_graph,
    bus_set,
    open_branch_ends,
    source_buses,
    switch_rows,
    unique_names,
)
from network_models.errors import ModelError
from network_models.registry import DeviceRegistry, SwitchRole


@dataclass(frozen=True, kw_only=True)
class Feeder:
    """An open-loop distribution feeder as the current switch state makes it.

    ``name`` is its head switch's name. ``buses`` are those it supplies, outward from the head
    (the station section ``head_bus`` is not one of them); ``lines`` and ``trafos`` are those it
    energises, including a cable charged up to an open switch at its far end. ``open_points`` are
    the open switches with one side supplied by this feeder and the other not: where it meets its
    neighbours, the normally-open points in the normal state. All empty when the head is open.
    """

    name: str
    head_switch: str
    head_bus: str
    buses: tuple[str, ...]
    lines: tuple[str, ...]
    trafos: tuple[str, ...]
    open_points: tuple[str, ...]


def switch_roles(net: pp.pandapowerNet, registry: DeviceRegistry) -> dict[str, SwitchRole]:
    """Switch name → role, for the switches of the registry (its ``element.index`` is the row)."""
    names = unique_names(net, "switch")
    roles: dict[str, SwitchRole] = {}
    for device in registry.switches:
        if device.element.index not in names:
            raise ModelError(
                f"switch row {device.element.index} is not in net.switch: expected the row of "
                "the switch this device is",
                element=device.id,
                field="element.index",
            )
        roles[names[device.element.index]] = device.role
    return roles


def distribution_feeders(
    net: pp.pandapowerNet, roles: Mapping[str, SwitchRole]
) -> tuple[Feeder, ...]:
    """Every feeder, one per ``FEEDER_BREAKER`` switch, as the current switch state makes it.

    A feeder is traced from its head breaker outward without crossing any feeder breaker and
    stops at open switches. For a line switch the ``bus`` of the switch is the station section and
    the line is the feeder's first cable; for a bus-bus switch ``bus`` is the station section and
    ``element`` the feeder's first bus. Ordered by switch index.
    """
    walk = _walk_feeders(net, roles)
    return tuple(_feeder_record(walk, trace) for trace in walk.traces)


def feeder_of_bus(feeders: Sequence[Feeder], bus: str) -> Feeder | None:
    """The feeder supplying the bus named ``bus``; ``None`` if no feeder supplies it.

    Raises ``ModelError`` when two feeders supply it (their open point is closed).
    """
    owners = [f for f in feeders if bus in f.buses]
    if len(owners) > 1:
        raise ModelError(
            f"bus is supplied by {len(owners)} feeders ({', '.join(f.name for f in owners)}): "
            "expected one; the open point between them is closed",
            element=bus,
        )
    return owners[0] if owners else None


def check_open_loop_feeders(net: pp.pandapowerNet, roles: Mapping[str, SwitchRole]) -> list[str]:
    """Problems with the open-loop operation of the feeders; an empty list means none.

    Reported: feeders joined to each other (two feeder breakers supply the same buses), a feeder
    reaching a source or a station section other than through its breaker, a loop inside a feeder,
    and a feeder with no open point towards another feeder (nothing to restore it from). Feeders
    whose head is open are not checked.
    """
    walk = _walk_feeders(net, roles)
    supplied_by: dict[BranchKey, set[int]] = defaultdict(set)
    for trace in walk.traces:
        for thing in _supplied(trace):
            supplied_by[thing].add(trace.head)
    name = walk.names["switch"]
    problems: list[str] = []
    for trace in walk.traces:
        if not trace.reach:
            continue
        sharing = [u.head for u in walk.traces if u.start is not None and u.start in trace.reach]
        if sharing[0] != trace.head:
            continue  # reported with the first feeder of its group
        if len(sharing) > 1:
            problems.append(
                f"feeders {', '.join(name[h] for h in sharing)} are joined: {len(trace.reach)} "
                "buses are supplied from more than one feeder breaker (expected an open point "
                "between them)"
            )
            continue
        reached = _nearest(trace.reach, walk.station_buses | walk.sources)
        if reached is not None:
            what = "source" if reached in walk.sources else "station section"
            problems.append(
                f"feeder {name[trace.head]} reaches {what} {walk.names['bus'][reached]!r} other "
                "than through its feeder breaker: it is fed from two sides (expected an open point)"
            )
            continue
        loop = _loop(walk.cut_graph, trace.reach)
        if loop:
            problems.append(
                f"feeder {name[trace.head]} is meshed: a closed loop through "
                f"{', '.join(_element_name(walk, key) for key in loop)} (expected one open point)"
            )
            continue
        if not any(supplied_by.get(far, set()) - {trace.head} for _, far in trace.open_points):
            problems.append(
                f"feeder {name[trace.head]} has no open point towards another feeder: "
                "it cannot be restored from another side"
            )
    return problems


@dataclass(frozen=True)
class _Trace:
    head: int  # switch row
    head_bus: int
    start: int | None  # first bus of the feeder, None when nothing beyond the head conducts
    reach: Mapping[int, int]  # bus → hops from start
    branches: frozenset[BranchKey]
    open_points: tuple[tuple[int, BranchKey], ...]  # (switch row, the far side not supplied)


@dataclass(frozen=True)
class _FeederWalk:
    names: Mapping[str, Mapping[int, str]]
    traces: tuple[_Trace, ...]
    cut_graph: nx.MultiGraph
    station_buses: frozenset[int]
    sources: frozenset[int]


def _walk_feeders(net: pp.pandapowerNet, roles: Mapping[str, SwitchRole]) -> _FeederWalk:
    names = {kind: unique_names(net, kind) for kind in ("bus", "line", "trafo", "switch")}
    index_of = {n: i for i, n in names["switch"].items()}
    unknown = sorted(set(roles) - set(index_of))
    if unknown:
        raise ModelError(
            f"switch {unknown[0]!r} is not in the net: expected a name from net.switch",
            source="roles",
            element=unknown[0],
            field="name",
        )
    rows = switch_rows(net)
    heads = [r for r in rows if roles.get(names["switch"][r[0]]) == SwitchRole.FEEDER_BREAKER]
    buses = bus_set(net, include_out_of_service=False)
    branch_ends = {(kind, i): ends for kind, _, i, ends in branch_rows(net, False)}
    blocked = open_branch_ends(rows)

    seeds: list[tuple[int, int, int | None, BranchKey | None]] = []
    for index, bus, element, et, closed in heads:
        start, head_branch = _feeder_start(
            names["switch"][index], bus, element, et, closed, buses, branch_ends, blocked
        )
        seeds.append((index, bus, start, head_branch))
    cut = frozenset(
        ("switch", index) if et == "b" else (SWITCHED_TABLE[et], element)
        for index, _, element, et, _ in heads
    )
    cut_graph = build_bus_graph(net, True, False, cut=cut)

    switch_type = {kind: et for kind, et, _ in BRANCH_TABLES}
    attached: dict[int, list[BranchKey]] = defaultdict(list)
    for (kind, i), ends in branch_ends.items():
        et = switch_type[kind]
        for bus in ends:
            if (et, i, bus) not in blocked:
                attached[bus].append((kind, i))
    open_rows = [r for r in rows if not r[4]]

    traces = []
    for index, bus, start, head_branch in seeds:
        reach: dict[int, int] = {}
        if start is not None and start in cut_graph:
            reach = nx.single_source_shortest_path_length(cut_graph, start)
        branches = {b for node in reach for b in attached.get(node, ())}
        if head_branch is not None:
            branches.add(head_branch)
        traces.append(
            _Trace(
                head=index,
                head_bus=bus,
                start=start,
                reach=reach,
                branches=frozenset(branches),
                open_points=_open_points(open_rows, reach, branches),
            )
        )
    return _FeederWalk(
        names=names,
        traces=tuple(traces),
        cut_graph=cut_graph,
        station_buses=frozenset(h[1] for h in heads),
        sources=source_buses(net),
    )


def _feeder_start(
    name: str,
    bus: int,
    element: int,
    et: str,
    closed: bool,
    buses: set[int],
    branch_ends: Mapping[BranchKey, tuple[int, ...]],
    blocked: set[tuple[str, int, int]],
) -> tuple[int | None, BranchKey | None]:
    """The first bus beyond a feeder breaker and the branch it closes onto (if any)."""
    if et == "b":
        return (element if closed and element in buses else None), None
    if et not in ("l", "t"):
        raise ModelError(
            f"feeder breaker on element type {et!r}: expected a line ('l'), transformer ('t') or "
            "bus-bus ('b') switch",
            source="net.switch",
            element=name,
            field="et",
        )
    branch = (SWITCHED_TABLE[et], element)
    ends = branch_ends.get(branch)
    if not closed or ends is None:  # open, or its branch is out of service
        return None, None
    if bus not in ends:
        raise ModelError(
            f"switch sits at bus {bus}, which is not an end of {branch[0]} {element}: expected "
            "the switch's bus to be the station end of the feeder's first branch",
            source="net.switch",
            element=name,
            field="bus",
        )
    far = next((b for b in ends if b != bus), None)
    if far is None or far not in buses or (et, element, far) in blocked:
        return None, branch
    return far, branch


def _open_points(
    open_rows: Sequence[tuple[int, int, int, str, bool]],
    reach: Mapping[int, int],
    branches: set[BranchKey],
) -> tuple[tuple[int, BranchKey], ...]:
    points = []
    for index, bus, element, et, _ in open_rows:
        far: BranchKey = ("bus", element) if et == "b" else (SWITCHED_TABLE.get(et, ""), element)
        far_supplied = element in reach if et == "b" else far in branches
        if (bus in reach) == far_supplied:
            continue
        points.append((index, far if bus in reach else ("bus", bus)))
    return tuple(points)


def _supplied(trace: _Trace) -> Iterator[BranchKey]:
    yield from (("bus", b) for b in trace.reach)
    yield from trace.branches


def _feeder_record(walk: _FeederWalk, trace: _Trace) -> Feeder:
    names = walk.names
    order = sorted(trace.reach, key=lambda b: (trace.reach[b], b))
    head = names["switch"][trace.head]
    return Feeder(
        name=head,
        head_switch=head,
        head_bus=names["bus"][trace.head_bus],
        buses=tuple(names["bus"][b] for b in order),
        lines=tuple(names["line"][i] for kind, i in sorted(trace.branches) if kind == "line"),
        trafos=tuple(names["trafo"][i] for kind, i in sorted(trace.branches) if kind == "trafo"),
        open_points=tuple(names["switch"][s] for s, _ in trace.open_points),
    )


def _nearest(reach: Mapping[int, int], wanted: frozenset[int]) -> int | None:
    hits = [b for b in reach if b in wanted]
    return min(hits, key=lambda b: (reach[b], b)) if hits else None


def _loop(graph: nx.MultiGraph, part: Mapping[int, int]) -> list[BranchKey]:
    """The branches of a loop inside the connected ``part`` of ``graph``; empty if it has none."""
    inside = [(u, v, k) for u, v, k in graph.edges(part, keys=True) if u in part and v in part]
    if len(inside) < len(part):
        return []  # a connected tree has one edge fewer than nodes
    # networkx subgraph views are slow to walk: search a plain copy
    return [key for _, _, key in nx.find_cycle(nx.MultiGraph(inside))]


def _element_name(walk: _FeederWalk, key: BranchKey) -> str:
    kind, index = key
    return walk.names.get(kind, {}).get(index, f"{kind} {index}")
