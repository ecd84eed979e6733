"""A pandapower net as power-grid-model input data, with the maps back to its rows.

Nodes and branches come from ``pgm_topology`` and ``pgm_branches``; this module adds the sources
(ext_grids), shunts and appliances (loads split by ZIP share, storage, sgens) and refuses
elements the converter does not model. Appliance powers are left at 0: ``pgm_batch`` sets them
per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd
from power_grid_model import ComponentType, DatasetType, LoadGenType, initialize_array

from network_models._powerflow.pgm_branches import (
    impedance_switch_input,
    line_input,
    trafo_input,
)
from network_models._powerflow.pgm_topology import (
    IdCounter,
    Topology,
    fused_bus_nodes,
)

# pandapower's ext_grid is an ideal slack; a power-grid-model source has an internal impedance.
# At 1e18 VA a 100 MW import moves the source bus by 1e-10 pu, far below the 1e-6 pu we promise,
# and the Newton-Raphson still converges in the usual handful of iterations.
_SOURCE_SK_VA = 1e18
_SOURCE_RX_RATIO = 0.1
_UNSUPPORTED_TABLES = (
    "gen", "trafo3w", "impedance", "ward", "xward", "dcline", "motor", "asymmetric_load",
    "asymmetric_sgen", "svc", "tcsc", "ssc", "vsc", "line_dc", "b2b_vsc", "vsc_stacked",
    "vsc_bipolar",
)


@dataclass(frozen=True)
class ApplianceRows:
    """PGM sym_load/sym_gen rows made from one pandapower table, with their share of p and q."""

    table: str
    ids: np.ndarray
    positions: np.ndarray  # row positions in the pandapower table
    p_share: np.ndarray
    q_share: np.ndarray


@dataclass(frozen=True)
class PgmNet:
    """A net converted to power-grid-model input, with the maps back to pandapower rows."""

    input_data: dict[ComponentType, np.ndarray]
    node_of_bus: np.ndarray  # PGM node position per net.bus row
    bus_in_service: np.ndarray
    source_ids: np.ndarray  # per net.ext_grid row; -1 where out of service
    sym_load_rows: tuple[ApplianceRows, ...]
    sym_gen_rows: tuple[ApplianceRows, ...]


def convert_net(net: pp.pandapowerNet) -> PgmNet:
    """power-grid-model input data for the net's switch states and in_service flags."""
    _reject_unsupported(net)
    ids = IdCounter()
    bus_in_service = net.bus["in_service"].to_numpy(dtype=bool)
    node_of_bus = fused_bus_nodes(net, bus_in_service)
    n_nodes = int(node_of_bus.max()) + 1 if len(node_of_bus) else 0
    node = initialize_array(DatasetType.input, ComponentType.node, n_nodes)
    node["id"] = ids.take(n_nodes)
    representative = np.zeros(n_nodes, dtype=int)
    representative[node_of_bus[::-1]] = np.arange(len(node_of_bus))[::-1]
    node["u_rated"] = net.bus["vn_kv"].to_numpy(dtype=float)[representative] * 1e3

    topo = Topology(net, node_of_bus, bus_in_service)
    input_data: dict[ComponentType, np.ndarray] = {ComponentType.node: node}
    line = line_input(net, topo, ids)
    trafo = trafo_input(net, topo, ids)
    switch_branches = impedance_switch_input(net, topo, ids)
    input_data[ComponentType.line] = np.concatenate([line, switch_branches])
    input_data[ComponentType.generic_branch] = trafo
    source, source_ids = _source_input(net, topo, ids)
    input_data[ComponentType.source] = source
    shunt = _shunt_input(net, topo, ids)
    input_data[ComponentType.shunt] = shunt
    sym_load, sym_load_rows = _appliance_input(net, topo, ids, ComponentType.sym_load)
    sym_gen, sym_gen_rows = _appliance_input(net, topo, ids, ComponentType.sym_gen)
    input_data[ComponentType.sym_load] = sym_load
    input_data[ComponentType.sym_gen] = sym_gen
    return PgmNet(
        input_data={k: v for k, v in input_data.items() if len(v)},
        node_of_bus=node_of_bus,
        bus_in_service=bus_in_service,
        source_ids=source_ids,
        sym_load_rows=sym_load_rows,
        sym_gen_rows=sym_gen_rows,
    )


def _reject_unsupported(net: pp.pandapowerNet) -> None:
    for table in _UNSUPPORTED_TABLES:
        frame = net[table] if table in net else pd.DataFrame()
        in_service = frame["in_service"] if "in_service" in frame else pd.Series(True, frame.index)
        if in_service.astype(bool).any():
            raise NotImplementedError(
                f"net.{table} has in-service rows: the power-grid-model engine does not model "
                f"{table} elements; use engine=PowerFlowEngine.PANDAPOWER for this net"
            )
    shunt = net.shunt if "shunt" in net else pd.DataFrame()
    if "step_dependency_table" in shunt and shunt["step_dependency_table"].fillna(False).any():
        raise NotImplementedError(
            "net.shunt uses step_dependency_table: tabulated shunt steps are not converted; "
            "use engine=PowerFlowEngine.PANDAPOWER"
        )


