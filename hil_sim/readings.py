"""What the field's meters and devices report, computed from the state and the power flow.

Signs as in the registry: a meter's ``p_mw`` flows away from its bus into the element it
measures; a substation transformer's ``p_mw`` flows from HV to LV. A de-energised bus reads
0 pu and carries no current.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandapower as pp

from gridctl.field.contract import PointKey
from gridctl.field.ev_points import ConnectorReport, encode_connector
from hil_sim.devices import EvSiteUnit
from network_models.model import GridModel
from network_models.powerflow import TimeSeriesResult
from network_models.registry import ElementTable, Meter, SubstationTransformer

_SQRT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class FlowView:
    """One power flow's results by pandapower row (step 0 of a :class:`TimeSeriesResult`)."""

    converged: bool
    bus_pos: dict[int, int]
    line_pos: dict[int, int]
    trafo_pos: dict[int, int]
    vm_pu: np.ndarray  # 0 where de-energised
    vn_kv: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    line_p_to_mw: np.ndarray
    line_q_to_mvar: np.ndarray
    line_loading_pct: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray
    trafo_p_lv_mw: np.ndarray
    trafo_q_lv_mvar: np.ndarray
    trafo_loading_pct: np.ndarray
    ext_grid_p_mw: np.ndarray
    ext_grid_q_mvar: np.ndarray
    losses_mw: float
    # (table, row) → (p, q) an appliance drew in this flow, consumption positive (sgen: -output)
    appliances: dict[tuple[str, int], tuple[float, float]]

    @classmethod
    def of(cls, result: TimeSeriesResult, vn_kv: np.ndarray,
           appliances: dict[tuple[str, int], tuple[float, float]]) -> FlowView:
        def row0(a: np.ndarray) -> np.ndarray:
            return np.nan_to_num(np.asarray(a[0], dtype=float))

        return cls(
            converged=bool(result.converged[0]),
            bus_pos={int(r): k for k, r in enumerate(result.bus_index)},
            line_pos={int(r): k for k, r in enumerate(result.line_index)},
            trafo_pos={int(r): k for k, r in enumerate(result.trafo_index)},
            vm_pu=row0(result.vm_pu), vn_kv=vn_kv,
            line_p_from_mw=row0(result.line_p_from_mw),
            line_q_from_mvar=row0(result.line_q_from_mvar),
            line_p_to_mw=row0(result.line_p_to_mw), line_q_to_mvar=row0(result.line_q_to_mvar),
            line_loading_pct=row0(result.line_loading_pct),
            trafo_p_hv_mw=row0(result.trafo_p_hv_mw),
            trafo_q_hv_mvar=row0(result.trafo_q_hv_mvar),
            trafo_p_lv_mw=row0(result.trafo_p_lv_mw),
            trafo_q_lv_mvar=row0(result.trafo_q_lv_mvar),
            trafo_loading_pct=row0(result.trafo_loading_pct),
            ext_grid_p_mw=row0(result.ext_grid_p_mw),
            ext_grid_q_mvar=row0(result.ext_grid_q_mvar),
            losses_mw=float(np.nan_to_num(result.losses_mw[0])),
            appliances=appliances,
        )

    def v_pu(self, bus_row: int) -> float:
        return float(self.vm_pu[self.bus_pos[bus_row]])

    def current_ka(self, p_mw: float, q_mvar: float, bus_row: int) -> float:
        """Current of a flow at a bus: |S| / (√3 · V), kA."""
        k = self.bus_pos[bus_row]
        v_kv = self.vm_pu[k] * self.vn_kv[k]
        return math.hypot(p_mw, q_mvar) / (_SQRT3 * v_kv) if v_kv > 0 else 0.0


def meter_readings(meter: Meter, net: pp.pandapowerNet, view: FlowView, bus: int,
                   ) -> dict[str, float]:
    """P and Q away from the meter's bus (row ``bus``) into its element, current at that end,
    bus voltage. A meter on a bus measures what flows away from it into all its branches."""
    row = meter.element.index
    if meter.element.table == ElementTable.BUS:
        p, q = _away_from_bus(net, view, bus)
    elif meter.element.table in (ElementTable.SGEN, ElementTable.LOAD, ElementTable.STORAGE):
        p, q = view.appliances.get((meter.element.table.value, row), (0.0, 0.0))
    elif meter.element.table == ElementTable.LINE:
        k = view.line_pos[row]
        at_from = int(net.line.at[row, "from_bus"]) == bus
        p = view.line_p_from_mw[k] if at_from else view.line_p_to_mw[k]
        q = view.line_q_from_mvar[k] if at_from else view.line_q_to_mvar[k]
    else:
        k = view.trafo_pos[row]
        at_hv = int(net.trafo.at[row, "hv_bus"]) == bus
        p = view.trafo_p_hv_mw[k] if at_hv else view.trafo_p_lv_mw[k]
        q = view.trafo_q_hv_mvar[k] if at_hv else view.trafo_q_lv_mvar[k]
    return {"p_mw": float(p), "q_mvar": float(q),
            "i_ka": view.current_ka(float(p), float(q), bus), "v_pu": view.v_pu(bus)}


