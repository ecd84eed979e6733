"""The switching graph of the open-loop feeders: what reconfiguration may change.

Candidate switches are the line switches whose registry role is a ring switch, a normally-open
point, a tie or a sectionaliser. A *switchable branch* is a line carrying at least one candidate
switch: it conducts when all its switches are closed and is opened by one candidate switch.
Everything else keeps its present state.

Radiality (:mod:`~controllers.reconfiguration.radiality`) is asked of the open-loop part only.
Buses joined without switchable branches form *areas*; the areas holding a source are merged
into the supply area 0, so a meshed backbone (closed-loop cables, bus couplers) is one node
however many loops it has. A configuration is radial when the closed switchable branches form a
spanning tree of the areas reachable from the supply: every area fed, by exactly one path.
Switchable branches with both ends in one area, or leading to areas no configuration can feed,
keep their state and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import pandapower as pp

from controllers.reconfiguration.records import SUPPLY_AREA, SwitchableBranch, SwitchingGraph
from network_models.model import GridModel
from network_models.registry import SwitchRole
from network_models.topology import bus_graph, source_buses

__all__ = ["CANDIDATE_ROLES", "switching_graph"]

CANDIDATE_ROLES: frozenset[SwitchRole] = frozenset(
    {
        SwitchRole.RING_SWITCH,
        SwitchRole.NORMALLY_OPEN_POINT,
        SwitchRole.TIE,
        SwitchRole.SECTIONALISER,
    }
)
# an open switch of these roles is where operators like the open point to be
_PREFERRED_OPEN_ROLES = (SwitchRole.NORMALLY_OPEN_POINT, SwitchRole.TIE)

_Joining = tuple[int, list[int], int, int]  # line, its candidate switch rows, area a, area b


def switching_graph(
    model: GridModel,
    net: pp.pandapowerNet,
    *,
    roles: frozenset[SwitchRole] = CANDIDATE_ROLES,
) -> SwitchingGraph:
    """The switching graph of ``net`` (the model's net or a study copy of it) in its present state.

    Only remote-controlled switches of the given roles are candidates.
    """
    sw = net.switch
    role_of_row = {
        int(d.element.index): d.role for d in model.registry.switches if d.remote_controlled
    }
    usable = _usable_lines(net, role_of_row, roles)
    area_of_bus = _areas(net, usable)
    raw, kept = _joining_lines(net, usable, area_of_bus)

    # areas no configuration can feed are out of the study
    reach = nx.MultiGraph()
    reach.add_node(SUPPLY_AREA)
    reach.add_edges_from((a, b) for _, _, a, b in raw)
    fed = nx.node_connected_component(reach, SUPPLY_AREA)
    renumber = {SUPPLY_AREA: SUPPLY_AREA}
    for area in sorted(fed - {SUPPLY_AREA}):
        renumber[area] = len(renumber)

    branches = []
    for line, rows, a, b in raw:
        if a not in fed:
            kept.append(str(net.line.at[line, "name"]))
            continue
        open_row = _switch_to_open(net, rows, role_of_row)
        branches.append(
            SwitchableBranch(
                line_index=line,
                line=str(net.line.at[line, "name"]),
                switches=tuple(rows),
                open_switch=open_row,
                open_at_from_bus=int(sw.at[open_row, "bus"]) == int(net.line.at[line, "from_bus"]),
                area_a=renumber[a],
                area_b=renumber[b],
                closed=bool(sw.loc[rows, "closed"].all()),
            )
        )
    return SwitchingGraph(
        n_areas=len(renumber),
        branches=tuple(branches),
        area_of_bus={bus: renumber[a] for bus, a in area_of_bus.items() if a in renumber},
        kept_lines=tuple(kept),
    )


def _usable_lines(
    net: pp.pandapowerNet,
    role_of_row: Mapping[int, SwitchRole],
    roles: frozenset[SwitchRole],
) -> dict[int, list[int]]:
    """Candidate switch rows by line index, for the lines reconfiguration may change."""
    sw = net.switch
    candidate_rows = [
        int(i)
        for i, et in zip(sw.index, sw["et"], strict=True)
        if et == "l" and role_of_row.get(int(i)) in roles
    ]
    by_line: dict[int, list[int]] = {}
    for row in candidate_rows:
        by_line.setdefault(int(sw.at[row, "element"]), []).append(row)
    # a line with a non-candidate switch held open stays open: reconfiguration may not close it
    held_open = {
        int(element)
        for i, et, element, closed in zip(
            sw.index.tolist(), sw["et"].tolist(), sw["element"].tolist(),
            sw["closed"].tolist(), strict=True,
        )
        if et == "l" and not bool(closed) and int(element) in by_line
        and int(i) not in by_line[int(element)]
    }
    in_service = net.line["in_service"]
    return {
        line: rows
        for line, rows in by_line.items()
        if bool(in_service.at[line]) and line not in held_open
    }


def _areas(net: pp.pandapowerNet, usable: Mapping[int, list[int]]) -> dict[int, int]:
    """The area of every bus: buses joined without the usable lines; those with a source are 0."""
    graph = bus_graph(net)
    fixed = nx.MultiGraph()
    fixed.add_nodes_from(graph.nodes)
    fixed.add_edges_from(
        (u, v, k) for u, v, k in graph.edges(keys=True) if not (k[0] == "line" and k[1] in usable)
    )
    sources = source_buses(net)
    area_of_bus: dict[int, int] = {}
    next_area = 1
    for part in nx.connected_components(fixed):
        if part & sources:
            area = SUPPLY_AREA
        else:
            area, next_area = next_area, next_area + 1
        for bus in part:
            area_of_bus[bus] = area
    return area_of_bus


def _joining_lines(
    net: pp.pandapowerNet, usable: Mapping[int, list[int]], area_of_bus: Mapping[int, int]
) -> tuple[list[_Joining], list[str]]:
    """The usable lines joining two areas, and the names of those that do not (kept as they are)."""
    raw: list[_Joining] = []
    kept: list[str] = []
    for line, rows in sorted(usable.items()):
        a = area_of_bus.get(int(net.line.at[line, "from_bus"]))
        b = area_of_bus.get(int(net.line.at[line, "to_bus"]))
        if a is None or b is None or a == b:
            kept.append(str(net.line.at[line, "name"]))
            continue
        raw.append((line, rows, a, b))
    return raw, kept


def _switch_to_open(
    net: pp.pandapowerNet, rows: Sequence[int], role_of_row: Mapping[int, SwitchRole]
) -> int:
    def rank(row: int) -> tuple[bool, bool, int]:
        return (
            bool(net.switch.at[row, "closed"]),
            role_of_row.get(row) not in _PREFERRED_OPEN_ROLES,
            row,
        )

    return min(rows, key=rank)
