"""The dispatch problem, built once for a model, its linearisation, a horizon and a device set.

``DispatchProblem`` makes the typed Parameters and Variables (``parameters``), the constraints
(``constraints``: one builder per concern) and the objective's terms (``objective``), checks the
problem is DPP, and re-solves it with new inputs (``set_inputs``, then ``solve``).
"""

from __future__ import annotations

import time

import cvxpy as cp
import numpy as np

from controllers.config import DispatchConfig
from controllers.dispatch_problem.constraints import (
    LimitRows,
    bess_constraints,
    ev_site_constraints,
    network_constraints,
    pv_constraints,
)
from controllers.dispatch_problem.inputs import DispatchInputs
from controllers.dispatch_problem.network_map import StateMap, network_map
from controllers.dispatch_problem.objective import objective_terms
from controllers.dispatch_problem.parameters import (
    Z_SCALE,
    DeviceMap,
    DeviceMaps,
    Shape,
    assign_base_point,
    assign_window,
    make_parameters,
    make_variables,
)
from controllers.dispatch_problem.solution import BindingLimit, DispatchSolution, binding_limits
from controllers.dispatch_problem.solve import SOLVED, solve_in_turn
from controllers.network_linearisation import NetworkLinearisation
from controllers.network_reduction import (
    reduce_network,
    reduced_linearisation,
    reduced_maps,
    required_states,
    stacked_injections,
)
from controllers.screening import MonitoredLimits
from network_models.model import GridModel
from network_models.registry import Bess, EvChargingSite, PvSystem


