"""The device registry of a named pandapower net: which row is a PV system, a battery, a switch.

Guesses that are not published facts (PV by name or type, customer class by words, a switch's
role from its kind and state) are listed in ``REGISTRY_ASSUMPTIONS`` so every model states them.
Import the public names from :mod:`network_models.standard`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Hashable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import pandapower as pp

from network_models._net_checks import check_names, clean, unique_labels
from network_models.errors import ModelError
from network_models.model import Assumption
from network_models.registry import (
    Bess,
    CustomerClass,
    Device,
    DeviceRegistry,
    ElementRef,
    ElementTable,
    Load,
    Meter,
    PvSystem,
    SubstationTransformer,
    SwitchDevice,
    SwitchKind,
    SwitchRole,
)

HV_MIN_KV = 30.0  # a transformer whose HV side is at least this is a substation transformer
PV_S_MVA_PER_MWP = 1.1  # inverter rating when a PV sgen gives no sn_mva

_SWITCH_KINDS = {"CB": SwitchKind.BREAKER, "LBS": SwitchKind.LOAD_BREAK_SWITCH,
                 "DS": SwitchKind.DISCONNECTOR}
# sgen "type" values that name a connection, not a technology
_UNTYPED_SGEN = {"", "nan", "none", "wye", "delta"}
_NON_PV_WORDS = ("wind", "wka", "wp", "chp", "fuel", "diesel", "gas", "bio", "hydro", "motor")

REGISTRY_ASSUMPTIONS: Mapping[str, Assumption] = MappingProxyType({
    "pv_s_mva_per_mwp": Assumption(
        value=PV_S_MVA_PER_MWP, unit="MVA/MWp",
        note="PV inverter rating where the sgen has no sn_mva"),
    "untyped_sgen_is_pv": Assumption(
        value=True, note="an sgen whose type names no technology is taken as PV; other "
        "technologies (wind, CHP, fuel cell) are registered as meters, not dispatched"),
    "load_customer_class": Assumption(
        value="by name/type", note="office/industry/data centre/commerce/residential words, CIGRE "
        "R<n> residential and CI<n> commerce, LV loads (MV/LV stations) residential, "
        "anything else commerce"),
    "substation_transformer_min_hv_kv": Assumption(
        value=HV_MIN_KV, unit="kV", note="transformers with a higher HV side are substation "
        "transformers"),
    "switch_kind": Assumption(
        value="from pandapower type", note="CB breaker, LBS load-break switch, DS disconnector "
        "(not remote-controlled), anything else load-break switch"),
})


def _slug(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]+", "_", (text or "").lower()).strip("_")


def _device_ids(prefix: str, rows: Sequence[tuple[Hashable, str | None]]) -> list[str]:
    """Stable ids ``<prefix>_<slug of name>``, falling back to ``<prefix>_<index>``."""
    slugs = [_slug(name) for _, name in rows]
    candidates = [
        None if not s else s if s.startswith(prefix + "_") else f"{prefix}_{s}" for s in slugs
    ]
    return unique_labels(candidates, [f"{prefix}_{idx}" for idx, _ in rows])


def _finite_positive(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _float(value: Any, default: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


def _first_positive(row: Any, columns: Sequence[str]) -> float | None:
    for col in columns:
        x = _finite_positive(abs(row[col])) if col in row and row[col] is not None else None
        if x is not None:
            return x
    return None


def _bus_name(net: pp.pandapowerNet, bus: Any, source: str, table: str, row: Any) -> str:
    if bus not in net.bus.index:
        raise ModelError(
            f"bus {bus} does not exist: expected an index of the bus table",
            source=source, element=f"{table} {row}", field="bus",
        )
    return str(net.bus.at[bus, "name"])


def _is_pv(name: str | None, tech: str | None) -> bool:
    tech_l = (tech or "").lower()
    if "pv" in tech_l or "solar" in tech_l or "photovolt" in tech_l:
        return True
    if tech_l not in _UNTYPED_SGEN:
        return False
    words = re.findall(r"[a-z]+", (name or "").lower())
    return not any(w.startswith(nw) for w in words for nw in _NON_PV_WORDS)


def _customer_class(name: str | None, tech: str | None) -> CustomerClass:
    text = f"{name or ''} {tech or ''}".lower()
    if "data" in text and "cent" in text:
        return CustomerClass.DATA_CENTRE
    if "office" in text:
        return CustomerClass.OFFICE
    if "industr" in text:
        return CustomerClass.LIGHT_INDUSTRY
    if "commerc" in text or re.search(r"\bci\d+\b", text):
        return CustomerClass.COMMERCE
    if re.search(r"resid|household|\bh0\b|\br\d+\b|\blv load\b|mv/lv station", text):
        return CustomerClass.RESIDENTIAL
    return CustomerClass.COMMERCE


def _sgen_devices(
    net: pp.pandapowerNet, source: str, pv_types: Collection[str] = ()
) -> list[Device]:
    rows = list(net.sgen.iterrows())
    pv_rows = [(i, r) for i, r in rows if clean(r.get("type")) in pv_types
               or _is_pv(clean(r.get("name")), clean(r.get("type")))]
    pv_set = {i for i, _ in pv_rows}
    dg_rows = [(i, r) for i, r in rows if i not in pv_set]
    devices: list[Device] = []
    pv_ids = _device_ids("pv", [(i, clean(r.get("name"))) for i, r in pv_rows])
    for dev_id, (idx, row) in zip(pv_ids, pv_rows, strict=True):
        p_mwp = _first_positive(row, ("p_mw", "sn_mva"))
        if p_mwp is None:
            raise ModelError(
                "PV sgen without a rating: expected p_mw > 0 or sn_mva > 0",
                source=source, element=clean(row.get("name")), row=int(idx), field="p_mw",
            )
        s_mva = _finite_positive(row.get("sn_mva")) or PV_S_MVA_PER_MWP * p_mwp
        devices.append(PvSystem(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "sgen", idx),
            element=ElementRef(table=ElementTable.SGEN, index=int(idx)),
            p_mwp=p_mwp, s_mva=max(s_mva, p_mwp), description=clean(row.get("name")) or "",
        ))
    dg_ids = _device_ids("dg", [(i, clean(r.get("name"))) for i, r in dg_rows])
    for dev_id, (idx, row) in zip(dg_ids, dg_rows, strict=True):
        devices.append(Meter(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "sgen", idx),
            element=ElementRef(table=ElementTable.SGEN, index=int(idx)),
            measured=clean(row.get("name")) or f"sgen {idx}",
            description=f"{clean(row.get('type')) or 'generator'} of {row['p_mw']:g} MW: "
            "metered, not dispatched",
        ))
    return devices


def _bess_devices(net: pp.pandapowerNet, source: str) -> list[Device]:
    rows = list(net.storage.iterrows())
    ids = _device_ids("bess", [(i, clean(r.get("name"))) for i, r in rows])
    devices: list[Device] = []
    for dev_id, (idx, row) in zip(ids, rows, strict=True):
        name = clean(row.get("name"))
        e_mwh = _finite_positive(row.get("max_e_mwh"))
        if e_mwh is None:
            raise ModelError(
                f"storage energy is {row.get('max_e_mwh')}: expected a finite max_e_mwh > 0",
                source=source, element=name, row=int(idx), field="max_e_mwh",
            )
        p_mw = _first_positive(row, ("max_p_mw", "sn_mva", "p_mw"))
        if p_mw is None:
            raise ModelError(
                "storage without a power rating: expected max_p_mw, sn_mva or p_mw > 0",
                source=source, element=name, row=int(idx), field="max_p_mw",
            )
        soc_min = min(max(_float(row.get("min_e_mwh"), 0.0) / e_mwh, 0.0), 1.0)
        soc_init = _float(row.get("soc_percent"), 50.0 * (soc_min + 1.0)) / 100.0
        devices.append(Bess(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "storage", idx),
            element=ElementRef(table=ElementTable.STORAGE, index=int(idx)),
            p_mw=p_mw, e_mwh=e_mwh, s_mva=max(_finite_positive(row.get("sn_mva")) or 0.0, p_mw),
            soc_min_frac=soc_min, soc_max_frac=1.0, soc_init_frac=min(max(soc_init, soc_min), 1.0),
            description=name or "",
        ))
    return devices


def _load_devices(net: pp.pandapowerNet, source: str) -> list[Device]:
    rows = list(net.load.iterrows())
    ids = _device_ids("load", [(i, clean(r.get("name"))) for i, r in rows])
    devices: list[Device] = []
    for dev_id, (idx, row) in zip(ids, rows, strict=True):
        p, q = float(row["p_mw"]), float(row["q_mvar"])
        s = math.hypot(p, q)
        name = clean(row.get("name"))
        devices.append(Load(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "load", idx),
            element=ElementRef(table=ElementTable.LOAD, index=int(idx)),
            customer_class=_customer_class(name, clean(row.get("type"))),
            p_peak_mw=p, power_factor=abs(p) / s if s > 0 else 1.0, description=name or "",
        ))
    return devices


def _switched_element(net: pp.pandapowerNet, row: Any, idx: Any, source: str) -> str:
    table = {"l": "line", "t": "trafo", "t3": "trafo3w", "b": "bus"}.get(str(row["et"]))
    if table is None or row["element"] not in net[table].index:
        raise ModelError(
            f"switch element ({row['et']!r}, {row['element']}) does not exist: expected et in "
            "l/t/t3/b and an index of that table",
            source=source, element=clean(row.get("name")), row=int(idx), field="element",
        )
    return clean(net[table].at[row["element"], "name"]) or f"{table} {row['element']}"


def _switch_role(row: Any, kind: SwitchKind) -> SwitchRole:
    if row["et"] in ("t", "t3"):
        return SwitchRole.TRANSFORMER_BREAKER
    if not bool(row["closed"]):
        return SwitchRole.NORMALLY_OPEN_POINT
    if row["et"] == "l" and kind == SwitchKind.BREAKER:
        return SwitchRole.FEEDER_BREAKER
    return SwitchRole.SECTIONALISER


def _switch_devices(
    net: pp.pandapowerNet, source: str, roles: Mapping[str, SwitchRole]
) -> list[Device]:
    rows = list(net.switch.iterrows())
    ids = _device_ids("sw", [(i, clean(r.get("name"))) for i, r in rows])
    devices: list[Device] = []
    for dev_id, (idx, row) in zip(ids, rows, strict=True):
        name = str(row["name"])
        kind = _SWITCH_KINDS.get(str(row.get("type")).upper(), SwitchKind.LOAD_BREAK_SWITCH)
        devices.append(SwitchDevice(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "switch", idx),
            element=ElementRef(table=ElementTable.SWITCH, index=int(idx)),
            switch_kind=kind, role=roles.get(name, _switch_role(row, kind)),
            switched_element=_switched_element(net, row, idx, source),
            normally_closed=bool(row["closed"]),
            remote_controlled=kind != SwitchKind.DISCONNECTOR, description=name,
        ))
    return devices


def hv_trafos(net: pp.pandapowerNet) -> list[tuple[Any, Any]]:
    return [(i, r) for i, r in net.trafo.iterrows() if float(r["vn_hv_kv"]) >= HV_MIN_KV]


def _grid_devices(net: pp.pandapowerNet, source: str) -> list[Device]:
    trafos = hv_trafos(net)
    tr_ids = _device_ids("tr", [(i, str(r["name"])) for i, r in trafos])
    devices: list[Device] = [
        SubstationTransformer(
            id=dev_id, bus=_bus_name(net, row["lv_bus"], source, "trafo", idx),
            element=ElementRef(table=ElementTable.TRAFO, index=int(idx)),
            sn_mva=float(row["sn_mva"]),
            hv_bus=_bus_name(net, row["hv_bus"], source, "trafo", idx),
            lv_bus=_bus_name(net, row["lv_bus"], source, "trafo", idx),
            description=str(row["name"]),
        )
        for dev_id, (idx, row) in zip(tr_ids, trafos, strict=True)
    ]
    grids = list(net.ext_grid.iterrows())
    meter_ids = _device_ids("meter", [(i, clean(r.get("name"))) for i, r in grids])
    for dev_id, (idx, row) in zip(meter_ids, grids, strict=True):
        bus = _bus_name(net, row["bus"], source, "ext_grid", idx)
        devices.append(Meter(
            id=dev_id, bus=bus, element=ElementRef(table=ElementTable.BUS, index=int(row["bus"])),
            measured=bus, description=f"grid supply point {clean(row.get('name')) or idx}",
        ))
    return devices


def registry_from_net(
    net: pp.pandapowerNet,
    *,
    source: str,
    switch_roles: Mapping[str, SwitchRole] | None = None,
    pv_sgen_types: Collection[str] = (),
) -> DeviceRegistry:
    """The device registry of a named pandapower net, one device per sgen, storage, load, switch.

    PV sgens become PvSystem (p_mwp from p_mw or sn_mva; s_mva = sn_mva, else
    ``PV_S_MVA_PER_MWP`` × p_mwp), other sgens Meters; storage becomes Bess (e_mwh = max_e_mwh,
    SoC bounds min_e/max_e to 1); HV/MV transformers SubstationTransformer; each external grid gets
    a Meter. ``switch_roles`` (by switch name) overrides the role guessed from the switch table;
    sgens whose type is one of ``pv_sgen_types`` are PV whatever their name says.
    Devices name their bus by bus name. Raises ModelError naming ``source``, row and field.
    """
    check_names(net, source)
    devices = [
        *_grid_devices(net, source),
        *_switch_devices(net, source, switch_roles or {}),
        *_sgen_devices(net, source, pv_sgen_types),
        *_bess_devices(net, source),
        *_load_devices(net, source),
    ]
    return DeviceRegistry(tuple(devices))
