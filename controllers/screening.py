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

from controllers.config import DispatchConfig
from controllers.network_linearisation import NetworkLinearisation
from network_models.ac_checks import OperatingPoint, apply_operating_point
from network_models.model import GridModel
from network_models.powerflow import solve_once
from network_models.registry import Bess, PvSystem

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


def _extreme(model: GridModel, net: pp.pandapowerNet, *, stress: str) -> pp.pandapowerNet:
    net = copy.deepcopy(net)
    pulling_down = stress == "consumption"
    apply_operating_point(model, net, CONSUMPTION_EXTREME if pulling_down else GENERATION_EXTREME)
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
) -> MonitoredLimits:
    """The limits that the extremes bring within ``buffer`` of being reached."""
    try:
        low = _extreme(model, net, stress="consumption")
        high = _extreme(model, net, stress="generation")
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
