"""A proven lower bound on the AC losses of radial configurations, many at once, without AC.

Where every consumer draws constant power with ``p >= 0`` and ``q >= 0`` from one ideal source
through lines without charging (no generation, shunts or transformers), the AC power flow of a
radial configuration obeys, on every closed switchable branch ``e`` with receiving end ``j``
(DistFlow, Baran & Wu 1989):

- the power received at ``j`` is what is consumed below ``e`` plus the losses below it, so its
  real and reactive parts are at least ``P_e`` and ``Q_e``, the demand below ``e``;
- ``|V_i|² = |V_j|² + 2 (r P'_j + x Q'_j) + |z|² |I|²`` with ``P'_j, Q'_j >= 0``: voltages fall away
  from the source, and ``|V_j|² <= v_j``, the LinDistFlow voltage: the source's ``|V|²`` less
  ``2 (r P_e + x Q_e)`` summed over the switchable branches on the way (lines inside an area
  only lower it further, so they are left out);
- the loss of ``e`` is ``r |S'_j|² / |V_j|² >= r (P_e² + Q_e²) / v_j``.

Summed over the closed switchable branches (lines inside areas lose ``>= 0``), that is a lower
bound on the configuration's line losses. ``v_j <= 0`` means no AC solution exists: the bound is
infinite.

``P_e``, ``Q_e`` and ``v`` are those of the spanning tree the configuration closes. Every radial
configuration is the whole area graph less ``loops`` branches, so each is a rank-``loops`` update
of the whole graph's (reduced) Laplacian: by the Woodbury identity one ``loops × loops`` solve
per configuration gives the tree's flows (unit weights) and its LinDistFlow voltages (weights
``1/r`` and ``1/x``: on a tree the inverse of a ``1/r``-weighted Laplacian holds the resistance
of the common path from the source). All configurations are solved in vectorised batches. A
weaker bound, every ``v_j`` taken as the source's, is a quadratic form in the small solve's
unknowns alone: it sifts all configurations first, the full bound is asked of the rest.

Units: MW, Mvar, ohm, kV² (the three-phase forms of the equations above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp

from controllers.reconfiguration.records import SUPPLY_AREA, SwitchingGraph
from network_models.topology import bus_graph

__all__ = ["LossBound", "loss_bound_of"]

_CHUNK = 8_192  # configurations per vectorised pass: bounds the (configurations × areas × loops)
# tables with elements the bound's physics leaves out; any in-service row makes it inapplicable
_ACTIVE_TABLES = (
    "gen", "sgen", "storage", "shunt", "trafo", "trafo3w", "impedance", "ward", "xward", "dcline",
    "motor", "asymmetric_load", "asymmetric_sgen", "svc", "tcsc", "ssc", "vsc",
)
_VOLTAGE_DEPENDENT = ("const_z_p_percent", "const_z_q_percent", "const_i_p_percent",
                      "const_i_q_percent", "const_z_percent", "const_i_percent")


@dataclass(frozen=True, eq=False)
class LossBound:
    """The bound's data for one net and switching graph; call :meth:`losses_mw`."""

    graph: SwitchingGraph
    demand_p_mw: np.ndarray  # per area
    demand_q_mvar: np.ndarray
    r_ohm: np.ndarray  # per switchable branch
    x_ohm: np.ndarray
    source_v_kv2: float

    def losses_mw(self, closed: np.ndarray, *, at_source_voltage: bool = False) -> np.ndarray:
        """The lower bound (MW) for each row of ``closed`` (radial configurations × branches).

        ``at_source_voltage`` takes every ``v_j`` as the source's: a weaker bound, as a quadratic
        form in the loops-sized unknowns alone (far less work), to sift many configurations
        before the full bound is asked of the rest.
        """
        closed = np.atleast_2d(np.asarray(closed, dtype=bool))
        parts = [
            self._chunk(closed[s : s + _CHUNK], at_source_voltage)
            for s in range(0, len(closed), _CHUNK)
        ]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _chunk(self, closed: np.ndarray, at_source_voltage: bool) -> np.ndarray:
        graph = self.graph
        n_open = len(graph.branches) - (graph.n_areas - 1)
        open_sets = np.nonzero(~closed)[1].reshape(len(closed), n_open)
        sinks_p = -np.delete(self.demand_p_mw, SUPPLY_AREA)
        sinks_q = -np.delete(self.demand_q_mvar, SUPPLY_AREA)
        unit = _WeightedTree.of(graph, np.ones(len(graph.branches)))
        if at_source_voltage:
            squares = unit.closed_square_sums(open_sets, (sinks_p, sinks_q), self.r_ohm)
            return (squares[0] + squares[1]) / self.source_v_kv2
        flow_p, flow_q = unit.branch_drops(open_sets, (sinks_p, sinks_q))
        # node potentials of the r- and x-weighted trees: minus the path sums of r P, x Q
        path_r = _WeightedTree.of(graph, 1 / self.r_ohm).potentials(open_sets, sinks_p)
        path_x = _WeightedTree.of(graph, 1 / self.x_ohm).potentials(open_sets, sinks_q)
        v_kv2 = self.source_v_kv2 + 2 * (path_r + path_x)  # areas but the supply
        v_full = np.insert(v_kv2, SUPPLY_AREA, self.source_v_kv2, axis=1)
        a = np.array([b.area_a for b in graph.branches])
        b = np.array([b.area_b for b in graph.branches])
        v_receiving = np.minimum(v_full[:, a], v_full[:, b])
        with np.errstate(divide="ignore", invalid="ignore"):
            per_branch = self.r_ohm * (flow_p**2 + flow_q**2) / v_receiving
        per_branch = np.where(closed, per_branch, 0.0)
        collapsed = (closed & (v_receiving <= 0)).any(axis=1)
        return np.where(collapsed, np.inf, per_branch.sum(axis=1))


