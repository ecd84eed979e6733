"""Which voltage and thermal limits the optimiser must carry: a screen by physical extremes.

Most buses of a well-planned grid can never leave the voltage band and most cables can never
overload, whatever the controllable devices do. The screen runs two AC power flows at the
extremes the devices and loads can reach, one that pulls voltages down and loads branches
(peak load, every EV site at its limit, batteries charging, inverters absorbing reactive power,
no PV) and one that pushes voltages up (light load, PV at nameplate, batteries discharging,
inverters injecting), and keeps only the limits that come within ``buffer`` of being reached.
The AC check after each solve covers every limit; an element it finds violated that was
screened out is added back and the problem is rebuilt (lazy re-addition).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from controllers.config import DispatchConfig
from controllers.network_linearisation import NetworkLinearisation
from forecasts.bundle import ForecastBundle
from network_models.ac_checks import OperatingPoint, apply_operating_point
from network_models.model import GridModel
from network_models.powerflow import solve_once
from network_models.registry import Bess, Load, PvSystem

LIGHT_LOAD_FRAC = 0.2  # assumption: the lightest load of a day, as a fraction of peak


@dataclass(frozen=True, kw_only=True)
class MonitoredLimits:
    """Positions into the linearisation's monitored buses and branches."""

    v_low: np.ndarray  # rows of lin.monitored_buses with a lower voltage bound
    v_high: np.ndarray  # rows with an upper bound
    branches: np.ndarray  # rows of lin.flow_p_gradient with a thermal limit

    def with_added(
        self, *, v_low: list[int] = (), v_high: list[int] = (), branches: list[int] = ()
    ) -> MonitoredLimits:
        return MonitoredLimits(
            v_low=np.union1d(self.v_low, np.asarray(v_low, dtype=int)),
            v_high=np.union1d(self.v_high, np.asarray(v_high, dtype=int)),
            branches=np.union1d(self.branches, np.asarray(branches, dtype=int)),
        )

    @classmethod
    def everything(cls, lin: NetworkLinearisation) -> MonitoredLimits:
        n_bus, n_br = len(lin.monitored_buses), lin.flow_p_gradient.shape[0]
        return cls(v_low=np.arange(n_bus), v_high=np.arange(n_bus), branches=np.arange(n_br))


CONSUMPTION_EXTREME = OperatingPoint(
    name="consumption_extreme", load_frac=1.0, ev_frac=1.0, pv_frac=0.0,
    note="peak load, every EV site at its limit, no PV",
)
GENERATION_EXTREME = OperatingPoint(
    name="generation_extreme", load_frac=LIGHT_LOAD_FRAC, ev_frac=0.0, pv_frac=1.0,
    note="lightest load, no EV charging, PV at nameplate",
)


@dataclass(frozen=True, kw_only=True, eq=False)
class WindowExtremes:
    """What the loads and the sun reach over one window (MW, Mvar; by device id): the screen
    of that window takes each load at its own highest (or lowest) forecast value and PV at
    its highest, instead of every load at its peak of the year and PV at nameplate.

    Loads are not decisions: in the window, no load goes beyond its forecast."""

    load_p_max_mw: pd.Series
    load_q_max_mvar: pd.Series
    load_p_min_mw: pd.Series
    load_q_min_mvar: pd.Series
    pv_max_mw: pd.Series

    @classmethod
    def of(cls, bundle: ForecastBundle) -> WindowExtremes:
        p, q = bundle.load_p_mw, bundle.load_q_mvar
        return cls(load_p_max_mw=p.max(), load_q_max_mvar=q.max(), load_p_min_mw=p.min(),
                   load_q_min_mvar=q.min(), pv_max_mw=bundle.pv_p_mw.max())


def _window_loads(
    model: GridModel, net: pp.pandapowerNet, window: WindowExtremes, *, pulling_down: bool
) -> None:
    """Loads at their window's highest (pulling voltages down) or lowest, PV at its highest
    when pushing them up; a device the forecast leaves out keeps the operating point's value."""
    reg = model.registry
    p = window.load_p_max_mw if pulling_down else window.load_p_min_mw
    q = window.load_q_max_mvar if pulling_down else window.load_q_min_mvar
    loads = [d for d in reg.of_type(Load) if d.id in p.index]
    rows = [d.element.index for d in loads]
    ids = [d.id for d in loads]
    net.load.loc[rows, "p_mw"] = p.reindex(ids).to_numpy()
    net.load.loc[rows, "q_mvar"] = q.reindex(ids, fill_value=0.0).to_numpy()
    if not pulling_down:
        pvs = [d for d in reg.of_type(PvSystem) if d.id in window.pv_max_mw.index]
        net.sgen.loc[[d.element.index for d in pvs], "p_mw"] = (
            window.pv_max_mw.reindex([d.id for d in pvs]).to_numpy())


