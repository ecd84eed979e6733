"""The dispatch problem's constraints, one small builder per concern (as PyPSA's ``define_*``).

Each builder takes the typed Parameters and Variables (``parameters``) and what it needs of the
network or the devices, and returns its constraints in a list; the network builder also returns
the rows of its voltage and thermal limits, read back after a solve for their shadow prices.
Limits of the network are soft (penalised slacks, reported); inverter ratings, BESS energy
bounds and EV envelopes' upper sides are hard; the EV lower envelope and first-step floor and
the BESS band and end-of-window target are soft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from controllers.bess_soc import floor_frac
from controllers.config import DispatchConfig
from controllers.dispatch_problem.network_map import SensitivityMap, StateMap
from controllers.dispatch_problem.parameters import (
    DeviceMaps,
    DispatchParameters,
    DispatchVariables,
)
from controllers.network_linearisation import NetworkLinearisation
from controllers.screening import MonitoredLimits
from network_models.registry import Bess


@dataclass(frozen=True, eq=False)
class LimitRows:
    """One constraint of network limits: which limit each of its rows holds.

    ``limit``: voltage_low, voltage_high (bounds in pu) or branch (a thermal limit in MVA, each
    row's kind in ``kinds``: line_loading or trafo_loading)."""

    limit: str
    constraint: cp.Constraint
    names: list[str]  # the bus or branch of each row
    kinds: list[str]  # the violation kind of each row, as the AC check names it


@dataclass(frozen=True, eq=False)
class NetworkRows:
    constraints: list[cp.Constraint]
    limits: list[LimitRows]


def network_constraints(
    p: DispatchParameters,
    v: DispatchVariables,
    *,
    lin: NetworkLinearisation,
    maps: DeviceMaps,
    limits: MonitoredLimits,
    voltage_rows: np.ndarray,
    config: DispatchConfig,
    net: object,
    net_map: StateMap | SensitivityMap,
) -> NetworkRows:
    """The linearised AC power flow (``net_map``: J z = ΔS(injections) relative to the base
    point, or the watched quantities' sensitivities), the voltage band and thermal limits
    (soft) and the import."""
    cons = list(net_map.constraints)
    rows: list[LimitRows] = []
    for built in (
        voltage_constraints(p, v, lin=lin, limits=limits, voltage_rows=voltage_rows,
                            config=config, net=net, net_map=net_map),
        thermal_constraints(p, v, lin=lin, limits=limits, net=net, net_map=net_map),
    ):
        cons += [r.constraint for r in built]
        rows += built
    cons += import_constraints(p, v, lin=lin, maps=maps, net_map=net_map)
    return NetworkRows(constraints=cons, limits=rows)


def voltage_constraints(
    p: DispatchParameters,
    v: DispatchVariables,
    *,
    lin: NetworkLinearisation,
    limits: MonitoredLimits,
    voltage_rows: np.ndarray,
    config: DispatchConfig,
    net: object,
    net_map: StateMap | SensitivityMap,
) -> list[LimitRows]:
    """|V| inside the band less its margin at the monitored buses, one slack per step."""
    if not len(voltage_rows):
        return []
    t = v.voltage_slack_pu.shape[0]
    slack = cp.reshape(v.voltage_slack_pu, (1, t), order="C")
    lo = config.v_min_pu + config.voltage_margin_pu
    hi = config.v_max_pu - config.voltage_margin_pu
    vm = p.base_vm_pu + net_map.of(sp.csr_matrix(lin.v_select)[voltage_rows])
    names = [str(net.bus.name.at[b]) for b in lin.monitored_buses[voltage_rows]]
    out = []
    pick = np.flatnonzero(np.isin(voltage_rows, limits.v_low))
    if len(pick):
        row = vm[pick, :] >= lo - np.ones((len(pick), 1)) @ slack
        out.append(LimitRows("voltage_low", row, [names[i] for i in pick],
                             ["voltage_low"] * len(pick)))
    pick = np.flatnonzero(np.isin(voltage_rows, limits.v_high))
    if len(pick):
        row = vm[pick, :] <= hi + np.ones((len(pick), 1)) @ slack
        out.append(LimitRows("voltage_high", row, [names[i] for i in pick],
                             ["voltage_high"] * len(pick)))
    return out


def thermal_constraints(
    p: DispatchParameters,
    v: DispatchVariables,
    *,
    lin: NetworkLinearisation,
    limits: MonitoredLimits,
    net: object,
    net_map: StateMap | SensitivityMap,
) -> list[LimitRows]:
    """Each monitored branch's flow inside the tangent of its thermal limit, both ways (see
    :func:`~controllers.dispatch_problem.parameters.assign_base_point`), one slack per step."""
    br = limits.branches
    if not len(br):
        return []
    t = v.loading_slack_mva.shape[0]
    slack = np.ones((len(br), 1)) @ cp.reshape(v.loading_slack_mva, (1, t), order="C")
    g_p = sp.csr_matrix(lin.flow_p_gradient)[br]
    g_q = sp.csr_matrix(lin.flow_q_gradient)[br]
    toward = net_map.directed(p.flow_direction_p, g_p, p.flow_direction_q, g_q)
    n_lines = len(lin.monitored_lines)
    named = [
        ("line_loading", str(net.line.name.at[lin.monitored_lines[r]])) if r < n_lines
        else ("trafo_loading", str(net.trafo.name.at[lin.monitored_trafos[r - n_lines]]))
        for r in br
    ]
    kinds, names = [k for k, _ in named], [n for _, n in named]
    return [
        LimitRows("branch", toward <= p.flow_room_forward_mva + slack, names, kinds),
        LimitRows("branch", -toward <= p.flow_room_reverse_mva + slack, names, kinds),
    ]


def import_constraints(
    p: DispatchParameters,
    v: DispatchVariables,
    *,
    lin: NetworkLinearisation,
    maps: DeviceMaps,
    net_map: StateMap | SensitivityMap,
) -> list[cp.Constraint]:
    """The import, linearised (devices on a slack bus change it one to one), and its peak."""
    slack_inj = 0
    if maps.pv.at_slack.any():
        slack_inj = slack_inj + np.where(maps.pv.at_slack, 1.0, 0.0) @ v.pv_p_mw
    if maps.bess.at_slack.any():
        slack_inj = slack_inj + np.where(maps.bess.at_slack, 1.0, 0.0) @ v.bess_net_mw
    if maps.ev.at_slack.any():
        slack_inj = slack_inj - np.where(maps.ev.at_slack, 1.0, 0.0) @ v.ev_site_p_mw
    return [
        v.import_mw == p.base_import_mw + net_map.of(lin.import_gradient[None, :])[0, :]
        - slack_inj,
        v.peak_import_mw >= v.import_mw,
    ]


def pv_constraints(p: DispatchParameters, v: DispatchVariables) -> list[cp.Constraint]:
    """Curtailment and reactive power inside what the sun and the inverter rating allow."""
    if not v.pv_p_mw.size:
        return []
    return [v.pv_p_mw <= p.pv_available_mw, cp.abs(v.pv_q_mvar) <= p.pv_q_max_mvar]


def bess_constraints(
    p: DispatchParameters,
    v: DispatchVariables,
    *,
    bess: Sequence[Bess],
    energised: np.ndarray,
    config: DispatchConfig,
    step_h: float,
) -> list[cp.Constraint]:
    """Power and reactive ratings, SoC dynamics with efficiencies, the hard energy bounds, the
    band (soft; the islanding reserve, where kept, is its floor) and the end-of-window target
    (soft)."""
    if not len(bess):
        return []
    n_b, t = v.bess_energy_mwh.shape
    q_cap = np.array([np.sqrt(max(b.s_mva**2 - b.p_mw**2, 0.0)) for b in bess])
    floor = [floor_frac(b, use_island_reserve=config.use_island_reserve) for b in bess]
    band_lo = (np.array(floor) * [b.e_mwh for b in bess])[:, None]
    band_hi = np.array([b.soc_max_frac * b.e_mwh for b in bess])[:, None]
    over_t = np.ones((1, t))

    def per_step(x: cp.Parameter) -> cp.Expression:
        return cp.reshape(x, (n_b, 1), order="C") @ over_t

    eta_c = np.array([b.eta_charge for b in bess])[:, None]
    eta_d = np.array([b.eta_discharge for b in bess])[:, None]
    flow_e = (cp.multiply(eta_c, v.bess_charge_mw)
              - cp.multiply(1.0 / eta_d, v.bess_discharge_mw))
    e = v.bess_energy_mwh
    cons = [
        v.bess_charge_mw <= per_step(p.bess_p_max_mw),
        v.bess_discharge_mw <= per_step(p.bess_p_max_mw),
        cp.abs(v.bess_q_mvar) <= (q_cap * energised)[:, None] @ over_t,
        e[:, 0] == p.bess_energy_start_mwh + flow_e[:, 0] * step_h,
        e <= per_step(p.bess_energy_max_mwh),
        e >= per_step(p.bess_energy_min_mwh),
        e + v.bess_below_band_mwh >= band_lo @ over_t,
        e - v.bess_above_band_mwh <= band_hi @ over_t,
        e[:, t - 1] + v.bess_terminal_shortfall_mwh >= p.bess_energy_target_mwh,
    ]
    if t > 1:
        cons.append(e[:, 1:] == e[:, :-1] + flow_e[:, 1:] * step_h)
    return cons


def ev_site_constraints(
    p: DispatchParameters, v: DispatchVariables, *, step_h: float
) -> list[cp.Constraint]:
    """Each site's power within what its vehicles can draw, its energy inside its envelopes
    (the lower one soft), and what plugged-in vehicles can take now as a soft floor: only the
    grid's limits hold it back."""
    n_ev, t = v.ev_energy_mwh.shape
    if not n_ev:
        return []
    e = v.ev_energy_mwh
    cons = [
        v.ev_site_p_mw <= p.ev_site_p_max_mw,
        e[:, 0] == v.ev_site_p_mw[:, 0] * step_h,
        e + v.ev_shortfall_mwh >= p.ev_energy_min_mwh,
        e <= p.ev_energy_max_mwh,
        e[:, 0] + v.ev_deferred_mwh >= p.ev_first_step_floor_mwh,
    ]
    if t > 1:
        cons.append(e[:, 1:] == e[:, :-1] + v.ev_site_p_mw[:, 1:] * step_h)
    return cons
