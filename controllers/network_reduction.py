"""The linearised network without the buses nothing looks at: exact, sparse, much smaller.

The dispatch problem needs the linearised state only where a device injects, a voltage or a
branch flow is bounded, or the import is read. Every other bus is an equation and an unknown
the solver carries for nothing: on a 10,458-bus SimBench MV+LV grid, 20,926 states per step,
2 million in a day. A bus that injects nothing the plan changes (its loads are in the base
point: the right-hand side of its equations is always 0) can be eliminated from ``J z = ΔS``
exactly (a Schur complement, Kron's reduction of the linearised equations). Buses are eliminated
one at a time while they have at most two neighbours left (leaves and the buses along a feeder
between two buses kept), so the reduced Jacobian has no more non-zeros than the original: a
feeder with nothing to dispatch or watch becomes one branch, a dangling one disappears.

Positions are into the linearisation's state ``z = [Δθ(pvpq); Δ|V|(pq)]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from controllers.network_linearisation import NetworkLinearisation


@dataclass(frozen=True, eq=False)
class ReducedNetwork:
    """``J_KK - J_KE J_EE⁻¹ J_EK`` on the kept states ``kept`` (sorted positions into z)."""

    kept: np.ndarray
    jacobian: sp.csc_matrix  # (kept x kept)
    n_state: int  # of the full linearisation
    # the injections given, into the kept equations: B_K - J_KE J_EE⁻¹ B_E
    injections: sp.csr_matrix | None = None

    def columns(self, m: sp.spmatrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
        """A map of the full state (rows x n_state) as a map of the kept state."""
        if sp.issparse(m):
            return sp.csr_matrix(m)[:, self.kept]
        return np.asarray(m)[..., self.kept]

    def rows(self, m: sp.spmatrix) -> sp.csr_matrix:
        """Injections into the full balance equations (n_state x k) into the kept ones."""
        return sp.csr_matrix(m)[self.kept]

    @classmethod
    def identity(cls, lin: NetworkLinearisation) -> ReducedNetwork:
        return cls(np.arange(lin.n_state), sp.csc_matrix(lin.jacobian), lin.n_state)


def reduce_network(
    lin: NetworkLinearisation,
    required_states: np.ndarray,
    injections: sp.spmatrix | None = None,
) -> ReducedNetwork:
    """The linearisation reduced to the buses of ``required_states`` and those it cannot
    eliminate without fill (see the module docstring). ``required_states``: positions into z
    that a monitored limit or the import reads; every state of their bus is kept.

    ``injections`` (n_state x devices): where devices inject. A device's bus is eliminated
    like any other and its injection carried onto the buses kept, exactly as its share of the
    Schur complement (``B_K - J_KE J_EE⁻¹ B_E``): a PV system at the end of an LV feeder with
    nothing watched becomes an injection (P and Q) at its station's busbar, or further up."""
    n = lin.n_state
    bus_of = _bus_of_state(lin)
    jac = sp.coo_matrix(lin.jacobian)
    n_bus = int(bus_of.max()) + 1 if n else 0
    required = np.zeros(n_bus, dtype=bool)
    required[bus_of[np.asarray(required_states, dtype=int)]] = True
    states_of: list[list[int]] = [[] for _ in range(n_bus)]
    for s, b in enumerate(bus_of):
        states_of[b].append(s)
    blocks = _bus_blocks(jac, bus_of, states_of)
    inj = None
    if injections is not None:
        b = sp.csr_matrix(injections)
        inj = {i: b[states] for i, states in enumerate(states_of)}
    eliminated = _eliminate(blocks, required, inj)
    kept_bus = np.ones(n_bus, dtype=bool)
    kept_bus[list(eliminated)] = False
    kept = np.flatnonzero(kept_bus[bus_of])
    pos = np.full(n, -1, dtype=int)
    pos[kept] = np.arange(len(kept))
    rows, cols, vals = [], [], []
    for i, row in blocks.items():
        ri = pos[states_of[i]]
        for j, block in row.items():
            cj = pos[states_of[j]]
            r, c = np.meshgrid(ri, cj, indexing="ij")
            rows.append(r.ravel())
            cols.append(c.ravel())
            vals.append(block.ravel())
    if rows:
        reduced = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                       np.concatenate(cols))),
                                shape=(len(kept), len(kept)))
    else:
        reduced = sp.csc_matrix((len(kept), len(kept)))
    reduced.eliminate_zeros()
    carried = None
    if inj is not None:
        # each kept bus's rows to its states' positions (angles first, then magnitudes)
        order = [i for i in range(n_bus) if kept_bus[i]]
        stacked = (sp.vstack([inj[i] for i in order]).tocoo() if order
                   else sp.coo_matrix((0, injections.shape[1])))
        rows_at = np.concatenate([pos[states_of[i]] for i in order]) if order else np.zeros(0)
        carried = sp.csr_matrix((stacked.data, (rows_at[stacked.row].astype(int), stacked.col)),
                                shape=(len(kept), injections.shape[1]))
    return ReducedNetwork(kept, reduced, n, carried)


def _bus_of_state(lin: NetworkLinearisation) -> np.ndarray:
    """The internal bus of each state (its angle or its voltage magnitude)."""
    bus_of = np.full(lin.n_state, -1, dtype=int)
    for rows in (lin._p_row, lin._q_row):
        has = np.flatnonzero(rows >= 0)
        bus_of[rows[has]] = has
    return bus_of


