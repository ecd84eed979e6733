"""Lines, impedance switches and two-winding transformers as power-grid-model branches.

Impedances in ohm, admittances in siemens, ratings in A and VA, as power-grid-model expects.
Options the converter does not reproduce exactly raise ``NotImplementedError`` naming the column
and the way out (``engine=PowerFlowEngine.PANDAPOWER``).
"""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp
import pandas as pd
from power_grid_model import ComponentType, DatasetType, initialize_array

from network_models._powerflow.pgm_topology import IdCounter, Topology, switch_z_ohm

_SWITCH_RX_RATIO = 2.0  # runpp's default switch_rx_ratio for bus-bus switches with z_ohm > 0


def line_input(net: pp.pandapowerNet, topo: Topology, ids: IdCounter) -> np.ndarray:
    line = net.line
    n = len(line)
    out = initialize_array(DatasetType.input, ComponentType.line, n)
    out["id"] = ids.take(n)
    if n == 0:
        return out
    in_service = line["in_service"].to_numpy(dtype=bool)
    out["from_node"] = topo.node(line["from_bus"])
    out["to_node"] = topo.node(line["to_bus"])
    out["from_status"] = in_service & topo.end_closed("l", line, "from_bus")
    out["to_status"] = in_service & topo.end_closed("l", line, "to_bus")
    length_km = line["length_km"].to_numpy(dtype=float)
    parallel = line["parallel"].to_numpy(dtype=float)
    out["r1"] = line["r_ohm_per_km"].to_numpy(dtype=float) * length_km / parallel
    out["x1"] = line["x_ohm_per_km"].to_numpy(dtype=float) * length_km / parallel
    c_f = line["c_nf_per_km"].to_numpy(dtype=float) * 1e-9 * length_km * parallel
    g_s = line["g_us_per_km"].to_numpy(dtype=float) * 1e-6 * length_km * parallel
    if np.any((g_s != 0) & (c_f == 0)):
        raise NotImplementedError(
            "net.line has rows with g_us_per_km > 0 and c_nf_per_km = 0: a shunt conductance "
            "without capacitance is not converted; use engine=PowerFlowEngine.PANDAPOWER"
        )
    out["c1"] = c_f
    omega_c = 2 * math.pi * float(net.f_hz) * c_f
    out["tan1"] = np.divide(g_s, omega_c, out=np.zeros(n), where=omega_c > 0)
    i_n = line["max_i_ka"].to_numpy(dtype=float) * line["df"].to_numpy(dtype=float) * parallel
    out["i_n"] = np.where(i_n > 0, i_n * 1e3, np.nan)
    return out


def impedance_switch_input(
    net: pp.pandapowerNet, topo: Topology, ids: IdCounter
) -> np.ndarray:
    """Closed bus-bus switches with z_ohm > 0 are small impedances, as in runpp."""
    sw = net.switch
    mask = (sw["et"] == "b") & sw["closed"].astype(bool) & (switch_z_ohm(sw) > 0)
    mask &= topo.bus_alive(sw["bus"]) & topo.bus_alive(
        sw["element"].where(sw["et"] == "b", sw["bus"])
    )
    chosen = sw[mask]
    n = len(chosen)
    out = initialize_array(DatasetType.input, ComponentType.line, n)
    out["id"] = ids.take(n)
    if n == 0:
        return out
    z_ohm = chosen["z_ohm"].to_numpy(dtype=float)
    out["from_node"] = topo.node(chosen["bus"])
    out["to_node"] = topo.node(chosen["element"])
    out["from_status"] = 1
    out["to_status"] = 1
    out["r1"] = z_ohm * _SWITCH_RX_RATIO / math.hypot(1.0, _SWITCH_RX_RATIO)
    out["x1"] = z_ohm / math.hypot(1.0, _SWITCH_RX_RATIO)
    out["c1"] = 0.0
    out["tan1"] = 0.0
    return out


def trafo_input(net: pp.pandapowerNet, topo: Topology, ids: IdCounter) -> np.ndarray:
    """Two-winding transformers as generic branches holding runpp's T-model pi equivalent.

    power-grid-model's own transformer is a pi model; pandapower's default is the T model with the
    magnetising branch between two halves of the leakage impedance. The exact pi equivalent of
    that T, with the tap ratio and phase shift on the HV side, is what a generic branch holds.
    Impedances and admittances are in ohm and siemens referred to the LV side.
    """
    trafo = net.trafo
    n = len(trafo)
    out = initialize_array(DatasetType.input, ComponentType.generic_branch, n)
    out["id"] = ids.take(n)
    if n == 0:
        return out
    _reject_unsupported_trafo_options(trafo)
    # unlike a line, runpp drops a transformer whole when either of its buses is out of service
    in_service = trafo["in_service"].to_numpy(dtype=bool)
    in_service &= topo.bus_alive(trafo["hv_bus"]) & topo.bus_alive(trafo["lv_bus"])
    out["from_node"] = topo.node(trafo["hv_bus"])
    out["to_node"] = topo.node(trafo["lv_bus"])
    out["from_status"] = in_service & topo.end_closed("t", trafo, "hv_bus")
    out["to_status"] = in_service & topo.end_closed("t", trafo, "lv_bus")

    vn_hv_kv, vn_lv_kv, shift_deg = _tapped_ratings(trafo)
    ratio = (vn_hv_kv / vn_lv_kv) / (topo.vn_kv(trafo["hv_bus"]) / topo.vn_kv(trafo["lv_bus"]))
    z_series, y_shunt = _trafo_t_to_pi(trafo, vn_lv_kv)
    out["r1"] = z_series.real
    out["x1"] = z_series.imag
    out["g1"] = y_shunt.real
    out["b1"] = y_shunt.imag
    out["k"] = ratio
    out["theta"] = np.deg2rad(shift_deg)
    out["sn"] = (trafo["sn_mva"] * trafo["parallel"]).to_numpy(dtype=float) * 1e6
    return out


