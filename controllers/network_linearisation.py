"""Linearised AC power flow of a (meshed or radial) network around one AC operating point.

The optimiser keeps the power-flow equations themselves, linearised and sparse, instead of dense
sensitivity matrices: for each step, with z = [Δθ at non-slack buses; Δ|V| at PQ buses],

    J z = ΔS_injection        (the Newton-Raphson Jacobian, sparse, ~nnz(Ybus) per row block)
    Δ|V|_monitored = M_v z    (a selection)
    ΔP_f, ΔQ_f = G_p z, G_q z (active/reactive flow at each branch's from end, 2-4 entries a row)
    Δimport_mw = h·z − Δp_injected_at_slack_buses

The slopes (J, G, h) come from one AC solution; the offsets (voltages, loadings and import at
each step's base point) come from an AC power flow of that step, so the model is exact at every
base point and first-order around it. Re-linearising means new offsets, not a new problem.
Thermal limits stay convex and exact in form, |(P_f, Q_f)| ≤ S_rated·|V_f|, on linearised flows:
a linearised current magnitude is wrong whenever a flow shrinks or reverses (a battery or PV
swinging a lightly loaded cable), flows themselves are nearly linear.
All quantities are in the pandapower ``ppci`` per-unit system internally; the public arrays are
in pu (voltage), MW and Mvar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import scipy.sparse as sp
from pandapower.pypower.dSbr_dV import dSbr_dV
from pandapower.pypower.dSbus_dV import dSbus_dV

from network_models.powerflow import solve_once

_SQRT3 = np.sqrt(3.0)


@dataclass(frozen=True, eq=False)
class NetworkLinearisation:
    """Slopes of the AC power flow of one net (fixed topology) at one operating point."""

    base_mva: float
    n_state: int
    jacobian: sp.csc_matrix  # (n_state x n_state): d[P(pvpq); Q(pq)] / d[θ(pvpq); |V|(pq)]
    monitored_buses: np.ndarray  # pandapower bus indices whose |V| is bounded
    v_select: sp.csr_matrix  # (n_mon_bus x n_state)
    monitored_lines: np.ndarray  # pandapower line indices with a loading limit
    monitored_trafos: np.ndarray  # pandapower trafo indices with a loading limit
    flow_p_gradient: sp.csr_matrix  # (monitored lines then trafos) x n_state, MW at the from end
    flow_q_gradient: sp.csr_matrix  # same rows, Mvar
    rated_mva: np.ndarray  # per monitored branch: sqrt(3)·vn·I_rated (lines), sn_mva (trafos)
    import_gradient: np.ndarray  # (n_state,) d(import MW)/dz
    _p_row: np.ndarray  # ppci bus -> equation row of its P balance, -1 for slack buses
    _q_row: np.ndarray  # ppci bus -> equation row of its Q balance, -1 for slack/PV buses
    _bus_lookup: np.ndarray  # pandapower bus -> ppci bus, -1 if not energised
    _is_slack: np.ndarray  # ppci bus -> bool

    def injection_map(
        self, buses: Sequence[int]
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """For devices at pandapower ``buses``: (B_p, B_q, at_slack).

        ``B_p @ p_mw`` / ``B_q @ q_mvar`` are the per-unit changes of the balance equations'
        right-hand side; ``at_slack[i]`` is True for a device on a slack bus (its power changes
        the import one to one). A device on a de-energised bus maps to nothing.
        """
        rows_p, cols_p, rows_q, cols_q = [], [], [], []
        at_slack = np.zeros(len(buses), dtype=bool)
        for j, b in enumerate(buses):
            i = self._bus_lookup[b] if 0 <= b < len(self._bus_lookup) else -1
            if i < 0:
                continue
            if self._is_slack[i]:
                at_slack[j] = True
                continue
            rows_p.append(self._p_row[i])
            cols_p.append(j)
            if self._q_row[i] >= 0:
                rows_q.append(self._q_row[i])
                cols_q.append(j)
        shape = (self.n_state, len(buses))
        scale = 1.0 / self.base_mva
        b_p = sp.csr_matrix((np.full(len(rows_p), scale), (rows_p, cols_p)), shape=shape)
        b_q = sp.csr_matrix((np.full(len(rows_q), scale), (rows_q, cols_q)), shape=shape)
        return b_p, b_q, at_slack

    def energised(self, buses: Sequence[int]) -> np.ndarray:
        """True for pandapower buses that are part of the energised network."""
        lk = self._bus_lookup
        return np.array([0 <= b < len(lk) and lk[b] >= 0 for b in buses], dtype=bool)


def linearise(net: pp.pandapowerNet) -> NetworkLinearisation:
    """Run AC power flow on ``net`` at its present injections and return the slopes.

    The net's result tables are overwritten: pass a copy made for the purpose.
    """
    solve_once(net)
    ppci = net._ppc["internal"]
    base_mva = float(ppci["baseMVA"])
    ybus = ppci["Ybus"]
    v = ppci["V"]
    ref = np.asarray(ppci["ref"], dtype=int)
    pv = np.asarray(ppci["pv"], dtype=int)
    pq = np.asarray(ppci["pq"], dtype=int)
    pvpq = np.r_[pv, pq]
    n_bus = ybus.shape[0]
    n_th, n_vm = len(pvpq), len(pq)
    n_state = n_th + n_vm

    ds_dvm, ds_dva = dSbus_dV(ybus, v)
    ds_dva = sp.csr_matrix(ds_dva)
    ds_dvm = sp.csr_matrix(ds_dvm)
    jac = sp.vstack(
        [
            sp.hstack([ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real]),
            sp.hstack([ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag]),
        ]
    ).tocsc()

    p_row = np.full(n_bus, -1, dtype=int)
    p_row[pvpq] = np.arange(n_th)
    q_row = np.full(n_bus, -1, dtype=int)
    q_row[pq] = n_th + np.arange(n_vm)
    vm_col = q_row  # the |V| unknown of a PQ bus sits at the same position as its Q equation
    is_slack = np.zeros(n_bus, dtype=bool)
    is_slack[ref] = True

    # import: sum of slack-bus active injections, as a function of the state
    h = (
        np.asarray(
            sp.hstack([ds_dva[ref][:, pvpq].real, ds_dvm[ref][:, pq].real]).sum(axis=0)
        ).ravel()
        * base_mva
    )

    bus_lookup = _ppci_bus_of(net, n_bus)
    mon_buses, v_cols = [], []
    for bus in net.bus.index[net.bus.in_service]:
        i = bus_lookup[bus]
        if i >= 0 and vm_col[i] >= 0:
            mon_buses.append(int(bus))
            v_cols.append(vm_col[i])
    v_select = sp.csr_matrix(
        (np.ones(len(v_cols)), (np.arange(len(v_cols)), v_cols)), shape=(len(v_cols), n_state)
    )

    # branch flow gradients at the from end (MW, Mvar per unit of state)
    dsf_dva, dsf_dvm, _, _, _, _ = dSbr_dV(ppci["branch"], ppci["Yf"], ppci["Yt"], v)
    grad = sp.csr_matrix(
        sp.hstack([sp.csr_matrix(dsf_dva)[:, pvpq], sp.csr_matrix(dsf_dvm)[:, pq]])
    )
    rows, rated, lines, trafos = _monitored_branches(net, ppci)
    g = grad[rows] * base_mva if rows else sp.csr_matrix((0, n_state), dtype=complex)
    return NetworkLinearisation(
        base_mva=base_mva,
        n_state=n_state,
        jacobian=jac,
        monitored_buses=np.array(mon_buses, dtype=int),
        v_select=v_select,
        monitored_lines=np.array(lines, dtype=int),
        monitored_trafos=np.array(trafos, dtype=int),
        flow_p_gradient=sp.csr_matrix(g.real),
        flow_q_gradient=sp.csr_matrix(g.imag),
        rated_mva=np.array(rated, dtype=float),
        import_gradient=h,
        _p_row=p_row,
        _q_row=q_row,
        _bus_lookup=bus_lookup,
        _is_slack=is_slack,
    )


def _ppci_bus_of(net: pp.pandapowerNet, n_bus: int) -> np.ndarray:
    """pandapower bus -> internal (ppci) bus, -1 where the bus is not in the solved system (only
    energised buses survive in ppci)."""
    lookup_full = np.asarray(net._pd2ppc_lookups["bus"], dtype=int)
    bus_lookup = np.full(len(lookup_full), -1, dtype=int)
    for b in net.bus.index:
        i = lookup_full[b] if b < len(lookup_full) else -1
        if 0 <= i < n_bus and not np.isnan(net.res_bus.vm_pu.at[b]):
            bus_lookup[b] = i
    return bus_lookup


def _monitored_branches(
    net: pp.pandapowerNet, ppci: dict
) -> tuple[list[int], list[float], list[int], list[int]]:
    """The energised lines and transformers: their internal branch rows, ratings (MVA), and the
    pandapower line and transformer indices, in that order (lines first)."""
    branch = ppci["branch"]
    lookups = net._pd2ppc_lookups["branch"]
    # ppci drops out-of-service branches (e.g. a cable isolated by its switches): map the full
    # ppc branch numbering onto the rows that remain
    in_service = np.asarray(ppci.get("branch_is", np.ones(len(branch), dtype=bool)), dtype=bool)
    if len(in_service) != len(branch):
        internal_row = np.cumsum(in_service) - 1
    else:
        internal_row = np.arange(len(branch))
        in_service = np.ones(len(branch), dtype=bool)
    rows, rated, lines, trafos = [], [], [], []
    if "line" in lookups:
        start, _ = lookups["line"]
        for k, li in enumerate(net.line.index):
            if not net.line.in_service.at[li] or np.isnan(net.res_line.loading_percent.at[li]):
                continue
            vn = net.bus.vn_kv.at[net.line.from_bus.at[li]]
            rated_ka = net.line.max_i_ka.at[li] * net.line.df.at[li] * net.line.parallel.at[li]
            if not in_service[start + k]:
                continue
            rows.append(int(internal_row[start + k]))
            rated.append(_SQRT3 * vn * rated_ka)
            lines.append(int(li))
    if "trafo" in lookups:
        start, _ = lookups["trafo"]
        for k, ti in enumerate(net.trafo.index):
            if not net.trafo.in_service.at[ti] or np.isnan(net.res_trafo.loading_percent.at[ti]):
                continue
            if not in_service[start + k]:
                continue
            rows.append(int(internal_row[start + k]))
            rated.append(net.trafo.sn_mva.at[ti] * net.trafo.parallel.at[ti])
            trafos.append(int(ti))
    return rows, rated, lines, trafos
