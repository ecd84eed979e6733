"""Published feeders (IEEE 33-bus, CIGRE MV, MV Oberrhein) and pandapower JSON nets as GridModels.

Each loader names every bus, line, transformer and switch uniquely and derives the device registry
from the net's tables with :func:`registry_from_net`. Powers follow pandapower: MW, Mvar, MVA, MWh;
a load's ``p_mw`` is consumption, an sgen's ``p_mw`` is generation. Modelling choices that are not
published facts are listed in ``GridModel.assumptions``.

The loaders live here; completing and checking a foreign net's names and values is in
``network_models._net_checks``, deriving its registry in ``network_models._net_registry``. Import
every public name (``name_elements``, ``check_net_values``, ``registry_from_net``, ...) from here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandapower as pp
import pandapower.networks as pn

from network_models._net_checks import check_net_values, check_structure, name_elements
from network_models._net_registry import (
    HV_MIN_KV,
    PV_S_MVA_PER_MWP,
    REGISTRY_ASSUMPTIONS,
    hv_trafos,
    registry_from_net,
)
from network_models.errors import ModelError
from network_models.model import Assumption, GridModel, Site, Substation
from network_models.registry import SwitchRole

__all__ = [
    "CASE33_TIE_PAIRS",
    "HV_MIN_KV",
    "PV_S_MVA_PER_MWP",
    "case33bw",
    "check_net_values",
    "cigre_mv",
    "from_pandapower_json",
    "mv_oberrhein",
    "name_elements",
    "registry_from_net",
]

# Baran & Wu (1989), 1-based bus numbers, smaller first.
CASE33_TIE_PAIRS: tuple[tuple[int, int], ...] = ((8, 21), (9, 15), (12, 22), (18, 33), (25, 29))
CIGRE_STORAGE_HOURS = 4.0
CIGRE_STORAGE_SOC_MIN_FRAC = 0.1
CIGRE_STORAGE_SOC_INIT_PERCENT = 50.0

_JIUKE_LAT_DEG, _JIUKE_LON_DEG = 31.13, 121.32


# --- models ----------------------------------------------------------------------------------

def _substations(net: pp.pandapowerNet) -> tuple[Substation, ...]:
    by_hv: dict[Any, list[Any]] = {}
    for _, row in hv_trafos(net):
        by_hv.setdefault(row["hv_bus"], []).append(row)
    return tuple(
        Substation(
            name=f"substation {net.bus.at[hv, 'name']}",
            hv_bus=str(net.bus.at[hv, "name"]),
            sections=tuple(dict.fromkeys(str(net.bus.at[r["lv_bus"], "name"]) for r in rows)),
            transformers=tuple(str(r["name"]) for r in rows),
        )
        for hv, rows in by_hv.items()
    )


def _nominal_site(what: str) -> Site:
    return Site(name=f"{what} (nominal site: Jiuke Oasis)", latitude_deg=_JIUKE_LAT_DEG,
                longitude_deg=_JIUKE_LON_DEG)


def _model(
    name: str,
    net: pp.pandapowerNet,
    *,
    source: str,
    site: Site,
    description: str,
    assumptions: Mapping[str, Assumption] | None = None,
    switch_roles: Mapping[str, SwitchRole] | None = None,
    pv_sgen_types: Collection[str] = (),
) -> GridModel:
    name_elements(net)
    registry = registry_from_net(net, source=source, switch_roles=switch_roles,
                                 pv_sgen_types=pv_sgen_types)
    notes = {
        **REGISTRY_ASSUMPTIONS,
        "site": Assumption(value=site.name, note="the published feeder has no site; forecasts "
                           "use this one"),
        **(assumptions or {}),
    }
    return GridModel(
        name=name, net=net, registry=registry, site=site, source=source,
        substations=_substations(net), assumptions=MappingProxyType(notes),
        description=description,
    )


def case33bw() -> GridModel:
    """IEEE 33-bus feeder (Baran & Wu 1989), 12.66 kV, buses named "1".."33" as published.

    Every one of the 37 branches is a line with a load-break switch: 32 closed sectionalisers
    ``sw_<a>_<b>`` and 5 open ties ``tie_<a>_<b>`` (the published tie lines, put in service),
    so that any branch can be opened for reconfiguration.
    """
    source = "pandapower.networks.case33bw()"
    net = pn.case33bw()
    if list(net.bus.index) != list(range(33)):
        raise ModelError("expected buses indexed 0..32", source=source, element="bus")
    net.bus["name"] = [str(i + 1) for i in net.bus.index]
    pairs = {
        idx: tuple(sorted((int(r["from_bus"]) + 1, int(r["to_bus"]) + 1)))
        for idx, r in net.line.iterrows()
    }
    ties = {idx for idx in net.line.index if not net.line.at[idx, "in_service"]}
    if sorted(pairs[i] for i in ties) != sorted(CASE33_TIE_PAIRS):
        raise ModelError(
            f"out-of-service lines join {sorted(pairs[i] for i in ties)}: expected the published "
            f"ties {list(CASE33_TIE_PAIRS)}", source=source, element="line", field="in_service",
        )
    net.line["name"] = [f"line_{a}_{b}" for a, b in (pairs[i] for i in net.line.index)]
    net.line["in_service"] = True
    roles: dict[str, SwitchRole] = {}
    for idx in net.line.index:
        a, b = pairs[idx]
        name = f"tie_{a}_{b}" if idx in ties else f"sw_{a}_{b}"
        roles[name] = SwitchRole.TIE if idx in ties else SwitchRole.SECTIONALISER
        pp.create_switch(net, bus=a - 1, element=idx, et="l", closed=idx not in ties,
                         type="LBS", name=name)
    net.load["name"] = [f"load_{int(b) + 1}" for b in net.load["bus"]]
    return _model(
        "case33bw", net, source=source,
        site=Site(name="IEEE 33-bus (nominal site: Jiuke Oasis)",
                  latitude_deg=_JIUKE_LAT_DEG, longitude_deg=_JIUKE_LON_DEG),
        description="IEEE 33-bus radial feeder, Baran & Wu 1989: base-case losses 202.68 kW, "
        "minimum voltage 0.9131 pu at bus 18",
        switch_roles=roles,
        assumptions={"case33_switch_kind": Assumption(
            value="load-break switch", note="the published case has no switch data; every "
            "branch gets a remote-controlled load-break switch")},
    )


def _fill_cigre_storage(net: pp.pandapowerNet) -> dict[str, Assumption]:
    """Set the storage data that the CIGRE MV net leaves NaN (energy, SoC) or short (sn_mva)."""
    st = net.storage
    rating_mw = st["max_p_mw"].abs().where(st["max_p_mw"].notna(), st["p_mw"].abs())
    st["max_e_mwh"] = st["max_e_mwh"].fillna(CIGRE_STORAGE_HOURS * rating_mw)
    st["min_e_mwh"] = CIGRE_STORAGE_SOC_MIN_FRAC * st["max_e_mwh"]
    st["soc_percent"] = st["soc_percent"].fillna(CIGRE_STORAGE_SOC_INIT_PERCENT)
    # sn_mva 0.2 against 0.6 MW would make the inverter unable to deliver its own rating
    st["sn_mva"] = st["sn_mva"].where(st["sn_mva"] >= rating_mw, rating_mw)
    energies = ", ".join(f"{n} {e:g} MWh" for n, e in zip(st["name"], st["max_e_mwh"], strict=True))
    return {
        "cigre_storage_hours": Assumption(
            value=CIGRE_STORAGE_HOURS, unit="h",
            note="max_e_mwh = 4 h × max_p_mw (the benchmark gives no energy): "
            + energies),
        "cigre_storage_soc_min_frac": Assumption(
            value=CIGRE_STORAGE_SOC_MIN_FRAC, note="min_e_mwh = 0.1 × max_e_mwh"),
        "cigre_storage_soc_init_percent": Assumption(
            value=CIGRE_STORAGE_SOC_INIT_PERCENT, unit="%", note="initial state of charge"),
        "cigre_storage_sn_mva": Assumption(
            value="max(sn_mva, max_p_mw)", unit="MVA",
            note="the benchmark's 0.2 MVA is below the 0.6 MW battery's power"),
    }


def cigre_mv() -> GridModel:
    """CIGRE MV benchmark (TB 575) with all DER, 20 kV; storage energy set to 4 h at rated power.

    The open switches S1, S2, S3 close the two feeders into rings: they are the ties.
    """
    source = 'pandapower.networks.create_cigre_network_mv(with_der="all")'
    net = pn.create_cigre_network_mv(with_der="all")
    notes = _fill_cigre_storage(net)
    name_elements(net)
    roles = {n: SwitchRole.TIE for n, c in zip(net.switch["name"], net.switch["closed"],
                                               strict=True) if not c}
    return _model(
        "cigre_mv", net, source=source, site=_nominal_site("CIGRE MV"),
        description="CIGRE MV benchmark with PV, wind, fuel cells, CHP and two batteries",
        assumptions=notes, switch_roles=roles,
    )


def mv_oberrhein() -> GridModel:
    """MV Oberrhein: 20 kV, two 110/20 kV substations, 179 buses, 153 PV, meshed, run radially."""
    return _model(
        "mv_oberrhein", pn.mv_oberrhein(), source="pandapower.networks.mv_oberrhein()",
        site=_nominal_site("MV Oberrhein"),
        description="German 20 kV grid, 322 switches, six normally-open points",
    )


def from_pandapower_json(path: str | Path) -> GridModel:
    """A GridModel from a pandapower JSON net; names are completed, the registry derived from it.

    Raises ModelError naming the file if it is missing, unreadable or has no buses.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ModelError("no such file: expected a pandapower JSON net", source=source)
    try:
        net = pp.from_json(source)
    # pandapower raises many kinds (JSONDecodeError, KeyError, TypeError...) for a bad file
    except Exception as exc:
        raise ModelError(
            f"not a readable pandapower JSON net ({type(exc).__name__}: {exc})", source=source
        ) from exc
    if not isinstance(net, pp.pandapowerNet) or "bus" not in net or net.bus.empty:
        raise ModelError("the net has no buses: expected at least one", source=source,
                         element="bus")
    check_net_values(net, source)
    check_structure(net, source)
    return _model(path.stem, net, source=source, site=_nominal_site(path.stem),
                  description=f"pandapower net from {path.name}")