def loss_bound_of(net: pp.pandapowerNet, graph: SwitchingGraph) -> LossBound | str:
    """The bound for ``net`` (operating point set), or why its physics does not hold there."""
    reason = _inapplicable(net, graph)
    if reason:
        return reason
    line = net.line.loc[[b.line_index for b in graph.branches]]
    r_ohm = (line["r_ohm_per_km"] * line["length_km"] / line["parallel"]).to_numpy(float)
    x_ohm = (line["x_ohm_per_km"] * line["length_km"] / line["parallel"]).to_numpy(float)
    if not (np.all(r_ohm > 0) and np.all(x_ohm > 0)):
        return "a switchable line without resistance or reactance"
    p = np.zeros(graph.n_areas)
    q = np.zeros(graph.n_areas)
    live_bus = set(net.bus.index[net.bus["in_service"].astype(bool)].tolist())
    load = net.load[net.load["in_service"].astype(bool)]
    scaling = load["scaling"].to_numpy(float)
    for bus, pv, qv in zip(load["bus"].tolist(), load["p_mw"].to_numpy(float) * scaling,
                           load["q_mvar"].to_numpy(float) * scaling, strict=True):
        if int(bus) in live_bus and int(bus) in graph.area_of_bus:
            p[graph.area_of_bus[int(bus)]] += pv
            q[graph.area_of_bus[int(bus)]] += qv
    eg = net.ext_grid[net.ext_grid["in_service"].astype(bool)]
    v_kv = float(eg["vm_pu"].iloc[0]) * float(net.bus.at[int(eg["bus"].iloc[0]), "vn_kv"])
    return LossBound(graph, p, q, r_ohm, x_ohm, v_kv**2)


def _inapplicable(net: pp.pandapowerNet, graph: SwitchingGraph) -> str:
    """Why the bound's physics does not hold for ``net``; empty when it does."""
    for table in _ACTIVE_TABLES:
        if table in net and len(net[table]) and net[table]["in_service"].astype(bool).any():
            return f"in-service {table} rows"
    eg = net.ext_grid[net.ext_grid["in_service"].astype(bool)]
    if len(eg) != 1 or graph.area_of_bus.get(int(eg["bus"].iloc[0])) != SUPPLY_AREA:
        return "not exactly one source"
    load = net.load[net.load["in_service"].astype(bool)]
    scaling = load["scaling"].to_numpy(float)
    if np.any(load["p_mw"].to_numpy(float) * scaling < 0) or np.any(
        load["q_mvar"].to_numpy(float) * scaling < 0
    ):
        return "a load that injects"
    for column in _VOLTAGE_DEPENDENT:
        if column in load and np.any(load[column].fillna(0.0).to_numpy(float) != 0):
            return "voltage-dependent loads"
    line = net.line[net.line["in_service"].astype(bool)]
    if np.any(line["c_nf_per_km"].to_numpy(float) != 0) or np.any(
        line["g_us_per_km"].to_numpy(float) != 0
    ):
        return "lines with charging"
    if np.any(line["x_ohm_per_km"].to_numpy(float) < 0) or np.any(
        line["r_ohm_per_km"].to_numpy(float) < 0
    ):
        return "a line with negative impedance"
    if not _areas_are_trees(net, graph):
        return "an area with a loop of its own"
    return ""


def _areas_are_trees(net: pp.pandapowerNet, graph: SwitchingGraph) -> bool:
    """True if the conducting branches inside the areas form a tree in each area."""
    switchable = {("line", b.line_index) for b in graph.branches}
    area = graph.area_of_bus
    inside = sum(
        1
        for u, v, key in bus_graph(net).edges(keys=True)
        if key not in switchable and u in area and v in area
    )
    return inside == len(area) - graph.n_areas