def _source_input(
    net: pp.pandapowerNet, topo: Topology, ids: IdCounter
) -> tuple[np.ndarray, np.ndarray]:
    eg = net.ext_grid
    live = eg["in_service"].to_numpy(dtype=bool) & topo.bus_alive(eg["bus"])
    chosen = eg[live]
    out = initialize_array(DatasetType.input, ComponentType.source, len(chosen))
    out["id"] = ids.take(len(chosen))
    source_ids = np.full(len(eg), -1, dtype=np.int64)
    source_ids[live] = out["id"]
    if len(chosen):
        out["node"] = topo.node(chosen["bus"])
        out["status"] = 1
        out["u_ref"] = chosen["vm_pu"].to_numpy(dtype=float)
        out["u_ref_angle"] = np.deg2rad(chosen["va_degree"].fillna(0.0).to_numpy(dtype=float))
        out["sk"] = _SOURCE_SK_VA
        out["rx_ratio"] = _SOURCE_RX_RATIO
    return out, source_ids


def _shunt_input(net: pp.pandapowerNet, topo: Topology, ids: IdCounter) -> np.ndarray:
    """Shunts as admittances: p_mw and q_mvar (consumed, per step) at the shunt's vn_kv."""
    sh = net.shunt if "shunt" in net else pd.DataFrame()
    if len(sh) == 0:
        return initialize_array(DatasetType.input, ComponentType.shunt, 0)
    live = sh["in_service"].to_numpy(dtype=bool) & topo.bus_alive(sh["bus"])
    chosen = sh[live]
    out = initialize_array(DatasetType.input, ComponentType.shunt, len(chosen))
    out["id"] = ids.take(len(chosen))
    if len(chosen):
        vn_kv = chosen["vn_kv"].to_numpy(dtype=float)
        vn_kv = np.where(np.isnan(vn_kv), topo.vn_kv(chosen["bus"]), vn_kv)
        per_kv2 = chosen["step"].to_numpy(dtype=float) / vn_kv**2
        out["node"] = topo.node(chosen["bus"])
        out["status"] = 1
        out["g1"] = chosen["p_mw"].to_numpy(dtype=float) * per_kv2
        out["b1"] = -chosen["q_mvar"].to_numpy(dtype=float) * per_kv2
    return out


def _appliance_input(
    net: pp.pandapowerNet, topo: Topology, ids: IdCounter, component: ComponentType
) -> tuple[np.ndarray, tuple[ApplianceRows, ...]]:
    """sym_load rows (loads split by ZIP share, storage) or sym_gen rows (sgens)."""
    groups: list[tuple[ApplianceRows, LoadGenType, np.ndarray]] = []
    for table, load_type, p_share, q_share in _appliance_parts(net, component):
        frame = net[table]
        live = frame["in_service"].to_numpy(dtype=bool) & topo.bus_alive(frame["bus"])
        live &= (p_share != 0) | (q_share != 0)
        positions = np.flatnonzero(live)
        rows = ApplianceRows(
            table=table, ids=ids.take(len(positions)), positions=positions,
            p_share=p_share[positions], q_share=q_share[positions],
        )
        groups.append((rows, load_type, topo.node(frame["bus"].iloc[positions])))
    n = sum(len(rows.ids) for rows, _, _ in groups)
    out = initialize_array(DatasetType.input, component, n)
    if n:
        out["id"] = np.concatenate([rows.ids for rows, _, _ in groups])
        out["node"] = np.concatenate([nodes for _, _, nodes in groups])
        out["status"] = 1
        out["type"] = np.concatenate([np.full(len(r.ids), t) for r, t, _ in groups])
        out["p_specified"] = 0.0
        out["q_specified"] = 0.0
    return out, tuple(rows for rows, _, _ in groups)


def _appliance_parts(
    net: pp.pandapowerNet, component: ComponentType
) -> list[tuple[str, LoadGenType, np.ndarray, np.ndarray]]:
    """(table, PGM load type, share of p, share of q) per row; a ZIP load becomes three parts."""
    if component == ComponentType.sym_gen:
        n = len(net.sgen)
        return [("sgen", LoadGenType.const_power, np.ones(n), np.ones(n))]
    load = net.load
    pct = {
        name: (load[name].fillna(0.0).to_numpy(dtype=float) / 100.0 if name in load
               else np.zeros(len(load)))
        for name in ("const_z_p_percent", "const_z_q_percent", "const_i_p_percent",
                     "const_i_q_percent")
    }
    n_storage = len(net.storage) if "storage" in net else 0
    parts = [
        ("load", LoadGenType.const_power,
         1.0 - pct["const_z_p_percent"] - pct["const_i_p_percent"],
         1.0 - pct["const_z_q_percent"] - pct["const_i_q_percent"]),
        ("load", LoadGenType.const_impedance, pct["const_z_p_percent"], pct["const_z_q_percent"]),
        ("load", LoadGenType.const_current, pct["const_i_p_percent"], pct["const_i_q_percent"]),
    ]
    if n_storage:
        parts.append(("storage", LoadGenType.const_power, np.ones(n_storage), np.ones(n_storage)))
    return parts