class DispatchProblem:
    """One cvxpy problem per (model, linearisation, horizon, device set), solved many times."""

    def __init__(
        self,
        model: GridModel,
        lin: NetworkLinearisation,
        *,
        steps: int,
        step_h: float,
        config: DispatchConfig,
        limits: MonitoredLimits | None = None,
        network_form: str | None = None,
    ) -> None:
        """``network_form``: how the network rows read the linearisation, "state" or
        "sensitivity" (see ``network_map``); None: the smaller problem of the two."""
        self.network_form = network_form
        self.model = model
        self.lin = lin
        self.limits = limits or MonitoredLimits.everything(lin)
        # monitored buses with a voltage bound, either way: rows of the voltage constraints
        self.voltage_rows = np.union1d(self.limits.v_low, self.limits.v_high)
        self.steps = steps
        self.step_h = step_h
        self.config = config  # read at every solve (its solver and time limit)
        reg = model.registry
        self.pv: tuple[PvSystem, ...] = reg.pv
        self.bess: tuple[Bess, ...] = reg.bess
        self.ev: tuple[EvChargingSite, ...] = reg.ev_sites
        net = model.net
        maps = DeviceMaps(
            pv=DeviceMap.of(lin, [int(net.sgen.bus.at[d.element.index]) for d in self.pv]),
            bess=DeviceMap.of(lin, [int(net.storage.bus.at[d.element.index]) for d in self.bess]),
            ev=DeviceMap.of(lin, [int(net.load.bus.at[d.element.index]) for d in self.ev]),
        )
        # the problem carries the state only where something injects or is watched (exact)
        self.reduction = reduce_network(
            lin, required_states(lin, self.limits, self.voltage_rows),
            injections=stacked_injections(maps))
        self.full_lin = lin
        self.lin = reduced_linearisation(lin, self.reduction)
        self.maps = reduced_maps(maps, self.reduction)
        self._build()
        self.last_inputs: DispatchInputs | None = None
        self.last_set_inputs_s = self.last_solve_wall_s = self.last_solver_s = float("nan")
        self.last_attempts: tuple[str, ...] = ()

    def _build(self) -> None:
        """The problem, once: Parameters and Variables, constraints, objective terms."""
        shape = Shape(
            steps=self.steps,
            n_pv=len(self.pv),
            n_bess=len(self.bess),
            n_ev=len(self.ev),
            n_state=self.lin.n_state,
            n_voltage_rows=len(self.voltage_rows),
            n_branches=len(self.limits.branches),
        )
        p = self.params = make_parameters(shape)
        v = self.variables = make_variables(shape)
        cfg, dt = self.config, self.step_h
        n_watched = 1 + len(self.voltage_rows) + 2 * len(self.limits.branches)
        self.net_map = network_map(p, v, lin=self.lin, maps=self.maps, n_watched=n_watched,
                                   steps=self.steps, form=self.network_form)
        network = network_constraints(
            p, v, lin=self.lin, maps=self.maps, limits=self.limits,
            voltage_rows=self.voltage_rows, config=cfg, net=self.model.net,
            net_map=self.net_map,
        )
        # read back after a solve for the shadow prices of the limits that bound the plan
        self.limit_rows: list[LimitRows] = network.limits
        constraints = [
            *network.constraints,
            *pv_constraints(p, v),
            *bess_constraints(p, v, bess=self.bess, energised=self.maps.bess.energised,
                              config=cfg, step_h=dt),
            *ev_site_constraints(p, v, step_h=dt),
        ]
        self.terms = objective_terms(p, v, cfg.weights, bess=self.bess, step_h=dt)
        # the solver sees the cost in thousands of CNY: better scaled against the network rows
        self.problem = cp.Problem(cp.Minimize(sum(self.terms.values()) / 1000.0), constraints)
        if not self.problem.is_dpp():
            raise RuntimeError("dispatch problem is not DPP: it would be rebuilt on every solve")

    # -- solving -----------------------------------------------------------------------------
    def set_inputs(self, x: DispatchInputs) -> None:
        """Copy new forecasts, state and base point into the parameters (no rebuild)."""
        t_start = time.perf_counter()
        assign_window(self.params, x.window, self.maps, self.step_h)
        self._branch_limit_mva = assign_base_point(
            self.params, x.base, self.maps, lin=self.lin, limits=self.limits,
            voltage_rows=self.voltage_rows, config=self.config,
        )
        self.net_map.assign(self.params.balance_offset_pu.value)
        self.last_inputs = x
        self.last_set_inputs_s = time.perf_counter() - t_start

    def solve(self) -> DispatchSolution:
        """Solve with the inputs last set: the configured solver, then others on a numerical
        failure (``last_attempts`` says what failed before the answer, or all if none)."""
        t_start = time.perf_counter()
        status, self.last_attempts = solve_in_turn(self.problem, self.config)
        self.last_solve_wall_s = time.perf_counter() - t_start
        stats = self.problem.solver_stats
        solve_s = (
            float(stats.solve_time) if stats and stats.solve_time is not None else float("nan")
        )
        self.last_solver_s = solve_s
        sol = self._solution(status, solve_s)
        object.__setattr__(sol, "total_s", time.perf_counter() - t_start)
        return sol

    def _solution(self, status: str, solve_s: float) -> DispatchSolution:
        """The decisions of the last solve (NaN where it did not solve)."""
        v, ok = self.variables, status in SOLVED
        n_pv, n_b, n_ev, t = len(self.pv), len(self.bess), len(self.ev), self.steps

        def val(x: cp.Variable, shape: tuple[int, ...]) -> np.ndarray:
            if 0 in shape:
                return np.zeros(shape)
            return np.asarray(x.value, dtype=float).reshape(shape) if ok else np.full(shape, np.nan)

        terms = {k: float(e.value) if ok else float("nan") for k, e in self.terms.items()}
        ev_short = val(v.ev_shortfall_mwh, (n_ev, t))
        if ok and isinstance(self.net_map, StateMap):
            state_pu = Z_SCALE * val(v.network_state_mpu, (self.lin.n_state, t))
            vm_pu = self.last_inputs.base.vm_pu + self.lin.v_select @ state_pu
            # a bus the reduction eliminated has no prediction here (the AC check has it)
            vm_pu[np.diff(self.lin.v_select.indptr) == 0] = np.nan
        else:
            vm_pu = np.full((len(self.lin.monitored_buses), t), np.nan)
        return DispatchSolution(
            status=status,
            solve_s=solve_s,
            total_s=0.0,
            objective_cny=float(self.problem.value) * 1000.0 if ok else float("nan"),
            pv_p_mw=val(v.pv_p_mw, (n_pv, t)),
            pv_q_mvar=val(v.pv_q_mvar, (n_pv, t)),
            bess_p_mw=val(v.bess_discharge_mw, (n_b, t)) - val(v.bess_charge_mw, (n_b, t)),
            bess_q_mvar=val(v.bess_q_mvar, (n_b, t)),
            bess_e_mwh=val(v.bess_energy_mwh, (n_b, t)),
            ev_p_mw=val(v.ev_site_p_mw, (n_ev, t)),
            import_mw=val(v.import_mw, (t,)),
            vm_pu=vm_pu,
            ev_shortfall_mwh=ev_short[:, -1] if t else np.zeros(n_ev),
            voltage_slack_pu=val(v.voltage_slack_pu, (t,)),
            loading_slack_mva=val(v.loading_slack_mva, (t,)),
            terms_cny=terms,
            binding=self._binding() if ok else (),
        )

    def _binding(self) -> tuple[BindingLimit, ...]:
        """The limits that bound the last solve (see :func:`binding_limits`)."""
        cfg = self.config
        bounds = {
            "voltage_low": np.asarray(cfg.v_min_pu + cfg.voltage_margin_pu),
            "voltage_high": np.asarray(cfg.v_max_pu - cfg.voltage_margin_pu),
            "branch": np.asarray(self._branch_limit_mva, dtype=float),
        }
        return binding_limits(self.limit_rows, bounds)