def _extreme(
    model: GridModel, net: pp.pandapowerNet, *, stress: str, window: WindowExtremes | None = None
) -> pp.pandapowerNet:
    net = copy.deepcopy(net)
    pulling_down = stress == "consumption"
    apply_operating_point(model, net, CONSUMPTION_EXTREME if pulling_down else GENERATION_EXTREME)
    if window is not None:
        _window_loads(model, net, window, pulling_down=pulling_down)
    # on top of the loads: inverters at the end of their reactive range, batteries at full power
    reg = model.registry
    for pv in reg.of_type(PvSystem):
        p = net.sgen.at[pv.element.index, "p_mw"]
        q_room = np.sqrt(max(pv.s_mva**2 - p**2, 0.0))
        net.sgen.at[pv.element.index, "q_mvar"] = -q_room if pulling_down else q_room
    for b in reg.of_type(Bess):
        q_room = np.sqrt(max(b.s_mva**2 - b.p_mw**2, 0.0))
        # pandapower storage: p_mw > 0 charges
        net.storage.at[b.element.index, "p_mw"] = b.p_mw if pulling_down else -b.p_mw
        net.storage.at[b.element.index, "q_mvar"] = q_room if pulling_down else -q_room
    solve_once(net, max_iteration=30)
    return net


def screen_limits(
    model: GridModel,
    net: pp.pandapowerNet,
    lin: NetworkLinearisation,
    config: DispatchConfig,
    *,
    buffer_pu: float = 0.01,
    buffer_loading_frac: float = 0.10,
    window: WindowExtremes | None = None,
) -> MonitoredLimits:
    """The limits that the extremes bring within ``buffer`` of being reached; with ``window``,
    the extremes of that window's loads and sun (see :class:`WindowExtremes`)."""
    try:
        low = _extreme(model, net, stress="consumption", window=window)
        high = _extreme(model, net, stress="generation", window=window)
    except pp.powerflow.LoadflowNotConverged:
        return MonitoredLimits.everything(lin)
    buses = lin.monitored_buses
    v_low_ext = np.fmin(low.res_bus.vm_pu.to_numpy(), high.res_bus.vm_pu.to_numpy())
    v_high_ext = np.fmax(low.res_bus.vm_pu.to_numpy(), high.res_bus.vm_pu.to_numpy())
    pos = net.bus.index.get_indexer(buses)
    lo_lim = config.v_min_pu + config.voltage_margin_pu + buffer_pu
    hi_lim = config.v_max_pu - config.voltage_margin_pu - buffer_pu
    v_low = np.flatnonzero(~(v_low_ext[pos] > lo_lim))  # NaN (dead) stays monitored
    v_high = np.flatnonzero(~(v_high_ext[pos] < hi_lim))
    load_lim = 100.0 * (config.max_loading_frac - config.loading_margin_frac - buffer_loading_frac)
    line_ext = np.fmax(
        low.res_line.loading_percent.to_numpy(), high.res_line.loading_percent.to_numpy()
    )
    trafo_ext = np.fmax(
        low.res_trafo.loading_percent.to_numpy(), high.res_trafo.loading_percent.to_numpy()
    )
    lines = net.line.index.get_indexer(lin.monitored_lines)
    trafos = net.trafo.index.get_indexer(lin.monitored_trafos)
    ext = np.r_[line_ext[lines], trafo_ext[trafos]]
    branches = np.flatnonzero(~(ext < load_lim))
    return MonitoredLimits(v_low=v_low, v_high=v_high, branches=branches)


@dataclass(frozen=True, kw_only=True, eq=False)
class DeviceReach:
    """How far each controllable device can move its injection in a window, at its bus.

    ``p_pu`` and ``q_pu`` (n_state x devices, sparse): a device's whole range of active and
    reactive power (MW, Mvar) as a change of the linearised balance equations' right-hand side
    (see ``NetworkLinearisation.injection_map``): PV from 0 to its most available power and
    reactive power across its inverter's range, a battery from full charge to full discharge
    and across its reactive range, an EV site from 0 to its connection's limit."""

    p_pu: sp.csr_matrix
    q_pu: sp.csr_matrix

    @classmethod
    def of(cls, model: GridModel, lin: NetworkLinearisation,
           window: WindowExtremes) -> DeviceReach:
        reg, net = model.registry, model.net
        pv, bess, ev = reg.pv, reg.bess, reg.ev_sites
        buses = ([int(net.sgen.bus.at[d.element.index]) for d in pv]
                 + [int(net.storage.bus.at[d.element.index]) for d in bess]
                 + [int(net.load.bus.at[d.element.index]) for d in ev])
        b_p, b_q, _ = lin.injection_map(buses)
        pv_max = window.pv_max_mw.reindex([d.id for d in pv], fill_value=0.0).to_numpy()
        p_range = np.r_[np.clip(pv_max, 0.0, None), [2.0 * b.p_mw for b in bess],
                        [s.p_site_max_kw / 1000.0 for s in ev]]
        q_range = np.r_[[2.0 * d.s_mva * bool(d.q_capable) for d in pv],
                        [2.0 * np.sqrt(max(b.s_mva**2 - b.p_mw**2, 0.0)) for b in bess],
                        np.zeros(len(ev))]
        return cls(p_pu=sp.csr_matrix(b_p @ sp.diags(p_range)),
                   q_pu=sp.csr_matrix(b_q @ sp.diags(q_range)))


