"""The pandapower tables a topology reads, as plain rows: buses, branches, switches, names.

Shared by :mod:`network_models.topology` (graph queries, sections) and its feeder tracing
(``network_models._feeders``); import the public names from ``network_models.topology``.
See that module's docstring for the switch model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from math import isnan

import networkx as nx
import numpy as np
import pandapower as pp

from network_models.errors import ModelError

BranchKey = tuple[str, int]  # ("line" | "trafo" | "trafo3w" | "impedance" | "switch", row index)

# table, switch element type at its ends (None: pandapower has no switches there), bus columns
BRANCH_TABLES: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("line", "l", ("from_bus", "to_bus")),
    ("trafo", "t", ("hv_bus", "lv_bus")),
    ("trafo3w", "t3", ("hv_bus", "mv_bus", "lv_bus")),
    ("impedance", None, ("from_bus", "to_bus")),
)
SWITCHED_TABLE = {"b": "bus", "l": "line", "t": "trafo", "t3": "trafo3w"}


def source_buses(net: pp.pandapowerNet) -> frozenset[int]:
    """Buses of the in-service external grids and slack generators (in-service buses only).

    A grid-forming battery of an islanded microgrid is a source only when the caller says so:
    pass ``source_buses(net) | {its bus}`` as ``sources`` to the queries of
    :mod:`network_models.topology`.
    """
    in_service_buses = bus_set(net, include_out_of_service=False)
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


def bus_set(net: pp.pandapowerNet, include_out_of_service: bool) -> set[int]:
    if include_out_of_service:
        return set(net.bus.index.tolist())
    return {
        i
        for i, ok in zip(net.bus.index.tolist(), net.bus["in_service"].tolist(), strict=True)
        if ok
    }


def switch_rows(net: pp.pandapowerNet) -> list[tuple[int, int, int, str, bool]]:
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


def open_branch_ends(
    rows: Iterable[tuple[int, int, int, str, bool]],
) -> set[tuple[str, int, int]]:
    """(switch element type, branch row, bus) of every branch end an open switch disconnects."""
    return {(et, element, bus) for _, bus, element, et, closed in rows if et != "b" and not closed}


def branch_rows(
    net: pp.pandapowerNet, include_out_of_service: bool
) -> Iterator[tuple[str, str | None, int, tuple[int, ...]]]:
    """(table, switch element type, row, end buses) of every branch."""
    for kind, et, columns in BRANCH_TABLES:
        table = net.get(kind)
        if table is None or table.empty:
            continue
        ends = zip(*(table[c].tolist() for c in columns), strict=True)
        in_service = table["in_service"].tolist()
        for index, buses, ok in zip(table.index.tolist(), ends, in_service, strict=True):
            if ok or include_out_of_service:
                yield kind, et, index, buses


def build_bus_graph(
    net: pp.pandapowerNet,
    respect_switches: bool,
    include_out_of_service: bool,
    cut: frozenset[BranchKey],
) -> nx.MultiGraph:
    buses = bus_set(net, include_out_of_service)
    rows = switch_rows(net)
    blocked = open_branch_ends(rows) if respect_switches else set()
    edges: list[tuple[int, int, BranchKey]] = []
    for kind, et, index, ends in branch_rows(net, include_out_of_service):
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


def unique_names(net: pp.pandapowerNet, kind: str) -> dict[int, str]:
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


class SwitchStateGraphs:
    """``bus_graph(net)`` for many switch states of one net, from its tables read once.

    A state is a closed flag per ``net.switch`` row, in row order (position, not index label).
    The graphs equal :func:`build_bus_graph` with ``respect_switches`` of the net with that
    state, edges in the same order; the net's ``in_service`` flags are those when this was
    made.
    """

    def __init__(self, net: pp.pandapowerNet) -> None:
        self._buses = sorted(bus_set(net, include_out_of_service=False))
        live = set(self._buses)
        position = {int(row): k for k, row in enumerate(net.switch.index.tolist())}
        at_end: dict[tuple[str, int, int], list[int]] = {}
        bus_bus: list[tuple[int, int, BranchKey, int]] = []
        for index, bus, element, et, _ in switch_rows(net):
            if et == "b":
                if bus in live and element in live:
                    bus_bus.append((bus, element, ("switch", index), position[index]))
            else:
                at_end.setdefault((et, element, bus), []).append(position[index])
        # per branch: its key and its live ends, each with the switches that can open it
        self._branches: list[tuple[BranchKey, list[tuple[int, tuple[int, ...]]]]] = [
            ((kind, index), [(b, tuple(at_end.get((et, index, b), ()))) for b in ends if b in live])
            for kind, et, index, ends in branch_rows(net, include_out_of_service=False)
        ]
        self._bus_bus = bus_bus

    def graph(self, closed: Sequence[bool]) -> nx.MultiGraph:
        """The bus graph in switch state ``closed``."""
        graph = nx.MultiGraph()
        graph.add_nodes_from(self._buses)
        graph.add_edges_from(self._edges(closed))
        return graph

    def adjacency(self, closed: Sequence[bool]) -> StateAdjacency:
        """The graph's adjacency in switch state ``closed``, without building the graph."""
        adj: dict[int, dict[int, dict[BranchKey, None]]] = {b: {} for b in self._buses}
        for u, v, key in self._edges(closed):
            keys = adj[u].get(v)
            if keys is None:
                keys = adj[u][v] = {}
                adj[v][u] = keys
            keys[key] = None
        return StateAdjacency(adj)

    def reached(self, closed: Sequence[bool], sources: Iterable[int]) -> frozenset[int]:
        """The buses connected to ``sources`` in switch state ``closed`` (the graph's components
        holding a source, without building the graph)."""
        parent = {b: b for b in self._buses}

        def root(b: int) -> int:
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            return b

        for u, v, _ in self._edges(closed):
            parent[root(u)] = root(v)
        fed = {root(s) for s in sources if s in parent}
        return frozenset(b for b in self._buses if root(b) in fed)

    def components(self, closed: Sequence[bool], buses: Iterable[int]) -> list[frozenset[int]]:
        """Connected parts of the graph in state ``closed`` among ``buses`` only (edges with an
        end elsewhere left out), in the order ``networkx.connected_components`` gives them for
        a graph whose nodes were added in the order of ``buses``."""
        order = list(buses)
        inside = set(order)
        adjacent: dict[int, list[int]] = {b: [] for b in order}
        for u, v, _ in self._edges(closed):
            if u in inside and v in inside:
                adjacent[u].append(v)
                adjacent[v].append(u)
        seen: set[int] = set()
        parts = []
        for start in order:
            if start in seen:
                continue
            part, stack = {start}, [start]
            while stack:
                for other in adjacent[stack.pop()]:
                    if other not in part:
                        part.add(other)
                        stack.append(other)
            seen |= part
            parts.append(frozenset(part))
        return parts

    def _edges(self, closed: Sequence[bool]) -> list[tuple[int, int, BranchKey]]:
        if isinstance(closed, np.ndarray):
            closed = closed.tolist()  # indexing a list is several times faster
        edges: list[tuple[int, int, BranchKey]] = []
        for key, ends in self._branches:
            live = [b for b, switches in ends if all(closed[k] for k in switches)]
            # a three-winding transformer joins its live sides in a star from the first one
            edges.extend((live[0], b, key) for b in live[1:])
        edges.extend((bus, element, key) for bus, element, key, k in self._bus_bus if closed[k])
        return edges


class StateAdjacency:
    """A bus graph's adjacency as ``networkx.MultiGraph.adj`` has it (bus -> neighbour -> edge
    keys, neighbours in the order of their first edge), for walks that need nothing else."""

    def __init__(self, adj: dict[int, dict[int, dict[BranchKey, None]]]) -> None:
        self.adj = adj

    def __contains__(self, bus: object) -> bool:
        return bus in self.adj
