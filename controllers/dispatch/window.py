"""The dispatch problem's inputs for one plan: the window's and each base point's.

:func:`window_inputs` reads a forecast window, the measured snapshot and the sessions into
:class:`~controllers.dispatch_problem.WindowInputs` (once per plan); :func:`base_point` reads a
schedule and its AC power flow into :class:`~controllers.dispatch_problem.BasePoint` (at every
re-linearisation). Arrays (devices, steps) in registry order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from controllers.bess_soc import floor_frac, read_fleet
from controllers.config import DispatchConfig
from controllers.dispatch.positions import MonitoredColumns
from controllers.dispatch.sessions import first_step_floor_mwh
from controllers.dispatch_problem import BasePoint, WindowInputs
from controllers.ev_charging import SessionState, site_envelope
from controllers.schedule import AcCheck, DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.powerflow import TimeSeriesResult
from network_models.registry import Bess, DeviceRegistry, EvChargingSite, PvSystem


def window_inputs(
    registry: DeviceRegistry,
    bundle: ForecastBundle,
    snapshot: GridSnapshot,
    states: Sequence[SessionState],
    *,
    config: DispatchConfig,
    terminal_soc_frac: Mapping[str, float],
) -> WindowInputs:
    """What the window holds: PV available, EV envelopes, BESS state and bounds, prices."""
    price = bundle.price_cny_per_kwh.to_numpy() * 1000.0 * config.weights.energy
    carbon = bundle.carbon_kg_per_kwh.to_numpy() * config.weights.carbon_cny_per_t
    loads = bundle.load_p_mw.reindex(
        columns=[d.id for d in registry.loads], fill_value=0.0).to_numpy()
    return WindowInputs(
        **pv_inputs(registry.pv, bundle),
        **ev_site_inputs(registry.ev_sites, bundle, snapshot, states, config),
        **bess_inputs(registry.bess, snapshot, config, terminal_soc_frac),
        import_cost_cny_per_mwh=price + carbon,
        uncontrolled_load_mw=loads.sum(axis=1),
    )


def pv_inputs(pv: Sequence[PvSystem], bundle: ForecastBundle) -> dict[str, np.ndarray]:
    """Each PV system's available power and the reactive power its inverter has beside it."""
    available = bundle.pv_p_mw.reindex(
        columns=[d.id for d in pv], fill_value=0.0).to_numpy().T
    s_mva = np.array([d.s_mva for d in pv])[:, None]
    # an inverter without reactive control has none to give (its q_set point is 0 to 0)
    q_capable = np.array([d.q_capable for d in pv], dtype=bool)[:, None]
    q_max = (np.sqrt(np.clip(s_mva**2 - available**2, 0.0, None)) * (available > 1e-6)
             * q_capable)
    return {"pv_available_mw": available, "pv_q_max_mvar": q_max}


def ev_site_inputs(
    sites: Sequence[EvChargingSite],
    bundle: ForecastBundle,
    snapshot: GridSnapshot,
    states: Sequence[SessionState],
    config: DispatchConfig,
) -> dict[str, np.ndarray]:
    """Each site's envelopes (power, least and most energy by each step) and first-step floor."""
    idx, t = bundle.index, len(bundle.index)
    env = [site_envelope(s, states, idx, bundle.step_h) for s in sites]
    floor = [first_step_floor_mwh(s, snapshot, idx, bundle.step_h, config) for s in sites]
    n_ev = len(sites)
    return {
        "ev_site_p_max_mw": np.vstack([e.cap_mw for e in env]) if n_ev else np.zeros((0, t)),
        "ev_energy_min_mwh": np.vstack([e.e_min_mwh for e in env]) if n_ev else np.zeros((0, t)),
        "ev_energy_max_mwh": np.vstack([e.e_max_mwh for e in env]) if n_ev else np.zeros((0, t)),
        "ev_first_step_floor_mwh": np.array(floor, dtype=float),
    }


def bess_inputs(
    bess: Sequence[Bess],
    snapshot: GridSnapshot,
    config: DispatchConfig,
    terminal_soc_frac: Mapping[str, float],
) -> dict[str, np.ndarray]:
    """Each battery's energy at the start, hard bounds, power cap and end-of-window target.

    A battery of unknown SoC is held at 0 MW where it is assumed to be (its target, inside the
    band, so no penalty). A battery measured outside its band gets the band widened to the
    measured SoC: never infeasible at the start, never further out; the way back in is the
    objective's (out-of-band penalty)."""
    readings = read_fleet(bess, snapshot.bess_soc_frac)
    start, e_min, e_max, p_max, target_e = [], [], [], [], []
    for b in bess:
        r = readings[b.id]
        floor = floor_frac(b, use_island_reserve=config.use_island_reserve)
        target = terminal_soc_frac.get(b.id, config.bess_terminal_soc_frac)
        target = b.soc_init_frac if target is None or not np.isfinite(target) else target
        target = min(max(target, floor), b.soc_max_frac)
        soc = r.soc_frac if r.dispatchable else target
        start.append(soc * b.e_mwh)
        e_min.append(min(floor, soc) * b.e_mwh)
        e_max.append(max(b.soc_max_frac, soc) * b.e_mwh)
        p_max.append(b.p_mw if r.dispatchable else 0.0)
        target_e.append((target if r.dispatchable else soc) * b.e_mwh)
    return {
        "bess_energy_start_mwh": np.array(start),
        "bess_energy_min_mwh": np.array(e_min),
        "bess_energy_max_mwh": np.array(e_max),
        "bess_p_max_mw": np.array(p_max),
        "bess_energy_target_mwh": np.array(target_e),
    }


def base_point(base: DispatchSchedule, ac: AcCheck, cols: MonitoredColumns) -> BasePoint:
    """The schedule ``base`` and its AC power flow as the point to linearise around (a bus or
    branch the flow left without a value: 1 pu, no flow)."""
    res: TimeSeriesResult = ac.result
    vm = res.vm_pu[:, cols.buses].T
    flow_p = np.vstack([res.line_p_from_mw[:, cols.lines].T, res.trafo_p_hv_mw[:, cols.trafos].T])
    flow_q = np.vstack(
        [res.line_q_from_mvar[:, cols.lines].T, res.trafo_q_hv_mvar[:, cols.trafos].T]
    )
    v_from = res.vm_pu[:, cols.from_buses].T
    return BasePoint(
        pv_p_mw=base.pv_p_mw.to_numpy().T,
        pv_q_mvar=base.pv_q_mvar.to_numpy().T,
        bess_p_mw=base.bess_p_mw.to_numpy().T,
        bess_q_mvar=base.bess_q_mvar.to_numpy().T,
        ev_site_p_mw=base.ev_site_p_mw.to_numpy().T,
        vm_pu=np.where(np.isfinite(vm), vm, 1.0),
        flow_p_mw=np.nan_to_num(flow_p),
        flow_q_mvar=np.nan_to_num(flow_q),
        v_from_pu=np.where(np.isfinite(v_from), v_from, 1.0),
        import_mw=np.nan_to_num(res.ext_grid_p_mw.sum(axis=1)),
    )
