"""One tick's power flow: the devices' outputs as injections, and what each appliance draws.

The injections are built by :func:`network_models.powerflow.device_injections`, the one place
that turns per-device values (registry ids and signs) into rows of the net, shared with the
planner's check of a schedule. What stays here is what only the simulator knows: a shed load
draws nothing, an EV site draws its connectors' mean power over the tick, and the battery of a
live island is its slack (the power flow sets its output, so it injects nothing of its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandapower as pp

from hil_sim.devices import BessUnit, PvUnit
from network_models.powerflow import TimeSeriesInjections, device_injections
from network_models.registry import DeviceRegistry, Load

__all__ = ["appliance_flows", "tick_injections"]

# pandapower table -> (its p and q fields of the injections, sign to the drawn power)
_APPLIANCES = {
    "load": ("load_p_mw", "load_q_mvar", 1.0),
    "sgen": ("sgen_p_mw", "sgen_q_mvar", -1.0),
    "storage": ("storage_p_mw", "storage_q_mvar", 1.0),
}


def tick_injections(
    net: pp.pandapowerNet,
    registry: DeviceRegistry,
    *,
    loads: Iterable[Load],
    load_p_mw: Iterable[float],
    load_q_mvar: Iterable[float],
    ev_site_p_mw: Mapping[str, float],
    pv: Iterable[PvUnit],
    bess: Iterable[BessUnit],
    island_bess: Iterable[str],
) -> TimeSeriesInjections:
    """The injections of one tick (one step) in the registry's signs: loads as drawn (0 when
    shed), EV sites at ``ev_site_p_mw`` (no reactive power), PV and batteries at their outputs;
    the batteries in ``island_bess`` (slacks of live islands) and any other storage idle."""
    load_ids = [load.id for load in loads]
    pv_units, slacks = list(pv), set(island_bess)
    bess_units = [unit for unit in bess if unit.spec.id not in slacks]
    return device_injections(
        net,
        registry,
        steps=1,
        load_p_mw=dict(zip(load_ids, load_p_mw, strict=True)),
        load_q_mvar=dict(zip(load_ids, load_q_mvar, strict=True)),
        ev_site_p_mw=ev_site_p_mw,
        pv_p_mw={unit.spec.id: unit.p_mw for unit in pv_units},
        pv_q_mvar={unit.spec.id: unit.q_mvar for unit in pv_units},
        bess_p_mw={unit.spec.id: unit.p_mw for unit in bess_units},
        bess_q_mvar={unit.spec.id: unit.q_mvar for unit in bess_units},
    )


def appliance_flows(
    net: pp.pandapowerNet, injections: TimeSeriesInjections, energised: set[int]
) -> dict[tuple[str, int], tuple[float, float]]:
    """(table, row) -> (p_mw, q_mvar) each load, sgen and storage draws in the tick (an sgen's
    generation is negative); 0 for one out of service or on a de-energised bus."""
    flows: dict[tuple[str, int], tuple[float, float]] = {}
    live = list(energised)
    for table, (p_field, q_field, sign) in _APPLIANCES.items():
        frame = net[table]
        p_arr, q_arr = getattr(injections, p_field)[0], getattr(injections, q_field)[0]
        on = np.isin(frame["bus"].to_numpy(), live) & frame["in_service"].to_numpy(dtype=bool)
        for k, (row, live_k) in enumerate(zip(frame.index, on, strict=True)):
            flows[(table, int(row))] = (sign * p_arr[k], sign * q_arr[k]) if live_k else (0.0, 0.0)
    return flows
