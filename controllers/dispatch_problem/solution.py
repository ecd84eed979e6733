"""What a solve of the dispatch problem gives: the decisions, the cost terms, the binding limits.

Units MW, Mvar, MWh, pu, CNY; arrays (devices, steps) unless noted. Powers follow the
problem's signs: PV and BESS inject (BESS discharge positive), EV sites consume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from controllers.dispatch_problem.constraints import LimitRows

# a limit binds where its dual is above this (CNY per pu or per MVA in one step) and its row has
# no more room than BINDING_ROOM (pu or MVA): an interior point solver leaves duals of 1e-6 on
# rows far off, and stops 1e-5 short of the bounds it holds
BINDING_DUAL_CNY = 1e-2
BINDING_ROOM = 1e-4


@dataclass(frozen=True, kw_only=True)
class BindingLimit:
    """A voltage or thermal limit of the network problem that bound the plan in some steps.

    ``kind``: voltage_low or voltage_high (a bus, ``unit`` CNY/pu) or line_loading or
    trafo_loading (a branch's from end, CNY/MVA), as the AC check names violations.
    ``shadow_prices`` (one per step of ``steps``) are the constraint's duals: what the
    objective would fall, in CNY, if the limit of that one step moved by one unit outward
    (a tenth of that for 0.1 pu or 0.1 MVA; the problem is linear, so for small moves).
    ``limit`` is the bound the plan kept to: the voltage band less its margin (pu), or the
    branch's rated power less its margin at the step's from-end voltage (MVA, per step).
    """

    element: str
    kind: str
    unit: str
    steps: tuple[int, ...]
    shadow_prices: tuple[float, ...]
    limits: tuple[float, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class DispatchSolution:
    status: str
    solve_s: float  # solver time as reported by the solver
    total_s: float  # parameter update + solve + extraction, wall clock
    objective_cny: float
    pv_p_mw: np.ndarray
    pv_q_mvar: np.ndarray
    bess_p_mw: np.ndarray
    bess_q_mvar: np.ndarray
    bess_e_mwh: np.ndarray
    ev_p_mw: np.ndarray
    import_mw: np.ndarray
    vm_pu: np.ndarray  # linear prediction at monitored buses
    ev_shortfall_mwh: np.ndarray  # (n_ev,) envelope shortfall at the horizon's end
    voltage_slack_pu: np.ndarray
    loading_slack_mva: np.ndarray
    terms_cny: dict[str, float]
    # the network limits that bound the plan: one per element and kind (see BindingLimit)
    binding: tuple[BindingLimit, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "optimal_inaccurate")


def binding_limits(
    rows: Sequence[LimitRows], bounds: dict[str, np.ndarray]
) -> tuple[BindingLimit, ...]:
    """The voltage and thermal rows that bound the last solve, with their duals in CNY.

    ``bounds``: the bound each row of a limit keeps to, per step, by ``LimitRows.limit``
    (pu for voltage_low and voltage_high, MVA for branch). The solver sees the objective in
    thousands of CNY and the rows in pu (voltages: the milli-pu state is scaled back inside the
    row) and MVA (flows), so a dual times 1000 is CNY per pu or per MVA of one step's limit."""
    found: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for row in rows:
        con, names = row.constraint, row.names
        dual, expr = con.dual_value, con.expr.value
        if dual is None or expr is None:
            continue
        dual_cny = np.asarray(dual, dtype=float).reshape(len(names), -1) * 1000.0
        room = -np.asarray(expr, dtype=float).reshape(len(names), -1)  # >= 0 when held
        limit = np.broadcast_to(bounds[row.limit], dual_cny.shape)
        for i, j in zip(*np.nonzero((dual_cny > BINDING_DUAL_CNY) & (room < BINDING_ROOM)),
                        strict=True):
            steps = found.setdefault((names[i], row.kinds[i]), {})
            # a branch has a row each way; only one binds at a time, keep the dearer
            if j not in steps or steps[j][0] < dual_cny[i, j]:
                steps[int(j)] = (float(dual_cny[i, j]), float(limit[i, j]))
    out = []
    for (element, kind), steps in sorted(found.items()):
        order = sorted(steps)
        out.append(BindingLimit(
            element=element,
            kind=kind,
            unit="CNY/MVA" if kind.endswith("loading") else "CNY/pu",
            steps=tuple(order),
            shadow_prices=tuple(steps[j][0] for j in order),
            limits=tuple(steps[j][1] for j in order),
        ))
    return tuple(out)
