"""The forward rule of fault location: what protection and indicators report for a fault.

Fault current flows from the sources along the supply path to the fault. So, in a switch state:

- a fault indicator on line X at bus b sees fault current when X lies on the supply path of the
  fault, or X is the faulted line and b the end it is fed from;
- the breaker that trips is the first breaker met walking from the fault back to the source
  (overcurrent grading); a backbone cable's line differential protection opens the breakers at
  both its ends.

:func:`expected_protection_response` is that rule, for tests and drills;
:mod:`controllers.flisr.location` inverts it. The supply path in a meshed part is one shortest
path; indicators and feeder breakers sit in the radial feeders, where the path is unique.
Inverter infeed (PV, BESS) is neglected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np

from controllers.flisr.context import FlisrContext
from controllers.flisr.records import ProtectionReport
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import SwitchRole
from network_models.topology import StateAdjacency, bus_graph

__all__ = [
    "FaultPoint",
    "SupplyTree",
    "bus_index_of",
    "expected_protection_response",
    "fault_response",
    "indicators_by_end",
    "line_index_of",
]

EdgeKey = tuple[str, int]
FaultPoint = tuple[str, int]  # ("line", line index) or ("bus", bus index)


@dataclass(frozen=True)
class SupplyTree:
    """Shortest supply paths: ``parent[bus] = (parent bus, edge key)``; sources have none."""

    parent: Mapping[int, tuple[int, EdgeKey]]
    reached: frozenset[int]

    @classmethod
    def of(cls, graph: nx.MultiGraph | StateAdjacency, sources: Iterable[int]) -> SupplyTree:
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
    tripped, indicators = fault_response(ctx, state, tree, point, indicators_by_end(ctx))
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
# lookups


def _graph(ctx: FlisrContext, state: np.ndarray) -> nx.MultiGraph:
    work = ctx.study_net()
    work.switch["closed"] = state
    return bus_graph(work)


def indicators_by_end(ctx: FlisrContext) -> dict[tuple[int, int], tuple[str, ...]]:
    """Fault indicators by (line index, bus index) of the cable end they sit at."""
    out: dict[tuple[int, int], list[str]] = {}
    for fi, line, bus in ctx.indicators:
        out.setdefault((line, bus), []).append(fi)
    return {key: tuple(v) for key, v in out.items()}


def _point(ctx: FlisrContext, *, line: str | None, bus: str | None) -> FaultPoint:
    if line is not None:
        return ("line", line_index_of(ctx, line))
    assert bus is not None
    return ("bus", bus_index_of(ctx, bus))


def line_index_of(ctx: FlisrContext, name: str) -> int:
    """The net index of line ``name``; an ``InputError`` if there is none."""
    for index, line in ctx.line_names.items():
        if line == name:
            return index
    raise InputError(
        f"no line {name!r}: expected a line of the model",
        source="argument",
        element=name,
        field="line",
    )


def bus_index_of(ctx: FlisrContext, name: str) -> int:
    """The net index of bus ``name``; an ``InputError`` if there is none."""
    for index, bus in ctx.bus_names.items():
        if bus == name:
            return index
    raise InputError(
        f"no bus {name!r}: expected a bus of the model",
        source="argument",
        element=name,
        field="bus",
    )
