"""Protection of the simulated grid: which breakers a cable fault trips, which indicators it sets.

- A cable with line differential protection (``net.line.protection == "line_differential"``, the
  closed-loop backbone) is cleared by the breakers at both of its ends, without time grading.
- Any other cable is cleared by overcurrent protection: from every end through which fault
  current flows (an end connected to a source in the present switch state), the nearest
  breaker between the fault and the source trips (on a distribution feeder: its feeder breaker;
  on the campus service cable: the microgrid breaker). Load-break switches cannot interrupt a
  fault and are passed.
- Fault passage indicators are set on the path of the fault current: on every cable between
  the tripping breaker and the fault (both ends), and on the faulted cable at the end the
  current enters. PV and BESS inverters' fault current is neglected (it is close to their rated
  current, below indicator settings).

The same rule re-trips a breaker, or the breaker upstream of a load-break switch, that is
closed onto a cable whose fault has not been repaired.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import pandapower as pp

from network_models.model import GridModel
from network_models.registry import SwitchKind
from network_models.topology import bus_graph, source_buses

DIFFERENTIAL = "line_differential"


@dataclass(frozen=True)
class Trip:
    """What protection did about one faulted cable."""

    line: str
    breakers: tuple[str, ...]  # switch names opened
    indicators: tuple[str, ...]  # fault indicator device ids set
    unprotected: bool = False  # fault current reached a source through no breaker


@dataclass(frozen=True)
class ProtectionMap:
    """Switches at branch ends and indicators at cable ends, by pandapower row and bus."""

    line_end_switch: Mapping[tuple[int, int], int]
    trafo_end_switch: Mapping[tuple[int, int], int]
    indicators: Mapping[tuple[int, int], tuple[str, ...]]  # (line row, bus row) → FI ids
    breaker: Mapping[int, bool]  # switch row → is a breaker
    differential: frozenset[int]  # line rows with line differential protection

    @classmethod
    def of(cls, model: GridModel, net: pp.pandapowerNet) -> ProtectionMap:
        kind_by_name = {d.id: d.switch_kind for d in model.registry.switches}
        line_end: dict[tuple[int, int], int] = {}
        trafo_end: dict[tuple[int, int], int] = {}
        breaker: dict[int, bool] = {}
        for row, sw in net.switch.iterrows():
            kind = kind_by_name.get(str(sw["name"]))
            breaker[int(row)] = (kind == SwitchKind.BREAKER if kind is not None
                                 else str(sw.get("type", "")) == "CB")
            if sw["et"] == "l":
                line_end[(int(sw["element"]), int(sw["bus"]))] = int(row)
            elif sw["et"] == "t":
                trafo_end[(int(sw["element"]), int(sw["bus"]))] = int(row)
        indicators: dict[tuple[int, int], list[str]] = defaultdict(list)
        for fi in model.registry.fault_indicators:
            indicators[(model.line_index(fi.line), model.bus_index(fi.bus))].append(fi.id)
        protection = (net.line["protection"] if "protection" in net.line
                      else [None] * len(net.line))
        differential = frozenset(int(r) for r, p in zip(net.line.index, protection, strict=True)
                                 if p == DIFFERENTIAL)
        return cls(line_end_switch=line_end, trafo_end_switch=trafo_end,
                   indicators={k: tuple(v) for k, v in indicators.items()},
                   breaker=breaker, differential=differential)


def fed_ends(net: pp.pandapowerNet, line: int, pmap: ProtectionMap, *,
             graph: nx.MultiGraph | None = None, sources: frozenset[int] | None = None,
             ) -> list[tuple[int, list[tuple[int, int, tuple[str, int]]]]]:
    """Ends of cable ``line`` through which a source feeds it now, each with the path of edges
    ``(near bus, far bus, edge key)`` from that end to the nearest source."""
    graph = bus_graph(net) if graph is None else graph
    sources = source_buses(net) if sources is None else sources
    if not bool(net.line.at[line, "in_service"]):
        return []
    work = graph.copy()
    ends = (int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"]))
    if work.has_edge(ends[0], ends[1], key=("line", line)):
        work.remove_edge(ends[0], ends[1], key=("line", line))
    out = []
    for end in ends:
        switch = pmap.line_end_switch.get((line, end))
        if switch is not None and not bool(net.switch.at[switch, "closed"]):
            continue
        path = _path_to_source(work, end, sources)
        if path is not None:
            out.append((end, path))
    return out


def trip_for_fault(net: pp.pandapowerNet, line: int, pmap: ProtectionMap) -> Trip:
    """Open the breakers that clear a fault on cable ``line`` in ``net`` (switch states are
    changed in place) and name the indicators the fault current sets."""
    name = str(net.line.at[line, "name"])
    fed = fed_ends(net, line, pmap)
    if not fed:
        return Trip(line=name, breakers=(), indicators=())
    if line in pmap.differential:
        ends = (int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"]))
        rows = [pmap.line_end_switch.get((line, e)) for e in ends]
        rows = [r for r in rows if r is not None and pmap.breaker.get(r, False)]
        return _open(net, name, rows, [], unprotected=not rows)
    breakers: list[int] = []
    indicators: list[str] = []
    unprotected = False
    for end, path in fed:
        found, passed = _nearest_breaker(line, end, path, pmap)
        indicators += passed
        if found is None:
            unprotected = True
        else:
            breakers.append(found)
    return _open(net, name, breakers, indicators, unprotected=unprotected)


def _open(net: pp.pandapowerNet, line_name: str, rows: list[int], indicators: list[str],
          *, unprotected: bool) -> Trip:
    for r in rows:
        net.switch.at[r, "closed"] = False
    names = tuple(dict.fromkeys(str(net.switch.at[r, "name"]) for r in rows))
    return Trip(line=line_name, breakers=names, indicators=tuple(dict.fromkeys(indicators)),
                unprotected=unprotected)


def _nearest_breaker(line: int, end: int, path: list[tuple[int, int, tuple[str, int]]],
                     pmap: ProtectionMap) -> tuple[int | None, list[str]]:
    """Walk from the fault towards the source: the first breaker, and the indicators passed."""
    passed = list(pmap.indicators.get((line, end), ()))
    own = pmap.line_end_switch.get((line, end))
    if own is not None and pmap.breaker.get(own, False):
        return own, passed
    for near, far, (kind, index) in path:
        if kind == "switch":
            if pmap.breaker.get(index, False):
                return index, passed
            continue
        ends = pmap.line_end_switch if kind == "line" else pmap.trafo_end_switch
        near_switch = ends.get((index, near))
        if near_switch is not None and pmap.breaker.get(near_switch, False):
            return near_switch, passed
        if kind == "line":
            passed += pmap.indicators.get((index, near), ())
            passed += pmap.indicators.get((index, far), ())
        far_switch = ends.get((index, far))
        if far_switch is not None and pmap.breaker.get(far_switch, False):
            return far_switch, passed
    return None, passed


def _path_to_source(graph: nx.MultiGraph, start: int, sources: frozenset[int],
                    ) -> list[tuple[int, int, tuple[str, int]]] | None:
    """Fewest-hop path of edges from ``start`` to a source, or None when none is reachable."""
    if start not in graph:
        return None
    if start in sources:
        return []
    parent: dict[int, tuple[int, tuple[str, int]]] = {}
    seen = {start}
    queue = deque([start])
    while queue:
        bus = queue.popleft()
        for neighbour, keys in graph.adj[bus].items():
            if neighbour in seen:
                continue
            seen.add(neighbour)
            parent[neighbour] = (bus, min(keys))
            if neighbour in sources:
                return _unwind(parent, start, neighbour)
            queue.append(neighbour)
    return None


def _unwind(parent: Mapping[int, tuple[int, tuple[str, int]]], start: int, goal: int,
            ) -> list[tuple[int, int, tuple[str, int]]]:
    edges = []
    node = goal
    while node != start:
        previous, key = parent[node]
        edges.append((previous, node, key))
        node = previous
    edges.reverse()
    return edges
