"""Minimum-loss radial configuration as a MILP: linearised DistFlow, single-commodity radiality.

The model covers the buses outside the supply area (see :mod:`~controllers.reconfiguration.graph`);
the supply area's buses where switchable branches start hold the voltage of the present AC
solution.

- Power flow: LinDistFlow (Baran & Wu) on every branch outside the supply area, per unit on
  1 MVA and the bus's nominal voltage: ``w_from - w_to = 2 (r P + x Q)`` with ``w = v²``, losses
  left out of the balance; line charging and transformer taps are neglected.
- Losses: ``r (P² + Q²)`` with each square bounded below by tangents; minimising makes the bound
  tight, so the objective is a convex piecewise-linear approximation of the DistFlow losses.
- Switchable branches: a binary closes the branch; big-M constraints free the voltage equation and
  force zero flow when it is open.
- Radiality: one unit of a fictitious commodity flows from the supply to every area over closed
  switchable branches, and exactly ``areas - 1`` of them are closed: a spanning tree.
- Limits: voltage (softened by penalised slacks, so a grid that cannot meet them still gets an
  answer), branch apparent power by an octagon inside the circle.

Solved with HiGHS through cvxpy. The answer is optimal for this model, not for AC: the caller
verifies it by AC power flow.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import sys
import time
from dataclasses import dataclass

import cvxpy as cp
import highspy
import numpy as np
import pandapower as pp
import scipy.sparse as sp

from controllers.reconfiguration.radiality import (
    branch_chains,
    bridge_branches,
    fundamental_loops,
)
from controllers.reconfiguration.records import SUPPLY_AREA, SwitchingGraph
from network_models.ac_checks import AcLimits
from network_models.topology import bus_graph

__all__ = ["MilpOutcome", "solve_minimum_loss_milp"]

S_BASE_MVA = 1.0
_VOLTAGE_SLACK_PENALTY = 1e7  # kW per pu² of slack: any violation costs more than all losses
_HALF_SQRT2 = math.sqrt(0.5)
# directions of the octagon's faces (cos, sin): axes and diagonals
_OCTAGON = ((1.0, 0.0), (_HALF_SQRT2, _HALF_SQRT2), (0.0, 1.0), (-_HALF_SQRT2, _HALF_SQRT2))
# an open branch may join any two voltages between 0.7 and 1.2 pu (far beyond any limit)
_OPEN_VOLTAGE_GAP_PU2 = 0.95
# tangent points of x² as fractions of a branch's flow bound: dense where most flows are
_TANGENT_FRACTIONS = np.array([0.0, 0.03, 0.08, 0.15, 0.25, 0.4, 0.6, 0.8, 1.0])
# the MIP gap HiGHS may stop at: well inside the error of the loss model itself
_MIP_REL_GAP = 0.02


@dataclass(frozen=True, kw_only=True)
class MilpOutcome:
    """The MILP's configuration (closed flag per switchable branch) and how it was found."""

    closed: np.ndarray | None
    status: str
    objective_losses_mw: float
    voltage_slack_pu2: float
    solve_time_s: float
    variables: int
    binaries: int


@dataclass(frozen=True)
class _Branch:
    from_bus: int
    to_bus: int
    r_pu: float
    x_pu: float
    s_max_pu: float  # inf: no rating
    switchable: int  # index in graph.branches, -1 when fixed


def solve_minimum_loss_milp(
    net: pp.pandapowerNet,
    graph: SwitchingGraph,
    vm_pu: dict[int, float],
    *,
    limits: AcLimits,
    time_limit_s: float = 60.0,
) -> MilpOutcome:
    """Solve the MILP for ``net`` (operating point set) given the supply buses' ``vm_pu``."""
    start = time.perf_counter()
    buses = sorted(b for b, a in graph.area_of_bus.items() if a != SUPPLY_AREA)
    position = {b: i for i, b in enumerate(buses)}
    branches = _branches(net, graph)
    p_demand, q_demand = _demand_pu(net, position)

    n_e, n_s = len(branches), len(graph.branches)
    p, q = cp.Variable(n_e), cp.Variable(n_e)
    w = cp.Variable(len(buses))
    y = cp.Variable(n_s, boolean=True)
    f = cp.Variable(n_s)
    p_sq, q_sq = cp.Variable(n_e, nonneg=True), cp.Variable(n_e, nonneg=True)
    slack_low, slack_high = (
        cp.Variable(len(buses), nonneg=True),
        cp.Variable(len(buses), nonneg=True),
    )

    into, out_of = _incidence(branches, position)
    constraints = [into @ p - out_of @ p == p_demand, into @ q - out_of @ q == q_demand]
    constraints += [
        w >= limits.v_min_pu**2 - slack_low,
        w <= limits.v_max_pu**2 + slack_high,
    ]
    constraints += _voltage_drop(branches, position, vm_pu, w, p, q, y)
    total = float(np.abs(p_demand).sum() + np.abs(q_demand).sum())
    # no branch carries more than the whole demand, nor (in a feasible answer) its rating
    bound = np.array([min(b.s_max_pu, total) for b in branches]) + 1e-3
    switchable = np.array([b.switchable for b in branches])
    rows = np.flatnonzero(switchable >= 0)
    if len(rows):
        on = y[switchable[rows]]
        constraints += [
            cp.abs(p[rows]) <= cp.multiply(bound[rows], on),
            cp.abs(q[rows]) <= cp.multiply(bound[rows], on),
        ]
    constraints += _ratings(branches, p, q)
    constraints += _tangents(p, p_sq, bound) + _tangents(q, q_sq, bound)
    constraints += _spanning_tree(graph, y, f)

    r = np.array([b.r_pu for b in branches])
    losses_kw = r @ (p_sq + q_sq) * S_BASE_MVA * 1e3  # kW keeps HiGHS's costs well scaled
    objective = cp.Minimize(losses_kw + _VOLTAGE_SLACK_PENALTY * cp.sum(slack_low + slack_high))
    problem = cp.Problem(objective, constraints)
    _swallow_highs_banner()
    problem.solve(
        solver=cp.HIGHS, time_limit=time_limit_s, mip_rel_gap=_MIP_REL_GAP, output_flag=False
    )
    solved = problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and y.value is not None
    return MilpOutcome(
        closed=(np.asarray(y.value) > 0.5) if solved else None,
        status=str(problem.status),
        objective_losses_mw=float(losses_kw.value) / 1e3 if solved else math.nan,
        voltage_slack_pu2=(
            float(np.sum(slack_low.value) + np.sum(slack_high.value)) if solved else math.nan
        ),
        solve_time_s=time.perf_counter() - start,
        variables=sum(v.size for v in problem.variables()),
        binaries=n_s,
    )