def _reject_unsupported_trafo_options(trafo: pd.DataFrame) -> None:
    if "tap_dependency_table" in trafo and trafo["tap_dependency_table"].fillna(False).any():
        raise NotImplementedError(
            "net.trafo uses tap_dependency_table: tabulated tap characteristics are not "
            "converted; use engine=PowerFlowEngine.PANDAPOWER"
        )
    for column in ("leakage_resistance_ratio_hv", "leakage_reactance_ratio_hv"):
        if column in trafo and not np.allclose(trafo[column].fillna(0.5).astype(float), 0.5):
            raise NotImplementedError(
                f"net.trafo.{column} differs from 0.5: an asymmetric T model is not converted; "
                "use engine=PowerFlowEngine.PANDAPOWER"
            )
    if len(trafo) and "tap_changer_type" not in trafo:
        raise NotImplementedError(
            "net.trafo has no tap_changer_type column (a pandapower 2.x net): convert it with "
            "pandapower.convert_format first"
        )


def _tapped_ratings(trafo: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rated HV and LV voltages (kV) after the tap changers, and the phase shift (degrees)."""
    vn_kv = {
        "hv": trafo["vn_hv_kv"].to_numpy(dtype=float).copy(),
        "lv": trafo["vn_lv_kv"].to_numpy(dtype=float).copy(),
    }
    shift_deg = trafo["shift_degree"].fillna(0.0).to_numpy(dtype=float).copy()
    for prefix in ("tap", "tap2"):
        if f"{prefix}_pos" not in trafo:
            continue
        kind = trafo[f"{prefix}_changer_type"].astype(object).where(
            trafo[f"{prefix}_changer_type"].notna(), ""
        ).to_numpy()
        if np.any(kind == "Tabular"):
            raise NotImplementedError(
                f"net.trafo.{prefix}_changer_type 'Tabular' is not converted; "
                "use engine=PowerFlowEngine.PANDAPOWER"
            )
        side = trafo[f"{prefix}_side"].astype(object).where(
            trafo[f"{prefix}_side"].notna(), ""
        ).to_numpy()
        steps = (
            trafo[f"{prefix}_pos"].to_numpy(dtype=float)
            - trafo[f"{prefix}_neutral"].to_numpy(dtype=float)
        )
        step_pct = _float_column(trafo, f"{prefix}_step_percent")
        step_deg = _float_column(trafo, f"{prefix}_step_degree")
        for name, direction in (("hv", 1.0), ("lv", -1.0)):
            vn = vn_kv[name]
            ratio_tap = ((kind == "Ratio") | (kind == "Symmetrical")) & (side == name)
            ideal_tap = (kind == "Ideal") & (side == name)
            # a tap that changes magnitude and angle of the winding voltage together
            du = vn * np.nan_to_num(step_pct * steps / 100.0)
            angle = np.deg2rad(np.nan_to_num(step_deg))
            along, across = vn + du * np.cos(angle), du * np.sin(angle)
            shift_deg += np.where(ratio_tap, np.rad2deg(np.arctan(direction * across / along)), 0)
            vn[ratio_tap] = np.hypot(along, across)[ratio_tap]
            # an ideal phase shifter turns the angle only
            ideal_shift = np.where(
                np.nan_to_num(step_deg) != 0,
                steps * step_deg,
                2 * np.rad2deg(np.arcsin(np.clip(steps * step_pct / 200.0, -1, 1))),
            )
            shift_deg += np.where(ideal_tap, direction * np.nan_to_num(ideal_shift), 0)
    return vn_kv["hv"], vn_kv["lv"], shift_deg


def _float_column(table: pd.DataFrame, column: str) -> np.ndarray:
    if column not in table:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)


def _trafo_t_to_pi(trafo: pd.DataFrame, vn_lv_kv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Series impedance (ohm) and total shunt admittance (S) of the pi equal to the T model.

    Both on the tapped LV winding voltage; the shunt is split equally between the two ends.
    """
    sn_mva = trafo["sn_mva"].to_numpy(dtype=float)
    parallel = trafo["parallel"].to_numpy(dtype=float)
    z_base = vn_lv_kv**2 / sn_mva
    z_abs = trafo["vk_percent"].to_numpy(dtype=float) / 100.0 * z_base
    r = trafo["vkr_percent"].to_numpy(dtype=float) / 100.0 * z_base
    z_series = (r + 1j * np.sqrt(np.maximum(z_abs**2 - r**2, 0.0))) / parallel
    g_mag = trafo["pfe_kw"].to_numpy(dtype=float) * 1e-3 / vn_lv_kv**2
    y_mag_abs = trafo["i0_percent"].to_numpy(dtype=float) / 100.0 * sn_mva / vn_lv_kv**2
    b_mag = -np.sqrt(np.maximum(y_mag_abs**2 - g_mag**2, 0.0))
    y_mag = (g_mag + 1j * b_mag) * parallel

    pi_series = z_series.astype(complex)
    pi_shunt = np.zeros(len(trafo), dtype=complex)
    has_mag = y_mag != 0
    # star (half, half, magnetising) to delta
    half = z_series[has_mag] / 2
    z_mag = 1 / y_mag[has_mag]
    star_sum = half * half + 2 * half * z_mag
    pi_series[has_mag] = star_sum / z_mag
    pi_shunt[has_mag] = 2 * half / star_sum  # each end: 1 / (star_sum / half); two ends
    return pi_series, pi_shunt
