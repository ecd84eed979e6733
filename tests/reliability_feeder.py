"""A small 10 kV feeder for the reliability tests: three ring-main units below one substation
section, written as a gridctl grid file; with ``alternative`` its far end joins the other
section through a normally-open point (an open loop), without it the feeder is radial."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

CUSTOMERS = {"R1": 100, "R2": 50, "R3": 10}
CABLE_KM = {"F_0": 1.0, "F_1": 0.5, "F_2": 0.25, "F_3": 0.5}


def feeder_file(folder: Path, *, alternative: bool) -> Path:
    rmus = list(CUSTOMERS)
    buses = [{"name": "S_110kV", "vn_kv": 110, "kind": "hv"},
             {"name": "S_I", "vn_kv": 10, "kind": "substation_section"},
             {"name": "S_II", "vn_kv": 10, "kind": "substation_section"}]
    buses += [{"name": r, "vn_kv": 10, "kind": "rmu"} for r in rmus]
    buses += [{"name": f"LV_{r}", "vn_kv": 0.4, "kind": "lv"} for r in rmus]
    for k, bus in enumerate(buses):
        bus.update(x_km=0.1 * k, y_km=0.0, zone="F")
    ends = ["S_I", *rmus] + (["S_II"] if alternative else [])
    lines = [{"name": f"F_{k}", "type": "C240", "from_bus": a, "to_bus": b,
              "length_km": CABLE_KM[f"F_{k}"], "role": "feeder",
              "protection": "feeder_overcurrent"}
             for k, (a, b) in enumerate(itertools.pairwise(ends))]
    switches = [
        {"name": "CB_T1", "bus": "S_I", "element": "S_T1", "element_type": "trafo",
         "kind": "breaker", "role": "transformer_breaker", "closed": True},
        {"name": "CB_T2", "bus": "S_II", "element": "S_T2", "element_type": "trafo",
         "kind": "breaker", "role": "transformer_breaker", "closed": True},
        {"name": "BC_S", "bus": "S_I", "element": "S_II", "element_type": "bus",
         "kind": "breaker", "role": "bus_coupler", "closed": False},
    ]
    indicators = []
    for line in lines:
        for side, bus in (("a", line["from_bus"]), ("b", line["to_bus"])):
            if bus.startswith("S_"):
                role, kind = "feeder_breaker", "breaker"
            else:
                role, kind = "ring_switch", "load_break_switch"
                indicators.append({"name": f"FI_{line['name']}_{side}", "line": line["name"],
                                   "bus": bus})
            closed = True
            if line["name"] == "F_3" and side == "a":
                role, closed = "normally_open_point", False
            switches.append({"name": f"SW_{line['name']}_{side}", "bus": bus,
                             "element": line["name"], "element_type": "line", "kind": kind,
                             "role": role, "closed": closed})
    grid = {
        "schema_version": 1, "name": "test_feeder" + ("_loop" if alternative else ""),
        "description": "three RMUs on one feeder",
        "site": {"name": "test", "latitude_deg": 31.1, "longitude_deg": 121.3,
                 "timezone": "Asia/Shanghai"},
        "line_types": {"C240": {"r_ohm_per_km": 0.0754, "x_ohm_per_km": 0.09,
                                "c_nf_per_km": 390, "max_i_ka": 0.41}},
        "transformer_types": {
            "T50": {"sn_mva": 50, "vn_hv_kv": 110, "vn_lv_kv": 10.5, "vk_percent": 10.5,
                    "vkr_percent": 0.35, "pfe_kw": 35, "i0_percent": 0.3},
            "T1": {"sn_mva": 1.0, "vn_hv_kv": 10, "vn_lv_kv": 0.4, "vk_percent": 6.0,
                   "vkr_percent": 0.9, "pfe_kw": 1.4, "i0_percent": 0.6}},
        "grid_connections": [{"name": "GRID", "bus": "S_110kV", "vm_pu": 1.0,
                              "s_sc_max_mva": 5000}],
        "substations": [{"name": "S", "hv_bus": "S_110kV", "sections": ["S_I", "S_II"],
                         "transformers": ["S_T1", "S_T2"], "bus_coupler": "BC_S"}],
        "buses": buses,
        "transformers": [
            {"name": "S_T1", "type": "T50", "hv_bus": "S_110kV", "lv_bus": "S_I",
             "role": "substation"},
            {"name": "S_T2", "type": "T50", "hv_bus": "S_110kV", "lv_bus": "S_II",
             "role": "substation"},
            *({"name": f"TR_{r}", "type": "T1", "hv_bus": r, "lv_bus": f"LV_{r}",
               "role": "distribution"} for r in rmus)],
        "lines": lines,
        "switches": switches,
        "fault_indicators": indicators,
        "loads": [{"name": f"LD_{r}", "bus": f"LV_{r}", "customer_class": "residential",
                   "p_peak_mw": 0.3, "power_factor": 0.96, "customers": n, "priority": 2}
                  for r, n in CUSTOMERS.items()],
    }
    path = folder / f"{grid['name']}.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False), encoding="utf-8")
    return path