def _branches(net: pp.pandapowerNet, graph: SwitchingGraph) -> list[_Branch]:
    """Every branch with an end outside the supply area: fixed conducting ones and switchable."""
    area = graph.area_of_bus
    switchable_of_line = {b.line_index: i for i, b in enumerate(graph.branches)}
    out: list[_Branch] = []
    for u, v, (kind, index) in bus_graph(net).edges(keys=True):
        if kind == "line" and index in switchable_of_line:
            continue  # added below, whatever its state
        if area.get(u, SUPPLY_AREA) == SUPPLY_AREA and area.get(v, SUPPLY_AREA) == SUPPLY_AREA:
            continue
        if kind == "line":
            out.append(_line(net, index, -1))
        elif kind == "trafo":
            out.append(_trafo(net, index))
        elif kind == "switch":
            out.append(_Branch(u, v, 0.0, 0.0, math.inf, -1))
        else:
            raise NotImplementedError(
                f"a {kind} outside the supply area: the reconfiguration MILP models lines, "
                "two-winding transformers and bus-bus switches"
            )
    out.extend(_line(net, b.line_index, i) for i, b in enumerate(graph.branches))
    return out


def _line(net: pp.pandapowerNet, index: int, switchable: int) -> _Branch:
    row = net.line.loc[index]
    vn_kv = float(net.bus.at[int(row["from_bus"]), "vn_kv"])
    z_base = vn_kv**2 / S_BASE_MVA
    length, parallel = float(row["length_km"]), float(row["parallel"])
    rating_ka = float(row["max_i_ka"]) * float(row["df"]) * parallel
    return _Branch(
        from_bus=int(row["from_bus"]),
        to_bus=int(row["to_bus"]),
        r_pu=float(row["r_ohm_per_km"]) * length / parallel / z_base,
        x_pu=float(row["x_ohm_per_km"]) * length / parallel / z_base,
        s_max_pu=math.sqrt(3) * vn_kv * rating_ka / S_BASE_MVA,
        switchable=switchable,
    )


def _trafo(net: pp.pandapowerNet, index: int) -> _Branch:
    row = net.trafo.loc[index]
    sn_mva, parallel = float(row["sn_mva"]), float(row["parallel"])
    z_pu = float(row["vk_percent"]) / 100.0 * S_BASE_MVA / sn_mva / parallel
    r_pu = float(row["vkr_percent"]) / 100.0 * S_BASE_MVA / sn_mva / parallel
    return _Branch(
        from_bus=int(row["hv_bus"]),
        to_bus=int(row["lv_bus"]),
        r_pu=r_pu,
        x_pu=math.sqrt(max(z_pu**2 - r_pu**2, 0.0)),
        s_max_pu=sn_mva * float(row["df"]) * parallel / S_BASE_MVA,
        switchable=-1,
    )


def _demand_pu(net: pp.pandapowerNet, position: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Net demand per bus (consumption positive), pu on S_BASE_MVA."""
    p, q = np.zeros(len(position)), np.zeros(len(position))
    for table, sign in (("load", 1.0), ("storage", 1.0), ("sgen", -1.0)):
        df = net[table]
        if df.empty:
            continue
        live = df[df["in_service"].astype(bool)]
        scale = live["scaling"].to_numpy(float) * sign / S_BASE_MVA
        for bus, pv, qv in zip(
            live["bus"],
            live["p_mw"].to_numpy(float) * scale,
            live["q_mvar"].to_numpy(float) * scale,
            strict=True,
        ):
            if int(bus) in position:
                p[position[int(bus)]] += pv
                q[position[int(bus)]] += qv
    return p, q


def _incidence(
    branches: list[_Branch], position: dict[int, int]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(buses × branches) matrices of the branches arriving at and leaving each modelled bus."""
    shape = (len(position), len(branches))

    def matrix(end: str) -> sp.csr_matrix:
        pairs = [
            (position[getattr(b, end)], e)
            for e, b in enumerate(branches)
            if getattr(b, end) in position
        ]
        if not pairs:
            return sp.csr_matrix(shape)
        rows, cols = zip(*pairs, strict=True)
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)

    return matrix("to_bus"), matrix("from_bus")


