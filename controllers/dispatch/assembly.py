"""Schedules from decisions, and the power-flow injections of a schedule.

:func:`schedule_of_solution` turns an optimiser's solution into a ``DispatchSchedule`` (each
EV site's power split among its sessions); :func:`baseline_schedule` is uncontrolled operation
and :func:`safe_schedule` the rule-based fallback; :func:`assemble` puts device arrays into the
schedule's frames; :func:`schedule_injections` gives the AC power flow its per-step injections.
Signs: PV and BESS inject (discharge positive), EV sites consume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from controllers.bess_soc import read_fleet
from controllers.dispatch_problem import DispatchSolution
from controllers.ev_charging import (
    SessionState,
    SiteAllocation,
    allocate_site,
    uncontrolled_site_kw,
)
from controllers.schedule import DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.powerflow import TimeSeriesInjections, device_injections
from network_models.registry import DeviceRegistry


def assemble(
    registry: DeviceRegistry,
    bundle: ForecastBundle,
    pv_p: np.ndarray,
    pv_q: np.ndarray,
    bess_p: np.ndarray,
    bess_q: np.ndarray,
    soc: np.ndarray,
    allocs: Mapping[str, SiteAllocation],
) -> DispatchSchedule:
    """A schedule of device arrays (devices, steps) and each EV site's split among sessions."""
    idx = bundle.index
    pv_ids = [d.id for d in registry.pv]
    bess_ids = [b.id for b in registry.bess]
    site_cols, session_cols = {}, {}
    for site in registry.ev_sites:
        a = allocs[site.id]
        site_cols[site.id] = (
            a.p_kw.sum(axis=0) / 1000.0 if len(a.session_ids) else np.zeros(len(idx))
        )
        for sid, row in zip(a.session_ids, a.p_kw, strict=True):
            session_cols[sid] = row

    def frame(values: np.ndarray, cols: list[str]) -> pd.DataFrame:
        return pd.DataFrame(
            np.asarray(values).T.reshape(len(idx), len(cols)), index=idx, columns=cols
        )

    return DispatchSchedule(
        index=idx,
        step_h=bundle.step_h,
        pv_p_mw=frame(pv_p, pv_ids),
        pv_q_mvar=frame(pv_q, pv_ids),
        bess_p_mw=frame(bess_p, bess_ids),
        bess_q_mvar=frame(bess_q, bess_ids),
        bess_soc_frac=frame(soc, bess_ids),
        ev_site_p_mw=pd.DataFrame(site_cols, index=idx,
                                  columns=[s.id for s in registry.ev_sites]),
        ev_session_p_kw=pd.DataFrame(session_cols, index=idx, columns=list(session_cols)),
    )


def schedule_of_solution(
    registry: DeviceRegistry,
    bundle: ForecastBundle,
    snapshot: GridSnapshot,
    states: Sequence[SessionState],
    sol: DispatchSolution,
    *,
    finish_margin_min: float,
    top_up: bool = True,
) -> DispatchSchedule:
    """The optimiser's decisions as a schedule: each site's planned power split among its
    sessions (``top_up``: the split may draw beyond it where a session needs it), a battery of
    unknown charge at exactly 0 MW with its SoC unknown."""
    idx, bess = bundle.index, registry.bess
    margin_h = max(finish_margin_min, 0.0) / 60.0
    allocs = {
        s.id: allocate_site(s, states, sol.ev_p_mw[k], idx, bundle.step_h,
                            finish_margin_h=margin_h, top_up=top_up)
        for k, s in enumerate(registry.ev_sites)
    }
    e_mwh = np.array([b.e_mwh for b in bess])[:, None]
    soc = sol.bess_e_mwh / e_mwh if len(bess) else sol.bess_e_mwh
    readings = read_fleet(bess, snapshot.bess_soc_frac)
    held = np.array([not readings[b.id].dispatchable for b in bess], dtype=bool)
    # a battery of unknown charge: exactly 0 MW (not the solver's 1e-9), its SoC unknown
    bess_p = np.where(held[:, None], 0.0, sol.bess_p_mw)
    soc = np.where(held[:, None], np.nan, soc)
    return assemble(registry, bundle, np.clip(sol.pv_p_mw, 0, None), sol.pv_q_mvar, bess_p,
                    sol.bess_q_mvar, soc, allocs)


def baseline_schedule(
    registry: DeviceRegistry,
    bundle: ForecastBundle,
    snapshot: GridSnapshot,
    states: Sequence[SessionState],
) -> DispatchSchedule:
    """Uncontrolled operation over the window ``bundle``: PV uncurtailed, batteries idle at
    their measured SoC (NaN: unknown), EVs at full power on arrival."""
    idx = bundle.index
    allocs = {s.id: uncontrolled_site_kw(s, states, idx, bundle.step_h)
              for s in registry.ev_sites}
    pv = bundle.pv_p_mw.reindex(columns=[d.id for d in registry.pv], fill_value=0.0)
    readings = read_fleet(registry.bess, snapshot.bess_soc_frac)
    soc0 = np.array([readings[b.id].soc_frac for b in registry.bess])  # NaN: unknown
    n_b = len(registry.bess)
    return assemble(
        registry,
        bundle,
        pv.to_numpy().T,
        np.zeros_like(pv.to_numpy().T),
        np.zeros((n_b, len(idx))),
        np.zeros((n_b, len(idx))),
        np.repeat(soc0[:, None], len(idx), axis=1),
        allocs,
    )


def safe_schedule(
    registry: DeviceRegistry,
    bundle: ForecastBundle,
    snapshot: GridSnapshot,
    states: Sequence[SessionState],
) -> DispatchSchedule:
    """The rule-based schedule over the window ``bundle``: PV uncurtailed at unity power
    factor, batteries idle, every vehicle charged just in time within half its site's limit."""
    base = baseline_schedule(registry, bundle, snapshot, states)
    allocs = {
        s.id: allocate_site(
            s, states, np.full(len(bundle.index), s.p_site_max_kw / 2000.0), bundle.index,
            bundle.step_h,
        )
        for s in registry.ev_sites
    }
    return assemble(
        registry,
        bundle,
        base.pv_p_mw.to_numpy().T,
        np.zeros_like(base.pv_q_mvar.T),
        np.zeros_like(base.bess_p_mw.to_numpy().T),
        np.zeros_like(base.bess_q_mvar.to_numpy().T),
        base.bess_soc_frac.to_numpy().T,
        allocs,
    )


def schedule_injections(
    net, registry: DeviceRegistry, bundle: ForecastBundle, schedule: DispatchSchedule,
) -> TimeSeriesInjections:
    """Per-step injections of ``net``'s elements: the forecast's loads, the schedule's devices,
    every other element as the net holds it (batteries not in the registry idle), through the
    one translation of device values into net rows the simulator uses too
    (:func:`network_models.powerflow.device_injections`)."""
    load_ids = [d.id for d in registry.loads]
    return device_injections(
        net, registry, steps=len(bundle.index),
        load_p_mw=bundle.load_p_mw.reindex(columns=load_ids, fill_value=0.0),
        load_q_mvar=bundle.load_q_mvar.reindex(columns=load_ids, fill_value=0.0),
        ev_site_p_mw=schedule.ev_site_p_mw,
        pv_p_mw=schedule.pv_p_mw, pv_q_mvar=schedule.pv_q_mvar,
        bess_p_mw=schedule.bess_p_mw, bess_q_mvar=schedule.bess_q_mvar,
    )
