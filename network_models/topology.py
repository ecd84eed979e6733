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

Graph queries and sections live here; feeder tracing (``Feeder``, ``distribution_feeders``,
``check_open_loop_feeders``, ...) in ``network_models._feeders`` and the plain table readers they
share in ``network_models._net_tables``. Import every public name from this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import pandapower as pp

from network_models._feeders import (
    Feeder,
    check_open_loop_feeders,
    distribution_feeders,
    feeder_of_bus,
    switch_roles,
)
from network_models._net_tables import (
    SWITCHED_TABLE,
    StateAdjacency,
    SwitchStateGraphs,
    branch_rows,
    build_bus_graph,
    bus_set,
    source_buses,
    switch_rows,
    unique_names,
)
from network_models.errors import ModelError

__all__ = [
    "Feeder",
    "Section",
    "StateAdjacency",
    "SwitchStateGraphs",
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


# ---------------------------------------------------------------------------------------------
# graph queries (bus indices)


def bus_graph(
    net: pp.pandapowerNet, *, respect_switches: bool = True, include_out_of_service: bool = False
) -> nx.MultiGraph:
    """Buses as nodes; one edge per conducting branch or closed bus-bus switch.

    Edge keys name the element: ``("line", i)``, ``("trafo", i)``, ``("trafo3w", i)``,
    ``("impedance", i)``, ``("switch", i)`` for a bus-bus switch. With ``respect_switches`` an open
    switch at a branch end disconnects that end (a two-ended branch then has no edge); without it
    every switch counts as closed.
    """
    return build_bus_graph(net, respect_switches, include_out_of_service, cut=frozenset())


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
    names = {kind: unique_names(net, kind) for kind in ("bus", "line", "trafo", "switch")}
    buses = bus_set(net, include_out_of_service=False)
    rows = switch_rows(net)
    switched_ends = {(et, element, bus) for _, bus, element, et, _ in rows if et != "b"}

    graph = nx.Graph()
    graph.add_nodes_from(("bus", b) for b in buses)
    for kind, et, index, ends in branch_rows(net, include_out_of_service=False):
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
        side_b = part_of.get((SWITCHED_TABLE.get(et, ""), element))
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


def _switch_states(net: pp.pandapowerNet) -> dict[str, bool]:
    names = unique_names(net, "switch")
    return {names[i]: closed for i, _, _, _, closed in switch_rows(net)}
