"""The pandapower tables a topology reads, as plain rows: buses, branches, switches, names.

Shared by :mod:`network_models.topology` (graph queries, sections) and its feeder tracing
(``network_models._feeders``); import the public names from ``network_models.topology``.
See that module's docstring for the switch model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from math import isnan

import networkx as nx
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
