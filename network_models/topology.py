"""Topology of a pandapower net in the operator's words: supply, sections, feeders, open loops.

Two vocabularies, kept apart on purpose:
- graph queries (``bus_graph``, ``energised_buses``, ``supply_paths``, ``is_radial``) speak
  pandapower bus indices, because callers hand their answers straight back to the net;
- records (``Section``, ``Feeder``) and switching answers speak element *names*, because they go
  to operators and to switch commands. Every bus, line, transformer and switch must then have a
  unique name; a missing or repeated name raises ``ModelError``.

Switch model (pandapower): ``et="b"`` joins bus ``bus`` to bus ``element``; ``et="l"`` sits between
bus ``bus`` and the end of line ``element`` at that bus; ``et="t"`` likewise for a transformer. The
``closed`` column is the switch state. Out-of-service buses and branches carry nothing.

Section rule: a section is a maximal set of buses *and* branches (lines, transformers) reachable
from each other without passing through a switch. A branch end without a switch joins the branch
to its bus; a branch end with a switch does not, whatever the switch state. So a cable with
switches at both ends is a section of its own (no buses), a cable with a switch at one end belongs
to the section of its other end's bus, and unswitched lines and transformers stay inside their
section. A section's bounding switches are those whose two sides lie in different sections;
opening the closed ones isolates it. Sections depend on what is built, not on switch states.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import isnan

import networkx as nx
import pandapower as pp

from network_models.errors import ModelError
from network_models.registry import DeviceRegistry, SwitchRole

__all__ = [
    "Feeder",
    "Section",
    "bus_graph",
    "check_open_loop_feeders",
    "distribution_feeders",
    "energised_buses",
    "feeder_of_bus",
    "is_radial",
    "isolating_switches",
    "section_of_bus",
    "section_of_line",
    "sections",
    "source_buses",
    "supply_paths",
    "switch_roles",
]

BranchKey = tuple[str, int]  # ("line" | "trafo" | "trafo3w" | "impedance" | "switch", row index)

# table, switch element type at its ends (None: pandapower has no switches there), bus columns
_BRANCH_TABLES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("line", "l", ("from_bus", "to_bus")),
    ("trafo", "t", ("hv_bus", "lv_bus")),
    ("trafo3w", "t3", ("hv_bus", "mv_bus", "lv_bus")),
    ("impedance", None, ("from_bus", "to_bus")),
)
_SWITCHED_TABLE = {"b": "bus", "l": "line", "t": "trafo", "t3": "trafo3w"}
_SOURCES_SENTINEL = "<sources>"


@dataclass(frozen=True, kw_only=True)
class Section:
    """A switch-bounded part of the grid (see the module docstring for the rule).

    ``name`` is the name of its lowest-index bus, or of its line when it holds no bus.
    """

    name: str
    buses: tuple[str, ...]
    lines: tuple[str, ...]
    trafos: tuple[str, ...]
    bounding_switches: tuple[str, ...]


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


# ---------------------------------------------------------------------------------------------
# graph queries (bus indices)


def source_buses(net: pp.pandapowerNet) -> frozenset[int]:
    """Buses of the in-service external grids and slack generators (in-service buses only).

    A grid-forming battery of an islanded microgrid is a source only when the caller says so:
    pass ``source_buses(net) | {its bus}`` as ``sources`` to the queries below.
    """
    in_service_buses = _bus_set(net, include_out_of_service=False)
    found: set[int] = set()
    for table, slack_only in (("ext_grid", False), ("gen", True)):
        df = net[table]
        if df.empty:
            continue
        slack = df["slack"].tolist() if slack_only else [True] * len(df)
        for bus, in_service, is_slack in zip(
            df["bus"].tolist(), df["in_service"].tolist(), slack, strict=True
        ):
            if in_service and is_slack and bus in in_service_buses:
                found.add(int(bus))
    return frozenset(found)


def bus_graph(
    net: pp.pandapowerNet, *, respect_switches: bool = True, include_out_of_service: bool = False
) -> nx.MultiGraph:
    """Buses as nodes; one edge per conducting branch or closed bus-bus switch.

    Edge keys name the element: ``("line", i)``, ``("trafo", i)``, ``("trafo3w", i)``,
    ``("impedance", i)``, ``("switch", i)`` for a bus-bus switch. With ``respect_switches`` an open
    switch at a branch end disconnects that end (a two-ended branch then has no edge); without it
    every switch counts as closed.
    """
    return _bus_graph(net, respect_switches, include_out_of_service, cut=frozenset())


def energised_buses(net: pp.pandapowerNet, *, sources: Iterable[int] | None = None) -> set[int]:
    """In-service buses connected to a source in the current switch state.

    ``sources`` defaults to ``source_buses(net)``.
    """
    return _reached(bus_graph(net), _sources(net, sources))


def supply_paths(
    net: pp.pandapowerNet,
    bus: int,
    *,
    sources: Iterable[int] | None = None,
    max_paths: int = 16,
) -> list[list[int]]:
    """Every simple path of buses from a source to ``bus`` in the current state, fewest hops first.

    A path starts at a source bus and passes through no other source. Parallel branches give one
    path. At most ``max_paths`` paths; an unsupplied bus has none, a source bus has ``[[bus]]``.
    """
    if bus not in net.bus.index:
        raise ModelError(
            f"no bus with index {bus}: expected a row of net.bus", source="argument", field="bus"
        )
    if max_paths < 1:
        raise ModelError(
            f"max_paths is {max_paths}: expected at least 1", source="argument", field="max_paths"
        )
    graph = nx.Graph(bus_graph(net))
    source_set = {s for s in _sources(net, sources) if s in graph}
    if bus not in graph or not source_set:
        return []
    graph.add_edges_from((_SOURCES_SENTINEL, s) for s in source_set)
    if not nx.has_path(graph, _SOURCES_SENTINEL, bus):
        return []
    paths: list[list[int]] = []
    for path in nx.shortest_simple_paths(graph, _SOURCES_SENTINEL, bus):
        # a path through a second source repeats a shorter path from that source
        if any(node in source_set for node in path[2:]):
            continue
        paths.append(path[1:])
        if len(paths) == max_paths:
            break
    return paths


def is_radial(
    net: pp.pandapowerNet,
    buses: Iterable[int] | None = None,
    *,
    sources: Iterable[int] | None = None,
) -> bool:
    """True if the energised grid (or the given buses) has no loop and no part fed by two sources.

    Considers the current switch state. Parallel branches between two buses count as a loop. A part
    of a given bus set with no source in it is fine (it is fed from outside the set).
    """
    graph = bus_graph(net)
    source_set = _sources(net, sources)
    if buses is None:
        keep = _reached(graph, source_set)
    else:
        keep = {int(b) for b in buses} & set(graph.nodes)
    # a plain copy of the kept part: networkx subgraph views are slow to walk
    inside = [(u, v) for u, v in graph.edges() if u in keep and v in keep]
    sub = nx.Graph()
    sub.add_nodes_from(keep)
    sub.add_edges_from(inside)
    parts = list(nx.connected_components(sub))
    # a forest has one edge fewer than nodes per part; parallel branches count twice
    if len(inside) != len(keep) - len(parts):
        return False
    return all(len(part & source_set) <= 1 for part in parts)


# ---------------------------------------------------------------------------------------------
# sections (names)


def sections(net: pp.pandapowerNet) -> tuple[Section, ...]:
    """The switch-bounded sections of the in-service grid, ordered by their lowest bus index.

    Sections without a bus (a cable switched at both ends) follow, by line index.
    """
    names = {kind: _unique_names(net, kind) for kind in ("bus", "line", "trafo", "switch")}
    buses = _bus_set(net, include_out_of_service=False)
    rows = _switch_rows(net)
    switched_ends = {(et, element, bus) for _, bus, element, et, _ in rows if et != "b"}

    graph = nx.Graph()
    graph.add_nodes_from(("bus", b) for b in buses)
    for kind, et, index, ends in _branches(net, include_out_of_service=False):
        node = (kind, index)
        graph.add_node(node)
        for bus in ends:
            if bus in buses and (et, index, bus) not in switched_ends:
                graph.add_edge(node, ("bus", bus))

    order = {"bus": 0, "line": 1, "trafo": 2, "trafo3w": 3, "impedance": 4}
    parts = sorted(
        (
            sorted(part, key=lambda n: (order[n[0]], n[1]))
            for part in nx.connected_components(graph)
        ),
        key=lambda part: (order[part[0][0]], part[0][1]),
    )
    part_of = {node: k for k, part in enumerate(parts) for node in part}

    bounding: dict[int, list[int]] = defaultdict(list)
    for index, bus, element, et, _ in rows:
        side_a = part_of.get(("bus", bus))
        side_b = part_of.get((_SWITCHED_TABLE.get(et, ""), element))
        if side_a is None or side_b is None or side_a == side_b:
            continue
        bounding[side_a].append(index)
        bounding[side_b].append(index)

    result = []
    for k, part in enumerate(parts):
        members: dict[str, list[str]] = defaultdict(list)
        for kind, index in part:
            if kind in names:
                members[kind].append(names[kind][index])
        first_kind, first_index = part[0]
        result.append(
            Section(
                name=(
                    names[first_kind][first_index]
                    if first_kind in names
                    else f"{first_kind} {first_index}"
                ),
                buses=tuple(members["bus"]),
                lines=tuple(members["line"]),
                trafos=tuple(members["trafo"]),
                bounding_switches=tuple(names["switch"][i] for i in bounding.get(k, ())),
            )
        )
    return tuple(result)


def section_of_bus(all_sections: Sequence[Section], bus: str) -> Section:
    """The section holding the bus named ``bus``."""
    return _section_holding(all_sections, bus, "buses", "bus")


def section_of_line(all_sections: Sequence[Section], line: str) -> Section:
    """The section holding the line named ``line`` (where a cable fault is isolated)."""
    return _section_holding(all_sections, line, "lines", "line")


def isolating_switches(net: pp.pandapowerNet, section: Section) -> tuple[str, ...]:
    """The switches to open to isolate ``section``: its bounding switches that are now closed."""
    closed = _switch_states(net)
    missing = [name for name in section.bounding_switches if name not in closed]
    if missing:
        raise ModelError(
            f"section {section.name!r} names switch {missing[0]!r}, which the net does not have: "
            "expected a section computed from this net",
            element=section.name,
            field="bounding_switches",
        )
    return tuple(name for name in section.bounding_switches if closed[name])


# ---------------------------------------------------------------------------------------------
# feeders (names)


def switch_roles(net: pp.pandapowerNet, registry: DeviceRegistry) -> dict[str, SwitchRole]:
    """Switch name → role, for the switches of the registry (its ``element.index`` is the row)."""
    names = _unique_names(net, "switch")
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


# ---------------------------------------------------------------------------------------------
# private


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
    names = {kind: _unique_names(net, kind) for kind in ("bus", "line", "trafo", "switch")}
    index_of = {n: i for i, n in names["switch"].items()}
    unknown = sorted(set(roles) - set(index_of))
    if unknown:
        raise ModelError(
            f"switch {unknown[0]!r} is not in the net: expected a name from net.switch",
            source="roles",
            element=unknown[0],
            field="name",
        )
    rows = _switch_rows(net)
    heads = [r for r in rows if roles.get(names["switch"][r[0]]) == SwitchRole.FEEDER_BREAKER]
    buses = _bus_set(net, include_out_of_service=False)
    branch_ends = {(kind, i): ends for kind, _, i, ends in _branches(net, False)}
    blocked = _open_branch_ends(rows)

    seeds: list[tuple[int, int, int | None, BranchKey | None]] = []
    for index, bus, element, et, closed in heads:
        start, head_branch = _feeder_start(
            names["switch"][index], bus, element, et, closed, buses, branch_ends, blocked
        )
        seeds.append((index, bus, start, head_branch))
    cut = frozenset(
        ("switch", index) if et == "b" else (_SWITCHED_TABLE[et], element)
        for index, _, element, et, _ in heads
    )
    cut_graph = _bus_graph(net, True, False, cut=cut)

    switch_type = {kind: et for kind, et, _ in _BRANCH_TABLES}
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
    branch = (_SWITCHED_TABLE[et], element)
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
        far: BranchKey = ("bus", element) if et == "b" else (_SWITCHED_TABLE.get(et, ""), element)
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


def _section_holding(all_sections: Sequence[Section], name: str, field: str, what: str) -> Section:
    for section in all_sections:
        if name in getattr(section, field):
            return section
    raise ModelError(
        f"no section holds {what} {name!r}: expected the name of an in-service {what}",
        element=name,
        field=what,
    )


def _reached(graph: nx.MultiGraph, sources: Iterable[int]) -> set[int]:
    reached: set[int] = set()
    for source in sources:
        if source in graph and source not in reached:
            reached |= nx.node_connected_component(graph, source)
    return reached


def _sources(net: pp.pandapowerNet, sources: Iterable[int] | None) -> frozenset[int]:
    return source_buses(net) if sources is None else frozenset(int(s) for s in sources)


def _bus_set(net: pp.pandapowerNet, include_out_of_service: bool) -> set[int]:
    if include_out_of_service:
        return set(net.bus.index.tolist())
    return {
        i
        for i, ok in zip(net.bus.index.tolist(), net.bus["in_service"].tolist(), strict=True)
        if ok
    }


def _switch_rows(net: pp.pandapowerNet) -> list[tuple[int, int, int, str, bool]]:
    """(row, bus, element, et, closed) of every switch, by row index."""
    sw = net.switch
    if sw.empty:
        return []
    sw = sw.sort_index()
    return list(
        zip(
            sw.index.tolist(),
            sw["bus"].tolist(),
            sw["element"].tolist(),
            sw["et"].tolist(),
            sw["closed"].astype(bool).tolist(),
            strict=True,
        )
    )


def _open_branch_ends(
    rows: Iterable[tuple[int, int, int, str, bool]],
) -> set[tuple[str, int, int]]:
    """(switch element type, branch row, bus) of every branch end an open switch disconnects."""
    return {(et, element, bus) for _, bus, element, et, closed in rows if et != "b" and not closed}


def _branches(
    net: pp.pandapowerNet, include_out_of_service: bool
) -> Iterator[tuple[str, str | None, int, tuple[int, ...]]]:
    """(table, switch element type, row, end buses) of every branch."""
    for kind, et, columns in _BRANCH_TABLES:
        table = net.get(kind)
        if table is None or table.empty:
            continue
        ends = zip(*(table[c].tolist() for c in columns), strict=True)
        in_service = table["in_service"].tolist()
        for index, buses, ok in zip(table.index.tolist(), ends, in_service, strict=True):
            if ok or include_out_of_service:
                yield kind, et, index, buses


def _bus_graph(
    net: pp.pandapowerNet,
    respect_switches: bool,
    include_out_of_service: bool,
    cut: frozenset[BranchKey],
) -> nx.MultiGraph:
    buses = _bus_set(net, include_out_of_service)
    rows = _switch_rows(net)
    blocked = _open_branch_ends(rows) if respect_switches else set()
    edges: list[tuple[int, int, BranchKey]] = []
    for kind, et, index, ends in _branches(net, include_out_of_service):
        if (kind, index) in cut:
            continue
        live = [b for b in ends if b in buses and (et, index, b) not in blocked]
        # a three-winding transformer joins its live sides in a star from the first one
        edges.extend((live[0], b, (kind, index)) for b in live[1:])
    for index, bus, element, et, closed in rows:
        if et != "b" or ("switch", index) in cut:
            continue
        if (closed or not respect_switches) and bus in buses and element in buses:
            edges.append((bus, element, ("switch", index)))
    graph = nx.MultiGraph()
    graph.add_nodes_from(sorted(buses))
    graph.add_edges_from(edges)
    return graph


def _switch_states(net: pp.pandapowerNet) -> dict[str, bool]:
    names = _unique_names(net, "switch")
    return {names[i]: closed for i, _, _, _, closed in _switch_rows(net)}


def _unique_names(net: pp.pandapowerNet, kind: str) -> dict[int, str]:
    """Row → name of a table; every row must have a name of its own."""
    table = net[kind]
    names: dict[int, str] = {}
    first_row: dict[str, int] = {}
    for index, raw in zip(table.index.tolist(), table["name"].tolist(), strict=True):
        if raw is None or (isinstance(raw, float) and isnan(raw)) or not str(raw).strip():
            raise ModelError(
                f"{kind} has no name: expected a unique name for every {kind}",
                source=f"net.{kind}",
                row=index,
                field="name",
            )
        name = str(raw)
        if name in first_row:
            raise ModelError(
                f"name {name!r} is also used by row {first_row[name]}: expected a unique name",
                source=f"net.{kind}",
                row=index,
                field="name",
            )
        first_row[name] = index
        names[index] = name
    return names