def _away_from_bus(net: pp.pandapowerNet, view: FlowView, bus: int) -> tuple[float, float]:
    p = q = 0.0
    for row, k in view.line_pos.items():
        if int(net.line.at[row, "from_bus"]) == bus:
            p, q = p + view.line_p_from_mw[k], q + view.line_q_from_mvar[k]
        elif int(net.line.at[row, "to_bus"]) == bus:
            p, q = p + view.line_p_to_mw[k], q + view.line_q_to_mvar[k]
    for row, k in view.trafo_pos.items():
        if int(net.trafo.at[row, "hv_bus"]) == bus:
            p, q = p + view.trafo_p_hv_mw[k], q + view.trafo_q_hv_mvar[k]
        elif int(net.trafo.at[row, "lv_bus"]) == bus:
            p, q = p + view.trafo_p_lv_mw[k], q + view.trafo_q_lv_mvar[k]
    return float(p), float(q)


def transformer_readings(trafo: SubstationTransformer, view: FlowView, *, in_service: bool,
                         hv_energised: bool) -> dict[str, float | bool]:
    """Flow from HV to LV, loading, and whether the transformer is in service and energised."""
    k = view.trafo_pos[trafo.element.index]
    live = in_service and hv_energised
    return {"p_mw": float(view.trafo_p_hv_mw[k]), "q_mvar": float(view.trafo_q_hv_mvar[k]),
            "loading_pct": float(view.trafo_loading_pct[k]), "in_service": live}


def ev_site_readings(unit: EvSiteUnit, mean_kw: np.ndarray) -> dict[PointKey, Any]:
    """Site and connector points of a charging site; ``mean_kw`` per connector over the tick.
    Each connector is encoded by the field floor's EV codec (:mod:`gridctl.field.ev_points`)."""
    i = unit.spec.id
    out: dict[PointKey, Any] = {(i, "p_charge_kw"): float(mean_kw.sum())}
    rating_kw = unit.spec.p_connector_kw
    ended = unit.ended or [None] * len(unit.sessions)
    # as Python floats: what the address space sends as Double
    for connector, session, kw, delivered, last in zip(
            unit.spec.connector_ids(), unit.sessions, mean_kw.tolist(),
            unit.delivered_kwh.tolist(), ended, strict=True):
        if session is None:
            report = ConnectorReport(site=i, connector=connector, p_charge_kw=kw,
                                     energy_delivered_kwh=delivered)
        else:
            report = ConnectorReport(
                site=i, connector=connector, connected=True, session_id=session.id,
                p_charge_kw=kw, energy_delivered_kwh=delivered,
                energy_requested_kwh=session.energy_kwh, departure=session.departure,
                vehicle_max_kw=min(session.max_kw, rating_kw))
        if last:
            report = report._replace(last_session_id=last[0], last_session_energy_kwh=last[1])
        encode_connector(report, out)
    return out


def instrument_readings(
    model: GridModel,
    net: pp.pandapowerNet,
    view: FlowView,
    *,
    energised: set[int],
    bus_of: Mapping[str, int],
) -> dict[PointKey, Any]:
    """Every meter's and substation transformer's readings from one power flow (``bus_of``:
    device id -> its bus row)."""
    out: dict[PointKey, Any] = {}
    for device in model.registry:
        if isinstance(device, Meter):
            for name, value in meter_readings(device, net, view, bus_of[device.id]).items():
                out[(device.id, name)] = value
        elif isinstance(device, SubstationTransformer):
            in_service = bool(net.trafo.at[device.element.index, "in_service"])
            for name, value in transformer_readings(
                device,
                view,
                in_service=in_service,
                hv_energised=model.bus_index(device.hv_bus) in energised,
            ).items():
                out[(device.id, name)] = value
    return out


def network_view(view: FlowView, net: pp.pandapowerNet) -> dict[str, list[Any]]:
    """Bus voltages (0 where de-energised) and branch loadings of one power flow, by name."""
    return {
        "bus_names": [str(n) for n in net.bus["name"]],
        "bus_vm_pu": [float(view.vm_pu[view.bus_pos[int(r)]]) for r in net.bus.index],
        "line_names": [str(n) for n in net.line["name"]],
        "line_loading_pct": [float(x) for x in view.line_loading_pct],
        "trafo_names": [str(n) for n in net.trafo["name"]],
        "trafo_loading_pct": [float(x) for x in view.trafo_loading_pct],
    }