def _reduced_incidence(graph: SwitchingGraph) -> np.ndarray:
    """(areas but the supply × branches): +1 at ``area_a``, -1 at ``area_b``."""
    n_areas, n_branches = graph.n_areas, len(graph.branches)
    full = np.zeros((n_areas, n_branches))
    for e, branch in enumerate(graph.branches):
        full[branch.area_a, e] += 1.0
        full[branch.area_b, e] -= 1.0
    return np.delete(full, SUPPLY_AREA, axis=0)


@dataclass(frozen=True)
class _WeightedTree:
    """The whole area graph's reduced Laplacian ``L = B G Bᵀ`` (branch weights ``G``), inverted.

    The tree that opens the branches ``O`` has ``L_T = L - B_O G_O B_Oᵀ``; by Woodbury its
    potentials for injections ``d`` are ``M d + M B_O y`` with
    ``(G_O⁻¹ - B_Oᵀ M B_O) y = B_Oᵀ M d`` and ``M = L⁻¹``: one small solve per configuration.
    """

    inverse_weight: np.ndarray  # G⁻¹, per branch
    m: np.ndarray  # M (nodes × nodes)
    mb: np.ndarray  # M B (nodes × branches)
    w: np.ndarray  # Bᵀ M B (branches × branches), symmetric

    @classmethod
    def of(cls, graph: SwitchingGraph, weight: np.ndarray) -> _WeightedTree:
        incidence = _reduced_incidence(graph)
        m = np.linalg.inv(incidence @ (weight[:, None] * incidence.T))
        mb = m @ incidence
        return cls(1 / weight, m, mb, incidence.T @ mb)

    def _solve_y(
        self, open_sets: np.ndarray, sinks: tuple[np.ndarray, ...]
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """``u = Bᵀ M d`` per right-hand side, ``W_OO`` and ``y`` (configurations × loops ×
        right-hand sides) of each configuration's small system."""
        rows, cols = open_sets[:, :, None], open_sets[:, None, :]
        w_oo = self.w[rows, cols]
        k = -w_oo
        diagonal = np.arange(open_sets.shape[1])
        k[:, diagonal, diagonal] += self.inverse_weight[open_sets]
        us = [self.mb.T @ d for d in sinks]
        y = np.linalg.solve(k, np.stack([u[open_sets] for u in us], axis=-1))
        return us, w_oo, y

    def _scattered_y(
        self, open_sets: np.ndarray, sinks: tuple[np.ndarray, ...]
    ) -> list[np.ndarray]:
        """Per right-hand side, ``y`` placed at the open branches of a (configurations ×
        branches) array, zero elsewhere."""
        _, _, y = self._solve_y(open_sets, sinks)
        out = []
        for i in range(len(sinks)):
            scattered = np.zeros((len(open_sets), self.w.shape[0]))
            np.put_along_axis(scattered, open_sets, y[..., i], axis=1)
            out.append(scattered)
        return out

    def closed_square_sums(
        self, open_sets: np.ndarray, sinks: tuple[np.ndarray, ...], r: np.ndarray
    ) -> list[np.ndarray]:
        """``sum over closed branches of r_e (b_eᵀ θ)²`` per configuration and right-hand side.

        With ``g = u + W[:, O] y`` (every branch's drop), the sum over all branches is the
        quadratic form ``uᵀRu + 2 (WRu)_Oᵀ y + yᵀ (WRW)_OO y``; the open branches' share
        ``sum r_O g_O²`` comes off. Only ``loops``-sized gathers per configuration: no
        (configurations × branches) array.
        """
        us, w_oo, y = self._solve_y(open_sets, sinks)
        wrw = self.w @ (r[:, None] * self.w)
        wrw_oo = wrw[open_sets[:, :, None], open_sets[:, None, :]]
        r_o = r[open_sets]
        out = []
        for i, u in enumerate(us):
            yi = y[..., i]
            total = (
                float(u @ (r * u))
                + 2 * np.einsum("ck,ck->c", (self.w @ (r * u))[open_sets], yi)
                + np.einsum("ck,ckj,cj->c", yi, wrw_oo, yi)
            )
            g_open = u[open_sets] + np.einsum("ckj,cj->ck", w_oo, yi)
            out.append(total - np.einsum("ck,ck->c", r_o, g_open**2))
        return out

    def branch_drops(
        self, open_sets: np.ndarray, sinks: tuple[np.ndarray, ...]
    ) -> list[np.ndarray]:
        """``Bᵀ θ`` of every branch (configurations × branches) per right-hand side: with unit
        weights, the flows of the tree (positive from ``area_a`` to ``area_b``)."""
        return [
            (self.mb.T @ d)[None, :] + y @ self.w
            for d, y in zip(sinks, self._scattered_y(open_sets, sinks), strict=True)
        ]

    def potentials(self, open_sets: np.ndarray, sinks: np.ndarray) -> np.ndarray:
        """Node potentials (configurations × areas but the supply) of the tree for ``sinks``."""
        (y,) = self._scattered_y(open_sets, (sinks,))
        return (self.m @ sinks)[None, :] + y @ self.mb.T