def screen_by_reach(
    lin: NetworkLinearisation,
    reach: DeviceReach | None,
    *,
    vm_pu: np.ndarray,
    flow_p_mw: np.ndarray,
    flow_q_mvar: np.ndarray,
    v_from_pu: np.ndarray,
    config: DispatchConfig,
    buffer_pu: float = 0.01,
    buffer_loading_frac: float = 0.10,
    columns_per_solve: int = 256,
) -> MonitoredLimits:
    """The limits a window's plan can come within ``buffer`` of: those whose AC value in the
    window (``vm_pu`` at the monitored buses, the flows at the monitored branches' from ends,
    (elements, steps), e.g. of the uncontrolled schedule) plus every device's reach can.

    A device's reach on a bus voltage or a branch flow is its sensitivity (the linearised power
    flow: J⁻¹ of its injection) times its whole range (:class:`DeviceReach`); the reach of all
    devices is the sum of their magnitudes, a bound on what any schedule moves from any other
    to first order. Loads stay at their forecast: unlike :func:`screen_limits` the screen does
    not assume every load at its peak and every inverter at the end of its range at once
    (which on a 10,458-bus SimBench grid kept 10,432 of its voltages). What the bound misses
    (second-order effects beyond the buffer) the AC check finds and the planner adds back.

    ``reach`` None: no device reach, only the buffer (a screen by the window's own flow: the
    AC check finds what the plan moves beyond it, and the planner adds that back). The sum of
    every device's full reach is a worst case as blunt as the extremes on a large grid: on
    the 10,458-bus grid, 50 EV sites and 805 inverters summed to more than the band's width at
    almost every bus (9,858 low, 10,456 high voltages kept; 51 s of sensitivities)."""
    n_bus, n_br = len(lin.monitored_buses), lin.flow_p_gradient.shape[0]
    v_reach, s_reach = np.zeros(n_bus), np.zeros(n_br)
    columns = (sp.hstack([reach.p_pu, reach.q_pu]).tocsc() if reach is not None
               else sp.csc_matrix((lin.n_state, 0)))
    if columns.shape[1] and lin.n_state:
        lu = spla.splu(sp.csc_matrix(lin.jacobian))
        for start in range(0, columns.shape[1], columns_per_solve):
            chunk = columns[:, start:start + columns_per_solve].toarray()
            dz = lu.solve(chunk)  # (n_state, chunk): state change over each device's range
            v_reach += np.abs(lin.v_select @ dz).sum(axis=1)
            s_reach += np.hypot(lin.flow_p_gradient @ dz, lin.flow_q_gradient @ dz).sum(axis=1)
    lo = config.v_min_pu + config.voltage_margin_pu + buffer_pu
    hi = config.v_max_pu - config.voltage_margin_pu - buffer_pu
    v_low = np.flatnonzero(~(np.nanmin(vm_pu, axis=1) - v_reach > lo))  # NaN stays monitored
    v_high = np.flatnonzero(~(np.nanmax(vm_pu, axis=1) + v_reach < hi))
    frac = config.max_loading_frac - config.loading_margin_frac - buffer_loading_frac
    limit = frac * lin.rated_mva * np.clip(np.nanmin(v_from_pu, axis=1), 0.8, 1.2)
    s_max = np.nanmax(np.hypot(flow_p_mw, flow_q_mvar), axis=1)
    branches = np.flatnonzero(~(s_max + s_reach < limit))
    return MonitoredLimits(v_low=v_low, v_high=v_high, branches=branches)


# a window's screen keeps the limits its uncontrolled flow comes this close to
WINDOW_BUFFER_PU = 0.02
WINDOW_BUFFER_LOADING_FRAC = 0.25


def window_limits(
    lin: NetworkLinearisation, year: MonitoredLimits, base: object, config: DispatchConfig
) -> MonitoredLimits:
    """The limits of ``year`` (the year's extremes, :func:`screen_limits`) that the window's
    own flow ``base`` (a ``BasePoint``: voltages and flows of the monitored elements, e.g. of
    the uncontrolled schedule) also comes within the window buffers of; the AC check adds
    back what a plan moves beyond (see :func:`screen_by_reach` with no reach)."""
    window = screen_by_reach(
        lin, None, vm_pu=base.vm_pu, flow_p_mw=base.flow_p_mw,  # type: ignore[attr-defined]
        flow_q_mvar=base.flow_q_mvar, v_from_pu=base.v_from_pu,  # type: ignore[attr-defined]
        config=config, buffer_pu=WINDOW_BUFFER_PU,
        buffer_loading_frac=WINDOW_BUFFER_LOADING_FRAC)
    return MonitoredLimits(v_low=np.intersect1d(year.v_low, window.v_low),
                           v_high=np.intersect1d(year.v_high, window.v_high),
                           branches=np.intersect1d(year.branches, window.branches))
