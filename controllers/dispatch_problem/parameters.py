"""The dispatch problem's cvxpy Parameters and Variables, named in the operator's words.

The Parameters are everything that changes between solves (the problem is DPP: a new value
needs no rebuild); :func:`assign_window` and :func:`assign_base_point` copy a
:class:`~controllers.dispatch_problem.inputs.DispatchInputs` into them. The Variables are the
decisions and the penalised slacks. Shapes are (devices, steps) unless noted; units in names.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from controllers.config import DispatchConfig
from controllers.dispatch_problem.inputs import BasePoint, WindowInputs
from controllers.network_linearisation import NetworkLinearisation
from controllers.screening import MonitoredLimits

# the solver's state is in milli-pu: Jacobian entries of short 10 kV cables run to 1e3-1e4
# pu/pu while device columns are 1, and the scaled problem takes half the iterations
Z_SCALE = 1e-3


@dataclass(frozen=True)
class DeviceMap:
    """Where one kind of device (PV, BESS or EV sites) enters the linearised network."""

    p_pu_per_mw: sp.csr_matrix  # (n_state, devices): balance change per MW injected
    q_pu_per_mvar: sp.csr_matrix  # (n_state, devices): per Mvar injected
    at_slack: np.ndarray  # (devices,) on a slack bus: changes the import one to one
    energised: np.ndarray  # (devices,) on an energised bus; the others are held at 0

    @classmethod
    def of(cls, lin: NetworkLinearisation, buses: list[int]) -> DeviceMap:
        p, q, slack = lin.injection_map(buses)
        return cls(p_pu_per_mw=p, q_pu_per_mvar=q, at_slack=slack, energised=lin.energised(buses))


@dataclass(frozen=True)
class DeviceMaps:
    pv: DeviceMap
    bess: DeviceMap
    ev: DeviceMap


@dataclass(frozen=True, kw_only=True)
class Shape:
    """The sizes the problem is built for."""

    steps: int
    n_pv: int
    n_bess: int
    n_ev: int
    n_state: int
    n_voltage_rows: int  # monitored buses with a voltage bound
    n_branches: int  # monitored branches with a thermal limit


@dataclass(frozen=True, kw_only=True, eq=False)
class DispatchParameters:
    """What changes between solves; the network ones exist only where rows are monitored."""

    pv_available_mw: cp.Parameter
    pv_q_max_mvar: cp.Parameter
    ev_site_p_max_mw: cp.Parameter
    ev_energy_min_mwh: cp.Parameter
    ev_energy_max_mwh: cp.Parameter
    ev_first_step_floor_mwh: cp.Parameter  # (n_ev,)
    bess_energy_start_mwh: cp.Parameter  # (n_bess,)
    bess_energy_min_mwh: cp.Parameter  # (n_bess,)
    bess_energy_max_mwh: cp.Parameter  # (n_bess,)
    bess_p_max_mw: cp.Parameter  # (n_bess,)
    bess_energy_target_mwh: cp.Parameter  # (n_bess,)
    import_cost_cny_per_mwh: cp.Parameter  # (steps,)
    balance_offset_pu: cp.Parameter  # (n_state, steps): minus the base point's injections
    base_import_mw: cp.Parameter  # (steps,)
    uncontrolled_load_mw: cp.Parameter  # (steps,)
    base_vm_pu: cp.Parameter | None  # (voltage rows, steps)
    flow_direction_p: cp.Parameter | None  # (branches, steps): base flow's P share of |S|
    flow_direction_q: cp.Parameter | None
    flow_room_forward_mva: cp.Parameter | None  # limit less the base flow, along it
    flow_room_reverse_mva: cp.Parameter | None  # limit plus the base flow, against it


def make_parameters(s: Shape) -> DispatchParameters:
    """The problem's Parameters for shape ``s`` (no values yet)."""
    t = s.steps

    def par(shape, name: str, **kw) -> cp.Parameter:
        return cp.Parameter(shape, name=name, **kw)

    net = s.n_branches > 0
    return DispatchParameters(
        pv_available_mw=par((s.n_pv, t), "pv_available_mw", nonneg=True),
        pv_q_max_mvar=par((s.n_pv, t), "pv_q_max_mvar", nonneg=True),
        ev_site_p_max_mw=par((s.n_ev, t), "ev_site_p_max_mw", nonneg=True),
        ev_energy_min_mwh=par((s.n_ev, t), "ev_energy_min_mwh", nonneg=True),
        ev_energy_max_mwh=par((s.n_ev, t), "ev_energy_max_mwh", nonneg=True),
        ev_first_step_floor_mwh=par(s.n_ev, "ev_first_step_floor_mwh", nonneg=True),
        bess_energy_start_mwh=par(s.n_bess, "bess_energy_start_mwh", nonneg=True),
        bess_energy_min_mwh=par(s.n_bess, "bess_energy_min_mwh", nonneg=True),
        bess_energy_max_mwh=par(s.n_bess, "bess_energy_max_mwh", nonneg=True),
        bess_p_max_mw=par(s.n_bess, "bess_p_max_mw", nonneg=True),
        bess_energy_target_mwh=par(s.n_bess, "bess_energy_target_mwh", nonneg=True),
        import_cost_cny_per_mwh=par(t, "import_cost_cny_per_mwh"),
        balance_offset_pu=par((s.n_state, t), "balance_offset_pu"),
        base_import_mw=par(t, "base_import_mw"),
        uncontrolled_load_mw=par(t, "uncontrolled_load_mw"),
        base_vm_pu=par((s.n_voltage_rows, t), "base_vm_pu") if s.n_voltage_rows else None,
        flow_direction_p=par((s.n_branches, t), "flow_direction_p") if net else None,
        flow_direction_q=par((s.n_branches, t), "flow_direction_q") if net else None,
        flow_room_forward_mva=par((s.n_branches, t), "flow_room_forward_mva") if net else None,
        flow_room_reverse_mva=par((s.n_branches, t), "flow_room_reverse_mva") if net else None,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class DispatchVariables:
    """The decisions, the linearised network state and the penalised slacks."""

    network_state_mpu: cp.Variable  # (n_state, steps) Δθ, Δ|V| in milli-pu (see Z_SCALE)
    pv_p_mw: cp.Variable
    pv_q_mvar: cp.Variable
    bess_charge_mw: cp.Variable
    bess_discharge_mw: cp.Variable
    bess_q_mvar: cp.Variable
    bess_energy_mwh: cp.Variable  # at the end of each step
    ev_site_p_mw: cp.Variable
    ev_energy_mwh: cp.Variable  # each site's energy since the window's start, end of each step
    ev_shortfall_mwh: cp.Variable  # below the site's lower envelope
    ev_deferred_mwh: cp.Variable  # (n_ev,) below the first-step floor
    bess_terminal_shortfall_mwh: cp.Variable  # (n_bess,) below the end-of-window target
    bess_below_band_mwh: cp.Variable
    bess_above_band_mwh: cp.Variable
    voltage_slack_pu: cp.Variable  # (steps,)
    loading_slack_mva: cp.Variable  # (steps,)
    import_mw: cp.Variable  # (steps,)
    peak_import_mw: cp.Variable  # scalar

    @property
    def network_state_pu(self) -> cp.Expression:
        """The linearised state in pu, as the network rows use it."""
        return self.network_state_mpu * Z_SCALE

    @property
    def bess_net_mw(self) -> cp.Expression:
        """Each battery's injection: discharge less charge."""
        return self.bess_discharge_mw - self.bess_charge_mw


def make_variables(s: Shape) -> DispatchVariables:
    """The problem's Variables for shape ``s``."""
    t, n_pv, n_b, n_ev = s.steps, s.n_pv, s.n_bess, s.n_ev

    def var(shape, name: str, **kw) -> cp.Variable:
        return cp.Variable(shape, name=name, **kw)

    return DispatchVariables(
        network_state_mpu=var((s.n_state, t), "network_state_mpu"),
        pv_p_mw=var((n_pv, t), "pv_p_mw", nonneg=True),
        pv_q_mvar=var((n_pv, t), "pv_q_mvar"),
        bess_charge_mw=var((n_b, t), "bess_charge_mw", nonneg=True),
        bess_discharge_mw=var((n_b, t), "bess_discharge_mw", nonneg=True),
        bess_q_mvar=var((n_b, t), "bess_q_mvar"),
        bess_energy_mwh=var((n_b, t), "bess_energy_mwh", nonneg=True),
        ev_site_p_mw=var((n_ev, t), "ev_site_p_mw", nonneg=True),
        ev_energy_mwh=var((n_ev, t), "ev_energy_mwh", nonneg=True),
        ev_shortfall_mwh=var((n_ev, t), "ev_shortfall_mwh", nonneg=True),
        ev_deferred_mwh=var(n_ev, "ev_deferred_mwh", nonneg=True),
        bess_terminal_shortfall_mwh=var(n_b, "bess_terminal_shortfall_mwh", nonneg=True),
        bess_below_band_mwh=var((n_b, t), "bess_below_band_mwh", nonneg=True),
        bess_above_band_mwh=var((n_b, t), "bess_above_band_mwh", nonneg=True),
        voltage_slack_pu=var(t, "voltage_slack_pu", nonneg=True),
        loading_slack_mva=var(t, "loading_slack_mva", nonneg=True),
        import_mw=var(t, "import_mw"),
        peak_import_mw=var((), "peak_import_mw"),
    )


def assign_window(
    p: DispatchParameters, x: WindowInputs, maps: DeviceMaps, step_h: float
) -> None:
    """Copy the window's inputs into ``p``: negatives clipped to 0, devices on de-energised
    buses held at 0."""
    pv_on, ev_on = maps.pv.energised[:, None], maps.ev.energised[:, None]
    p.pv_available_mw.value = np.clip(x.pv_available_mw, 0, None) * pv_on
    p.pv_q_max_mvar.value = np.clip(x.pv_q_max_mvar, 0, None) * pv_on
    p.ev_site_p_max_mw.value = np.clip(x.ev_site_p_max_mw, 0, None) * ev_on
    p.ev_energy_min_mwh.value = np.clip(x.ev_energy_min_mwh, 0, None) * ev_on
    p.ev_energy_max_mwh.value = np.clip(x.ev_energy_max_mwh, 0, None) * ev_on
    # never above what the envelopes allow in the first step (it stays a floor, not a push)
    first = np.minimum(x.ev_energy_max_mwh[:, 0], x.ev_site_p_max_mw[:, 0] * step_h) if len(
        x.ev_energy_max_mwh) else np.zeros(0)
    p.ev_first_step_floor_mwh.value = (
        np.clip(np.minimum(x.ev_first_step_floor_mwh, first), 0, None) * maps.ev.energised)
    p.bess_energy_start_mwh.value = np.clip(x.bess_energy_start_mwh, 0, None)
    p.bess_energy_min_mwh.value = np.clip(x.bess_energy_min_mwh, 0, None)
    p.bess_energy_max_mwh.value = np.clip(x.bess_energy_max_mwh, 0, None)
    p.bess_p_max_mw.value = np.clip(x.bess_p_max_mw, 0, None) * maps.bess.energised
    p.bess_energy_target_mwh.value = np.clip(x.bess_energy_target_mwh, 0, None)
    p.import_cost_cny_per_mwh.value = x.import_cost_cny_per_mwh
    p.uncontrolled_load_mw.value = x.uncontrolled_load_mw


def assign_base_point(
    p: DispatchParameters,
    x: BasePoint,
    maps: DeviceMaps,
    *,
    lin: NetworkLinearisation,
    limits: MonitoredLimits,
    voltage_rows: np.ndarray,
    config: DispatchConfig,
) -> np.ndarray:
    """Copy the base point into ``p``: the balance offsets, base import and voltages, and each
    monitored branch's tangent of its thermal limit. Returns that limit, MVA (branches, steps).

    The thermal limit is the tangent of |S| <= limit at the base flow's direction, both ways:
    exact at the base point, never cuts off a feasible flow (the AC check passes or the problem
    is linearised again around the AC solution)."""
    base_rhs = (
        maps.pv.p_pu_per_mw @ x.pv_p_mw
        + maps.pv.q_pu_per_mvar @ x.pv_q_mvar
        + maps.bess.p_pu_per_mw @ x.bess_p_mw
        + maps.bess.q_pu_per_mvar @ x.bess_q_mvar
        - maps.ev.p_pu_per_mw @ x.ev_site_p_mw
    )
    p.balance_offset_pu.value = -np.asarray(base_rhs)
    p.base_import_mw.value = x.import_mw
    if len(voltage_rows):
        p.base_vm_pu.value = x.vm_pu[voltage_rows]
    br = limits.branches
    if not len(br):
        return np.zeros((0, x.import_mw.shape[0]))
    limit = (config.max_loading_frac - config.loading_margin_frac) * lin.rated_mva[br, None]
    limit = limit * np.clip(x.v_from_pu[br], 0.8, 1.2)  # loading is by current
    s0 = np.hypot(x.flow_p_mw[br], x.flow_q_mvar[br])
    tiny = s0 < 1e-6
    p.flow_direction_p.value = np.where(tiny, 1.0, x.flow_p_mw[br] / np.where(tiny, 1.0, s0))
    p.flow_direction_q.value = np.where(tiny, 0.0, x.flow_q_mvar[br] / np.where(tiny, 1.0, s0))
    p.flow_room_forward_mva.value = limit - s0
    p.flow_room_reverse_mva.value = limit + s0
    return limit
