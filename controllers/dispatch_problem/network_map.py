"""How the dispatch problem reads the linearised network: through its state, or through the
sensitivities of the few quantities it watches, whichever is the smaller problem.

Every network row of the problem is a linear map ``C z`` of the linearised state (a voltage, a
branch flow, the import), where ``J z = B u + offset`` ties the state to the devices' powers
``u``. :class:`StateMap` keeps ``z`` as a variable and ``J z = B u + offset`` as constraints: its
size is the network's (kept buses × steps), whatever is watched. :class:`SensitivityMap` solves
the state away: ``C z = (C J⁻¹ B) u + C J⁻¹ offset``, one dense row per watched quantity over
the devices, the offsets a parameter computed at each base point. With the import and a few
limits watched on a 10,458-bus grid (1,700 device columns against 2,314 kept states a step),
the second is ten times smaller; with every limit of a 100-bus grid watched, the first is.
Both are exact for the linearisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from controllers.dispatch_problem.parameters import (
    DeviceMaps,
    DispatchParameters,
    DispatchVariables,
)
from controllers.network_linearisation import NetworkLinearisation


def device_columns(
    maps: DeviceMaps, v: DispatchVariables
) -> list[tuple[sp.csr_matrix, cp.Expression]]:
    """The balance equations' right-hand side as (B, x) pairs: Σ B @ x (no empty variable)."""
    pairs = [
        (maps.pv.p_pu_per_mw, v.pv_p_mw),
        (maps.pv.q_pu_per_mvar, v.pv_q_mvar),
        (maps.bess.p_pu_per_mw, v.bess_net_mw),
        (maps.bess.q_pu_per_mvar, v.bess_q_mvar),
        (-maps.ev.p_pu_per_mw, v.ev_site_p_mw),
    ]
    return [(sp.csr_matrix(m), x) for m, x in pairs if x.size and m.nnz]


class StateMap:
    """The state as a variable, ``J z = B u + offset`` as constraints."""

    def __init__(self, p: DispatchParameters, v: DispatchVariables, *,
                 lin: NetworkLinearisation, maps: DeviceMaps) -> None:
        self._z = v.network_state_pu
        rhs = p.balance_offset_pu
        for m, x in device_columns(maps, v):
            rhs = rhs + m @ x
        self.constraints = [lin.jacobian @ self._z == rhs]

    def of(self, c: sp.spmatrix | np.ndarray) -> cp.Expression:
        return c @ self._z

    def directed(self, dir_p: cp.Parameter, g_p: sp.spmatrix, dir_q: cp.Parameter,
                 g_q: sp.spmatrix) -> cp.Expression:
        """``dir_p ⊙ (G_p z) + dir_q ⊙ (G_q z)``."""
        return cp.multiply(dir_p, g_p @ self._z) + cp.multiply(dir_q, g_q @ self._z)

    def assign(self, balance_offset_pu: np.ndarray) -> None:
        """Nothing: the offset is the constraint's parameter."""


@dataclass(eq=False)
class _Offset:
    """A parameter of watched quantities' offsets and how it follows the balance offset."""

    param: cp.Parameter
    of_balance: Callable[[np.ndarray], np.ndarray]


@dataclass(eq=False)
class SensitivityMap:
    """The state solved away: each watched quantity a dense row over the devices."""

    lin: NetworkLinearisation
    maps: DeviceMaps
    v: DispatchVariables
    steps: int
    constraints: list = field(default_factory=list)
    _offsets: list[_Offset] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lu_t = spla.splu(sp.csc_matrix(self.lin.jacobian.T)) if self.lin.n_state else None
        self._columns = device_columns(self.maps, self.v)

    def _rows(self, c: sp.spmatrix | np.ndarray) -> tuple[np.ndarray, cp.Expression | None]:
        """``y = J⁻ᵀ Cᵀ`` and ``(C J⁻¹ B) u`` (None without devices)."""
        c = sp.csr_matrix(np.atleast_2d(c) if not sp.issparse(c) else c)
        y = (self._lu_t.solve(c.T.toarray()) if self._lu_t is not None
             else np.zeros((0, c.shape[0])))
        expr = None
        for m, x in self._columns:
            term = np.asarray((m.T @ y).T) @ x  # (k, devices) dense: C J⁻¹ B
            expr = term if expr is None else expr + term
        return y, expr

    def _offset(self, k: int, of_balance: Callable[[np.ndarray], np.ndarray]) -> cp.Parameter:
        param = cp.Parameter((k, self.steps), name=f"network_offset_{len(self._offsets)}")
        param.value = np.zeros((k, self.steps))
        self._offsets.append(_Offset(param, of_balance))
        return param

    def of(self, c: sp.spmatrix | np.ndarray) -> cp.Expression:
        y, expr = self._rows(c)
        offset = self._offset(y.shape[1], lambda b: y.T @ b)
        return offset if expr is None else expr + offset

    def directed(self, dir_p: cp.Parameter, g_p: sp.spmatrix, dir_q: cp.Parameter,
                 g_q: sp.spmatrix) -> cp.Expression:
        """``dir_p ⊙ (G_p z) + dir_q ⊙ (G_q z)``; the offsets' part one parameter (DPP: no
        parameter times a parameter)."""
        y_p, e_p = self._rows(g_p)
        y_q, e_q = self._rows(g_q)
        offset = self._offset(y_p.shape[1], lambda b: (dir_p.value * (y_p.T @ b)
                                                       + dir_q.value * (y_q.T @ b)))
        expr: cp.Expression = offset
        for d, e in ((dir_p, e_p), (dir_q, e_q)):
            if e is not None:
                expr = expr + cp.multiply(d, e)
        return expr

    def assign(self, balance_offset_pu: np.ndarray) -> None:
        """Each watched quantity's share of the base point's offset (after the base point's
        other parameters: the branch directions)."""
        for o in self._offsets:
            o.param.value = o.of_balance(balance_offset_pu)


def network_map(
    p: DispatchParameters,
    v: DispatchVariables,
    *,
    lin: NetworkLinearisation,
    maps: DeviceMaps,
    n_watched: int,
    steps: int,
    form: str | None = None,
) -> StateMap | SensitivityMap:
    """The smaller of the two (``form`` None), or ``form`` "state" or "sensitivity": the
    ``n_watched`` rows over the device columns against the Jacobian and the device maps
    (non-zeros a step)."""
    n_devices = sum(m.shape[1] for m, _ in device_columns(maps, v))
    state_nnz = lin.jacobian.nnz + sum(m.nnz for m, _ in device_columns(maps, v)) + lin.n_state
    if form is None:
        form = "sensitivity" if n_watched * n_devices < state_nnz else "state"
    if form == "sensitivity":
        return SensitivityMap(lin=lin, maps=maps, v=v, steps=steps)
    return StateMap(p, v, lin=lin, maps=maps)
