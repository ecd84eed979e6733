"""The dispatch optimisation problem: built once, DPP, re-solved with new parameters each step.

Decision variables per step: PV active power (curtailment) and reactive power, BESS charge,
discharge and reactive power, EV site charging power, and the linearised network state
(see ``network_linearisation``). Constraints: linearised AC power flow of the meshed network,
voltage band and thermal limits (soft, with penalised slacks that are reported), inverter ratings,
BESS SoC dynamics with efficiencies, reserve and end-of-horizon target, EV site envelopes with a
penalised shortfall. Objective: the weighted cost terms of ``ObjectiveWeights``.

A battery measured outside its band (whose floor is the islanding reserve where one is kept) is
planned from where it is: its hard energy bounds are the band widened to the measured value, so
the start is never infeasible and the plan never takes it further out; each MWh outside the band
is penalised in every step it stays out, which brings it back as fast as the rest of the
objective allows. A battery that may not be dispatched (its SoC unknown) gets a power cap of 0
(see ``bess_soc``).

Sign conventions: PV and BESS powers are injections (BESS discharge positive), EV site power is
consumption, import is power drawn from the upstream grid. Units MW, Mvar, MWh, pu, CNY.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from controllers.bess_soc import floor_frac
from controllers.config import DispatchConfig
from controllers.network_linearisation import NetworkLinearisation
from controllers.screening import MonitoredLimits
from network_models.model import GridModel
from network_models.registry import Bess, EvChargingSite, PvSystem


@dataclass(frozen=True, kw_only=True, eq=False)
class DispatchInputs:
    """Everything that changes between solves; arrays are (devices, T) unless noted."""

    pv_avail_mw: np.ndarray
    pv_q_cap_mvar: np.ndarray
    ev_cap_mw: np.ndarray
    ev_e_min_mwh: np.ndarray
    ev_e_max_mwh: np.ndarray
    ev_first_step_floor_mwh: np.ndarray  # (n_ev,) what plugged-in vehicles can take in step 1
    bess_e0_mwh: np.ndarray  # (n_bess,)
    bess_e_min_mwh: np.ndarray  # (n_bess,) hard lower energy bound: floor, or lower if measured
    bess_e_max_mwh: np.ndarray  # (n_bess,) hard upper energy bound: soc_max, or higher if measured
    bess_p_max_mw: np.ndarray  # (n_bess,) most charge or discharge power, 0 when not dispatchable
    bess_e_target_mwh: np.ndarray  # (n_bess,)
    import_cost_cny_per_mwh: np.ndarray  # (T,) energy price + carbon price × intensity
    # base point of the linearisation (the AC solution of a schedule)
    base_pv_p_mw: np.ndarray
    base_pv_q_mvar: np.ndarray
    base_bess_p_mw: np.ndarray
    base_bess_q_mvar: np.ndarray
    base_ev_p_mw: np.ndarray
    base_vm_pu: np.ndarray  # (monitored buses, T)
    base_flow_p_mw: np.ndarray  # (monitored branches, T)
    base_flow_q_mvar: np.ndarray
    base_v_from_pu: np.ndarray  # (monitored branches, T) voltage at each branch's from end
    base_import_mw: np.ndarray  # (T,)
    uncontrolled_net_load_mw: np.ndarray  # (T,) loads only, for the losses term


# qdldl was 3x faster than Clarabel's default here; tolerances are those of a dispatch decision
# (0.01 CNY on a 400 kCNY day), not of a proof
_SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "CLARABEL": {
        "direct_solve_method": "qdldl",
        "tol_gap_abs": 1e-5,
        "tol_gap_rel": 1e-6,
        "tol_feas": 1e-7,
        "tol_ktratio": 1e-6,
        "max_iter": 100,
    },
    "HIGHS": {"warm_start": False},  # cvxpy's warm start made a re-solve 60x slower
}
# after a numerical failure: Clarabel as it comes, then HiGHS (the problem is an LP)
_RETRIES: tuple[tuple[str, dict[str, object]], ...] = (
    ("CLARABEL", {"max_iter": 200}),
    ("HIGHS", {"warm_start": False}),
)


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


# a limit binds where its dual is above this (CNY per pu or per MVA in one step) and its row has
# no more room than BINDING_ROOM (pu or MVA): an interior point solver leaves duals of 1e-6 on
# rows far off, and stops 1e-5 short of the bounds it holds
BINDING_DUAL_CNY = 1e-2
BINDING_ROOM = 1e-4


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


Z_SCALE = 1e-3


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
    ) -> None:
        self.model = model
        self.lin = lin
        self.limits = limits or MonitoredLimits.everything(lin)
        self._v_rows = np.union1d(self.limits.v_low, self.limits.v_high)
        self.steps = steps
        self.step_h = step_h
        self.config = config
        reg = model.registry
        self.pv: tuple[PvSystem, ...] = reg.pv
        self.bess: tuple[Bess, ...] = reg.bess
        self.ev: tuple[EvChargingSite, ...] = reg.ev_sites
        net = model.net
        pv_bus = [int(net.sgen.bus.at[d.element.index]) for d in self.pv]
        bess_bus = [int(net.storage.bus.at[d.element.index]) for d in self.bess]
        ev_bus = [int(net.load.bus.at[d.element.index]) for d in self.ev]
        self.pv_alive = lin.energised(pv_bus)
        self.bess_alive = lin.energised(bess_bus)
        self.ev_alive = lin.energised(ev_bus)
        self._maps = {
            "pv": lin.injection_map(pv_bus),
            "bess": lin.injection_map(bess_bus),
            "ev": lin.injection_map(ev_bus),
        }
        self._build()
        self.last_set_inputs_s = self.last_solve_wall_s = self.last_solver_s = float("nan")
        self.last_attempts: tuple[str, ...] = ()

    # -- construction ----------------------------------------------------------------------
    def _build(self) -> None:
        lin, cfg, w = self.lin, self.config, self.config.weights
        t, dt = self.steps, self.step_h
        n_pv, n_b, n_ev = len(self.pv), len(self.bess), len(self.ev)
        lim = self.limits
        n_mon, n_br = len(self._v_rows), len(lim.branches)

        par = cp.Parameter
        self.p = {
            "pv_avail": par((n_pv, t), nonneg=True, name="pv_avail_mw"),
            "pv_qcap": par((n_pv, t), nonneg=True, name="pv_q_cap_mvar"),
            "ev_cap": par((n_ev, t), nonneg=True, name="ev_cap_mw"),
            "ev_lo": par((n_ev, t), nonneg=True, name="ev_e_min_mwh"),
            "ev_hi": par((n_ev, t), nonneg=True, name="ev_e_max_mwh"),
            "ev_floor": par(n_ev, nonneg=True, name="ev_first_step_floor_mwh"),
            "e0": par(n_b, nonneg=True, name="bess_e0_mwh"),
            "emin": par(n_b, nonneg=True, name="bess_e_min_mwh"),
            "emax": par(n_b, nonneg=True, name="bess_e_max_mwh"),
            "b_pmax": par(n_b, nonneg=True, name="bess_p_max_mw"),
            "etarget": par(n_b, nonneg=True, name="bess_e_target_mwh"),
            "cost": par(t, name="import_cost_cny_per_mwh"),
            "offset": par((lin.n_state, t), name="balance_offset_pu"),
            "imp0": par(t, name="base_import_mw"),
            "load0": par(t, name="net_load_mw"),
        }
        if n_mon:
            self.p["vm0"] = par((n_mon, t), name="base_vm_pu")
        if n_br:
            self.p["u_p"] = par((n_br, t), name="flow_direction_p")
            self.p["u_q"] = par((n_br, t), name="flow_direction_q")
            self.p["room_fwd"] = par((n_br, t), name="flow_room_forward_mva")
            self.p["room_rev"] = par((n_br, t), name="flow_room_reverse_mva")
        p = self.p
        var = cp.Variable
        self.v = {
            "z": var((lin.n_state, t), name="state"),
            "pv_p": var((n_pv, t), nonneg=True, name="pv_p_mw"),
            "pv_q": var((n_pv, t), name="pv_q_mvar"),
            "b_ch": var((n_b, t), nonneg=True, name="bess_charge_mw"),
            "b_dis": var((n_b, t), nonneg=True, name="bess_discharge_mw"),
            "b_q": var((n_b, t), name="bess_q_mvar"),
            "b_e": var((n_b, t), nonneg=True, name="bess_e_mwh"),
            "ev_p": var((n_ev, t), nonneg=True, name="ev_p_mw"),
            "ev_e": var((n_ev, t), nonneg=True, name="ev_e_mwh"),
            "ev_short": var((n_ev, t), nonneg=True, name="ev_shortfall_mwh"),
            "ev_defer": var(n_ev, nonneg=True, name="ev_deferred_mwh"),
            "b_term": var(n_b, nonneg=True, name="bess_terminal_shortfall_mwh"),
            "b_under": var((n_b, t), nonneg=True, name="bess_below_band_mwh"),
            "b_over": var((n_b, t), nonneg=True, name="bess_above_band_mwh"),
            "sig_v": var(t, nonneg=True, name="voltage_slack_pu"),
            "sig_s": var(t, nonneg=True, name="loading_slack_mva"),
            "imp": var(t, name="import_mw"),
            "peak": var(name="peak_import_mw"),
        }
        v = self.v
        # the solver's state is in milli-pu: Jacobian entries of short 10 kV cables run to 1e3-1e4
        # pu/pu while device columns are 1, and the scaled problem takes half the iterations
        z = v["z"] * Z_SCALE
        bp_pv, bq_pv, slack_pv = self._maps["pv"]
        bp_b, bq_b, slack_b = self._maps["bess"]
        bp_ev, _, slack_ev = self._maps["ev"]
        b_net = v["b_dis"] - v["b_ch"]
        cons = []
        # linearised AC power flow: J z = ΔS(injections) relative to the base point
        cons.append(
            lin.jacobian @ z
            == bp_pv @ v["pv_p"]
            + bq_pv @ v["pv_q"]
            + bp_b @ b_net
            + bq_b @ v["b_q"]
            - bp_ev @ v["ev_p"]
            + p["offset"]
        )
        # (kind, constraint, names of its rows): read back after a solve for the shadow prices
        self._limit_rows: list[tuple[str, cp.Constraint, list[str]]] = []
        net = self.model.net
        sig_v_row = cp.reshape(v["sig_v"], (1, t), order="C")
        lo = cfg.v_min_pu + cfg.voltage_margin_pu
        hi = cfg.v_max_pu - cfg.voltage_margin_pu
        if n_mon:
            vm = p["vm0"] + sp.csr_matrix(lin.v_select)[self._v_rows] @ z
            pick_low = np.flatnonzero(np.isin(self._v_rows, lim.v_low))
            pick_high = np.flatnonzero(np.isin(self._v_rows, lim.v_high))
            bus_names = [str(net.bus.name.at[b]) for b in lin.monitored_buses[self._v_rows]]
            if len(pick_low):
                ones = np.ones((len(pick_low), 1))
                cons.append(vm[pick_low, :] >= lo - ones @ sig_v_row)
                self._limit_rows.append(
                    ("voltage_low", cons[-1], [bus_names[i] for i in pick_low]))
            if len(pick_high):
                ones = np.ones((len(pick_high), 1))
                cons.append(vm[pick_high, :] <= hi + ones @ sig_v_row)
                self._limit_rows.append(
                    ("voltage_high", cons[-1], [bus_names[i] for i in pick_high]))
        if n_br:
            # thermal limit as the tangent of |S| <= limit at the base flow's direction, both
            # ways: exact at the base point, never cuts off a feasible flow, re-linearised
            # around the AC solution until the check passes
            sig_s_row = cp.reshape(v["sig_s"], (1, t), order="C")
            g_p = sp.csr_matrix(lin.flow_p_gradient)[lim.branches]
            g_q = sp.csr_matrix(lin.flow_q_gradient)[lim.branches]
            toward = cp.multiply(p["u_p"], g_p @ z) + cp.multiply(p["u_q"], g_q @ z)
            slack = np.ones((n_br, 1)) @ sig_s_row
            cons += [toward <= p["room_fwd"] + slack, -toward <= p["room_rev"] + slack]
            n_lines = len(lin.monitored_lines)
            names = [
                ("line_loading", str(net.line.name.at[lin.monitored_lines[r]])) if r < n_lines
                else ("trafo_loading", str(net.trafo.name.at[lin.monitored_trafos[r - n_lines]]))
                for r in lim.branches
            ]
            self._branch_kinds = [k for k, _ in names]
            self._limit_rows += [("branch", cons[-2], [n for _, n in names]),
                                 ("branch", cons[-1], [n for _, n in names])]
        # import, linearised; devices on a slack bus change it one to one
        slack_inj = 0
        if slack_pv.any():
            slack_inj = slack_inj + np.where(slack_pv, 1.0, 0.0) @ v["pv_p"]
        if slack_b.any():
            slack_inj = slack_inj + np.where(slack_b, 1.0, 0.0) @ b_net
        if slack_ev.any():
            slack_inj = slack_inj - np.where(slack_ev, 1.0, 0.0) @ v["ev_p"]
        cons.append(v["imp"] == p["imp0"] + lin.import_gradient @ z - slack_inj)
        cons.append(v["peak"] >= v["imp"])
        # PV: curtailment and reactive power inside the inverter rating
        cons += [v["pv_p"] <= p["pv_avail"], cp.abs(v["pv_q"]) <= p["pv_qcap"]]
        # BESS
        if n_b:
            q_cap = np.array([np.sqrt(max(b.s_mva**2 - b.p_mw**2, 0.0)) for b in self.bess])
            # the band the plan keeps to: the islanding reserve, where kept, is its floor
            floor = [floor_frac(b, use_island_reserve=cfg.use_island_reserve) for b in self.bess]
            band_lo = (np.array(floor) * [b.e_mwh for b in self.bess])[:, None]
            band_hi = np.array([b.soc_max_frac * b.e_mwh for b in self.bess])[:, None]
            over_t = np.ones((1, t))

            def per_step(x: cp.Parameter) -> cp.Expression:
                return cp.reshape(x, (n_b, 1), order="C") @ over_t

            eta_c = np.array([b.eta_charge for b in self.bess])[:, None]
            eta_d = np.array([b.eta_discharge for b in self.bess])[:, None]
            flow_e = cp.multiply(eta_c, v["b_ch"]) - cp.multiply(1.0 / eta_d, v["b_dis"])
            cons += [
                v["b_ch"] <= per_step(p["b_pmax"]),
                v["b_dis"] <= per_step(p["b_pmax"]),
                cp.abs(v["b_q"]) <= (q_cap * self.bess_alive)[:, None] @ over_t,
                v["b_e"][:, 0] == p["e0"] + flow_e[:, 0] * dt,
                v["b_e"] <= per_step(p["emax"]),
                v["b_e"] >= per_step(p["emin"]),
                v["b_e"] + v["b_under"] >= band_lo @ over_t,
                v["b_e"] - v["b_over"] <= band_hi @ over_t,
                v["b_e"][:, t - 1] + v["b_term"] >= p["etarget"],
            ]
            if t > 1:
                cons.append(v["b_e"][:, 1:] == v["b_e"][:, :-1] + flow_e[:, 1:] * dt)
        # EV sites: envelopes, the lower one soft
        if n_ev:
            cons += [
                v["ev_p"] <= p["ev_cap"],
                v["ev_e"][:, 0] == v["ev_p"][:, 0] * dt,
                v["ev_e"] + v["ev_short"] >= p["ev_lo"],
                v["ev_e"] <= p["ev_hi"],
                # what plugged-in vehicles can take now, soft: only the grid's limits hold it back
                v["ev_e"][:, 0] + v["ev_defer"] >= p["ev_floor"],
            ]
            if t > 1:
                cons.append(v["ev_e"][:, 1:] == v["ev_e"][:, :-1] + v["ev_p"][:, 1:] * dt)

        # objective: small pure terms, weighted
        terms = {
            "energy_and_carbon": p["cost"] @ v["imp"] * dt,
            "peak": w.peak_cny_per_mw * v["peak"],
            "curtailment": w.curtailment_cny_per_mwh * dt * cp.sum(p["pv_avail"] - v["pv_p"]),
            "losses": w.losses_cny_per_mwh
            * dt
            * cp.sum(
                v["imp"]
                - p["load0"]
                + cp.sum(v["pv_p"], axis=0)
                + cp.sum(b_net, axis=0)
                - cp.sum(v["ev_p"], axis=0)
            ),
            "reactive": w.reactive_cny_per_mvarh
            * dt
            * (cp.sum(cp.abs(v["pv_q"])) + cp.sum(cp.abs(v["b_q"]))),
            # each MWh owed late costs in every step it stays owed
            "ev_shortfall": w.ev_shortfall_cny_per_mwh * cp.sum(v["ev_short"]),
            "ev_deferral": w.ev_deferral_cny_per_mwh * cp.sum(v["ev_defer"]),
            "violations": w.voltage_violation_cny_per_pu * cp.sum(v["sig_v"])
            + w.loading_violation_cny_per_mva * cp.sum(v["sig_s"]),
        }
        if n_b:
            deg = np.array([b.degradation_cny_per_mwh for b in self.bess]) * w.degradation
            terms["degradation"] = dt * cp.sum(deg @ (v["b_ch"] + v["b_dis"]))
            terms["bess_terminal"] = w.bess_terminal_cny_per_mwh * cp.sum(v["b_term"])
            # each MWh outside the band costs in every step it stays out
            terms["bess_out_of_band"] = w.bess_out_of_band_cny_per_mwh * (
                cp.sum(v["b_under"]) + cp.sum(v["b_over"])
            )
        self.terms = terms
        # the solver sees the cost in thousands of CNY: better scaled against the network rows
        self.problem = cp.Problem(cp.Minimize(sum(terms.values()) / 1000.0), cons)
        if not self.problem.is_dpp():
            raise RuntimeError("dispatch problem is not DPP: it would be rebuilt on every solve")

    # -- solving -----------------------------------------------------------------------------
    def set_inputs(self, x: DispatchInputs) -> None:
        """Copy new forecasts, state and base point into the parameters (no rebuild)."""
        t_start = time.perf_counter()
        self._set_inputs(x)
        self.last_set_inputs_s = time.perf_counter() - t_start

    def _set_inputs(self, x: DispatchInputs) -> None:
        lin, cfg, p = self.lin, self.config, self.p
        p["pv_avail"].value = np.clip(x.pv_avail_mw, 0, None) * self.pv_alive[:, None]
        p["pv_qcap"].value = np.clip(x.pv_q_cap_mvar, 0, None) * self.pv_alive[:, None]
        p["ev_cap"].value = np.clip(x.ev_cap_mw, 0, None) * self.ev_alive[:, None]
        p["ev_lo"].value = np.clip(x.ev_e_min_mwh, 0, None) * self.ev_alive[:, None]
        p["ev_hi"].value = np.clip(x.ev_e_max_mwh, 0, None) * self.ev_alive[:, None]
        # never above what the envelopes allow in the first step (it stays a floor, not a push)
        first = np.minimum(x.ev_e_max_mwh[:, 0], x.ev_cap_mw[:, 0] * self.step_h) if len(
            x.ev_e_max_mwh) else np.zeros(0)
        p["ev_floor"].value = (np.clip(np.minimum(x.ev_first_step_floor_mwh, first), 0, None)
                               * self.ev_alive)
        p["e0"].value = np.clip(x.bess_e0_mwh, 0, None)
        p["emin"].value = np.clip(x.bess_e_min_mwh, 0, None)
        p["emax"].value = np.clip(x.bess_e_max_mwh, 0, None)
        p["b_pmax"].value = np.clip(x.bess_p_max_mw, 0, None) * self.bess_alive
        p["etarget"].value = np.clip(x.bess_e_target_mwh, 0, None)
        p["cost"].value = x.import_cost_cny_per_mwh
        bp_pv, bq_pv, _ = self._maps["pv"]
        bp_b, bq_b, _ = self._maps["bess"]
        bp_ev, _, _ = self._maps["ev"]
        base_rhs = (
            bp_pv @ x.base_pv_p_mw
            + bq_pv @ x.base_pv_q_mvar
            + bp_b @ x.base_bess_p_mw
            + bq_b @ x.base_bess_q_mvar
            - bp_ev @ x.base_ev_p_mw
        )
        p["offset"].value = -np.asarray(base_rhs)
        p["imp0"].value = x.base_import_mw
        p["load0"].value = x.uncontrolled_net_load_mw
        if len(self._v_rows):
            p["vm0"].value = x.base_vm_pu[self._v_rows]
        br = self.limits.branches
        if not len(br):
            self._base = x
            return
        limit = (cfg.max_loading_frac - cfg.loading_margin_frac) * lin.rated_mva[br, None]
        limit = limit * np.clip(x.base_v_from_pu[br], 0.8, 1.2)  # loading is by current
        self._branch_limit_mva = limit
        s0 = np.hypot(x.base_flow_p_mw[br], x.base_flow_q_mvar[br])
        tiny = s0 < 1e-6
        u_p = np.where(tiny, 1.0, x.base_flow_p_mw[br] / np.where(tiny, 1.0, s0))
        u_q = np.where(tiny, 0.0, x.base_flow_q_mvar[br] / np.where(tiny, 1.0, s0))
        p["u_p"].value = u_p
        p["u_q"].value = u_q
        p["room_fwd"].value = limit - s0
        p["room_rev"].value = limit + s0
        self._base = x

    def solve(self) -> DispatchSolution:
        t_start = time.perf_counter()
        status, failed = "not_solved", []
        for solver, opts in self._attempts():
            try:
                with warnings.catch_warnings():
                    # "may be inaccurate": the status says it, and the record carries it
                    warnings.filterwarnings("ignore", "Solution may be inaccurate")
                    self.problem.solve(solver=solver, **opts)
                status = self.problem.status
            except cp.error.SolverError as exc:
                status = f"solver_error: {exc}"
            if status in ("optimal", "optimal_inaccurate"):
                break
            failed.append(f"{solver}: {status}")
        self.last_attempts = tuple(failed)  # what failed before the answer (or all, if none)
        self.last_solve_wall_s = time.perf_counter() - t_start
        stats = self.problem.solver_stats
        solve_s = (
            float(stats.solve_time) if stats and stats.solve_time is not None else float("nan")
        )
        self.last_solver_s = solve_s
        v = self.v
        ok = status in ("optimal", "optimal_inaccurate")

        def val(x: cp.Variable, shape: tuple[int, ...]) -> np.ndarray:
            if 0 in shape:
                return np.zeros(shape)
            return np.asarray(x.value, dtype=float).reshape(shape) if ok else np.full(shape, np.nan)

        n_pv, n_b, n_ev, t = len(self.pv), len(self.bess), len(self.ev), self.steps
        terms = {k: float(e.value) if ok else float("nan") for k, e in self.terms.items()}
        ev_short = val(v["ev_short"], (n_ev, t))
        sol = DispatchSolution(
            status=status,
            solve_s=solve_s,
            total_s=0.0,
            objective_cny=float(self.problem.value) * 1000.0 if ok else float("nan"),
            pv_p_mw=val(v["pv_p"], (n_pv, t)),
            pv_q_mvar=val(v["pv_q"], (n_pv, t)),
            bess_p_mw=val(v["b_dis"], (n_b, t)) - val(v["b_ch"], (n_b, t)),
            bess_q_mvar=val(v["b_q"], (n_b, t)),
            bess_e_mwh=val(v["b_e"], (n_b, t)),
            ev_p_mw=val(v["ev_p"], (n_ev, t)),
            import_mw=val(v["imp"], (t,)),
            vm_pu=(
                self._base.base_vm_pu
                + (self.lin.v_select @ (Z_SCALE * val(v["z"], (self.lin.n_state, t))))
            )
            if ok
            else np.full((len(self.lin.monitored_buses), t), np.nan),
            ev_shortfall_mwh=ev_short[:, -1] if t else np.zeros(n_ev),
            voltage_slack_pu=val(v["sig_v"], (t,)),
            loading_slack_mva=val(v["sig_s"], (t,)),
            terms_cny=terms,
            binding=self._binding() if ok else (),
        )
        object.__setattr__(sol, "total_s", time.perf_counter() - t_start)
        return sol

    def _binding(self) -> tuple[BindingLimit, ...]:
        """The voltage and thermal rows that bound the last solve, with their duals in CNY.

        The solver sees the objective in thousands of CNY and the rows in pu (voltages: the
        milli-pu state is scaled back inside the row) and MVA (flows), so a dual times 1000 is
        CNY per pu or per MVA of one step's limit."""
        found: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
        for kind, con, names in self._limit_rows:
            dual, expr = con.dual_value, con.expr.value
            if dual is None or expr is None:
                continue
            dual_cny = np.asarray(dual, dtype=float).reshape(len(names), -1) * 1000.0
            room = -np.asarray(expr, dtype=float).reshape(len(names), -1)  # >= 0 when held
            limit = self._row_limits(kind, con, len(names))
            for i, j in zip(*np.nonzero((dual_cny > BINDING_DUAL_CNY) & (room < BINDING_ROOM)),
                            strict=True):
                k = self._branch_kinds[i] if kind == "branch" else kind
                steps = found.setdefault((names[i], k), {})
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

    def _row_limits(self, kind: str, con: cp.Constraint, rows: int) -> np.ndarray:
        """The bound each row of a limit constraint keeps to, per step (pu or MVA)."""
        cfg = self.config
        if kind == "voltage_low":
            return np.full((rows, self.steps), cfg.v_min_pu + cfg.voltage_margin_pu)
        if kind == "voltage_high":
            return np.full((rows, self.steps), cfg.v_max_pu - cfg.voltage_margin_pu)
        return np.asarray(self._branch_limit_mva, dtype=float)

    def _attempts(self) -> list[tuple[str, dict[str, object]]]:
        """The configured solver with its settings, then, only for a solver that is installed
        and failed numerically, others that solve the same LP: an interior point method can
        stop short with a numerical error close to the optimum (seen: Clarabel with qdldl at a
        relative gap of 1e-4, on a day it solves at once when asked again)."""
        first = (self.config.solver, _SOLVER_OPTIONS.get(self.config.solver, {}))
        if self.config.solver not in cp.installed_solvers():
            return [first]  # a configuration error: said as such, not papered over
        others = [(name, opts) for name, opts in _RETRIES
                  if name in cp.installed_solvers() and (name, opts) != first]
        limit = self.config.solver_time_limit_s
        if limit is None:
            return [first, *others]
        # both solvers take the option by this name; a solve cut short is not retried (the
        # operator's time is spent), it is a plan that did not come
        return [(first[0], {**first[1], "time_limit": float(limit)})]