def _bus_blocks(
    jac: sp.coo_matrix, bus_of: np.ndarray, states_of: list[list[int]]
) -> dict[int, dict[int, np.ndarray]]:
    """J as dense blocks between buses (1 or 2 states each): blocks[i][j] = J[i's, j's]."""
    local = np.zeros(len(bus_of), dtype=int)
    for states in states_of:
        for k, s in enumerate(states):
            local[s] = k
    size = np.array([len(s) for s in states_of])
    blocks: dict[int, dict[int, np.ndarray]] = {}
    bi, bj = bus_of[jac.row], bus_of[jac.col]
    for i, j, li, lj, v in zip(bi.tolist(), bj.tolist(), local[jac.row].tolist(),
                               local[jac.col].tolist(), jac.data.tolist(), strict=True):
        row = blocks.setdefault(i, {})
        block = row.get(j)
        if block is None:
            block = row[j] = np.zeros((size[i], size[j]))
        block[li, lj] += v
    return blocks


def _eliminate(
    blocks: dict[int, dict[int, np.ndarray]],
    required: np.ndarray,
    inj: dict[int, sp.csr_matrix] | None = None,
) -> set[int]:
    """Gaussian elimination, bus by bus, of every bus not ``required`` while it has at most
    two neighbours: blocks[n][m] -= J_nv J_vv⁻¹ J_vm for its neighbours n, m, and its
    injections onto theirs, inj[n] -= J_nv J_vv⁻¹ inj[v] (in place). Returns the buses
    eliminated."""
    adjacency: dict[int, set[int]] = {v: set() for v in blocks}
    for i, row in blocks.items():
        for j in row:
            if i != j:
                adjacency[i].add(j)
                adjacency.setdefault(j, set()).add(i)
    queue = [v for v in adjacency if not required[v] and len(adjacency[v]) <= 2]
    done: set[int] = set()
    while queue:
        v = queue.pop()
        if v in done or required[v] or len(adjacency[v]) > 2:
            continue
        nbrs = list(adjacency[v])
        solve_vv = np.linalg.inv(blocks[v][v])
        for n in nbrs:
            j_nv = blocks[n].get(v)
            if j_nv is None:
                continue
            left = j_nv @ solve_vv
            if inj is not None and inj[v].nnz:
                inj[n] = sp.csr_matrix(inj[n] - sp.csr_matrix(left) @ inj[v])
            for m in nbrs:
                j_vm = blocks[v].get(m)
                if j_vm is None:
                    continue
                row = blocks[n]
                row[m] = row.get(m, 0.0) - left @ j_vm
        for n in nbrs:
            blocks[n].pop(v, None)
            adjacency[n].discard(v)
        if len(nbrs) == 2:
            a, b = nbrs
            adjacency[a].add(b)
            adjacency[b].add(a)
        del blocks[v]
        del adjacency[v]
        done.add(v)
        queue.extend(n for n in nbrs if not required[n] and len(adjacency[n]) <= 2)
    return done


def required_states(
    lin: NetworkLinearisation, limits: object, voltage_rows: np.ndarray
) -> np.ndarray:
    """The states a dispatch problem reads: its monitored voltages (``voltage_rows``) and
    branch flows (``limits.branches``) and the import (devices' buses are carried, see
    :func:`reduce_network`)."""
    parts = [np.flatnonzero(lin.import_gradient)]
    parts.append(np.unique(sp.coo_matrix(sp.csr_matrix(lin.v_select)[voltage_rows]).col))
    branches = np.asarray(limits.branches, dtype=int)  # type: ignore[attr-defined]
    for g in (lin.flow_p_gradient, lin.flow_q_gradient):
        parts.append(np.unique(sp.coo_matrix(sp.csr_matrix(g)[branches]).col))
    return np.unique(np.concatenate(parts).astype(int))


def reduced_linearisation(
    lin: NetworkLinearisation, red: ReducedNetwork
) -> NetworkLinearisation:
    """``lin`` on the kept state: its Jacobian the Schur complement, its voltage, flow and
    import maps restricted to the kept columns (exact for every state ``required_states``
    named). Its injection maps stay those of the full state: use :func:`reduced_maps`."""
    return dataclasses.replace(
        lin, n_state=len(red.kept), jacobian=red.jacobian,
        v_select=red.columns(lin.v_select), flow_p_gradient=red.columns(lin.flow_p_gradient),
        flow_q_gradient=red.columns(lin.flow_q_gradient),
        import_gradient=red.columns(lin.import_gradient))


def _device_matrices(maps: object) -> list[sp.spmatrix]:
    return [m for dm in (maps.pv, maps.bess, maps.ev)  # type: ignore[attr-defined]
            for m in (dm.p_pu_per_mw, dm.q_pu_per_mvar)]


def stacked_injections(maps: object) -> sp.csr_matrix:
    """A ``DeviceMaps``' matrices side by side: PV P, PV Q, BESS P, BESS Q, EV P, EV Q."""
    return sp.csr_matrix(sp.hstack(_device_matrices(maps)))


def reduced_maps(maps: object, red: ReducedNetwork) -> object:
    """A ``DeviceMaps`` into the kept balance equations (from ``red.injections``, reduced
    from :func:`stacked_injections`)."""
    carried = sp.csc_matrix(red.injections)
    edges = np.r_[0, np.cumsum([m.shape[1] for m in _device_matrices(maps)])]
    cut = [sp.csr_matrix(carried[:, edges[k]:edges[k + 1]]) for k in range(6)]
    kinds = {}
    for k, name in enumerate(("pv", "bess", "ev")):
        kinds[name] = dataclasses.replace(getattr(maps, name), p_pu_per_mw=cut[2 * k],
                                          q_pu_per_mvar=cut[2 * k + 1])
    return dataclasses.replace(maps, **kinds)  # type: ignore[type-var]