def _voltage_drop(
    branches: list[_Branch],
    position: dict[int, int],
    vm_pu: dict[int, float],
    w: cp.Variable,
    p: cp.Variable,
    q: cp.Variable,
    y: cp.Variable,
) -> list[cp.Constraint]:
    n_w = len(position)

    def w_of(ends: list[int]) -> cp.Expression:
        """w at each end: the variable for modelled buses, the fixed supply voltage otherwise."""
        rows = [i for i, b in enumerate(ends) if b in position]
        pick = sp.csr_matrix(
            (np.ones(len(rows)), (rows, [position[ends[i]] for i in rows])),
            shape=(len(ends), n_w),
        )
        fixed = np.array([0.0 if b in position else vm_pu[b] ** 2 for b in ends])
        return pick @ w + fixed

    drop = w_of([b.from_bus for b in branches]) - w_of([b.to_bus for b in branches])
    impedance = 2 * (
        cp.multiply(np.array([b.r_pu for b in branches]), p)
        + cp.multiply(np.array([b.x_pu for b in branches]), q)
    )
    gap = drop - impedance
    switchable = np.array([b.switchable for b in branches])
    fixed_rows = np.flatnonzero(switchable < 0)
    open_rows = np.flatnonzero(switchable >= 0)
    constraints: list[cp.Constraint] = []
    if len(fixed_rows):
        constraints.append(gap[fixed_rows] == 0)
    if len(open_rows):
        constraints.append(
            cp.abs(gap[open_rows]) <= _OPEN_VOLTAGE_GAP_PU2 * (1 - y[switchable[open_rows]])
        )
    return constraints


def _ratings(branches: list[_Branch], p: cp.Variable, q: cp.Variable) -> list[cp.Constraint]:
    rows = np.array([e for e, b in enumerate(branches) if math.isfinite(b.s_max_pu)], dtype=int)
    if not len(rows):
        return []
    s_max = np.array([branches[e].s_max_pu for e in rows])
    # the octagon inside the circle: exact on its axes and diagonals, 7.6 % tight in between
    return [cp.abs(c * p[rows] + s * q[rows]) <= s_max * math.cos(math.pi / 8) for c, s in _OCTAGON]


def _tangents(x: cp.Variable, square: cp.Variable, bound: np.ndarray) -> list[cp.Constraint]:
    fractions = np.r_[-_TANGENT_FRACTIONS[:0:-1], _TANGENT_FRACTIONS]
    return [square >= cp.multiply(2 * c * bound, x) - (c * bound) ** 2 for c in fractions]


def _spanning_tree(graph: SwitchingGraph, y: cp.Variable, f: cp.Variable) -> list[cp.Constraint]:
    n_areas, n_s = graph.n_areas, len(graph.branches)
    if n_s == 0:
        return []
    a = np.array([b.area_a for b in graph.branches])
    b = np.array([b.area_b for b in graph.branches])
    # commodity f flows from area_a to area_b; every area but the supply takes one unit
    incidence = sp.csr_matrix(
        (np.r_[np.ones(n_s), -np.ones(n_s)], (np.r_[b, a], np.r_[np.arange(n_s), np.arange(n_s)])),
        shape=(n_areas, n_s),
    )
    demand = np.ones(n_areas)
    keep = np.arange(n_areas) != SUPPLY_AREA
    constraints = [
        incidence[keep] @ f == demand[keep],
        cp.abs(f) <= (n_areas - 1) * y,
        cp.sum(y) == n_areas - 1,
    ]
    # valid cuts that tighten the relaxation: every loop keeps an open branch, a chain of
    # branches through areas that join nothing else has at most one, a bridge has none
    for loop in fundamental_loops(graph):
        constraints.append(cp.sum(y[loop]) <= len(loop) - 1)
    for chain in branch_chains(graph):
        if len(chain) > 1:
            constraints.append(cp.sum(1 - y[chain]) <= 1)
    bridges = bridge_branches(graph)
    if bridges:
        constraints.append(y[bridges] == 1)
    return constraints


@functools.cache
def _swallow_highs_banner() -> None:
    """HiGHS prints a licence banner on stdout when a process makes its first solver object,
    whatever the options; it would corrupt ``--json`` output. Make that first one with the
    file descriptor pointed at /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
            with contextlib.suppress(OSError, TypeError):  # no C library handle: nothing buffered
                ctypes.CDLL(None).fflush(None)  # C stdio buffers when stdout is a pipe
    finally:
        os.dup2(saved, 1)
        os.close(saved)
