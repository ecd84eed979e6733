"""Published feeders (IEEE 33-bus, CIGRE MV, MV Oberrhein) and pandapower JSON nets as GridModels.

Each loader names every bus, line, transformer and switch uniquely and derives the device registry
from the net's tables with :func:`registry_from_net`. Powers follow pandapower: MW, Mvar, MVA, MWh;
a load's ``p_mw`` is consumption, an sgen's ``p_mw`` is generation. Modelling choices that are not
published facts are listed in ``GridModel.assumptions``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Hashable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd

from network_models.errors import ModelError
from network_models.model import Assumption, GridModel, Site, Substation
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
HV_MIN_KV = 30.0  # a transformer whose HV side is at least this is a substation transformer
PV_S_MVA_PER_MWP = 1.1  # inverter rating when a PV sgen gives no sn_mva
CIGRE_STORAGE_HOURS = 4.0
CIGRE_STORAGE_SOC_MIN_FRAC = 0.1
CIGRE_STORAGE_SOC_INIT_PERCENT = 50.0

_JIUKE_LAT_DEG, _JIUKE_LON_DEG = 31.13, 121.32
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


# --- names -----------------------------------------------------------------------------------

def _clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _unique_labels(candidates: Sequence[str | None], fallbacks: Sequence[str]) -> list[str]:
    """Keep candidates that are set and occur once; give the others their fallback, made unique."""
    counts = Counter(c for c in candidates if c is not None)
    taken = {c for c, n in counts.items() if n == 1}
    labels: list[str] = []
    for cand, fallback in zip(candidates, fallbacks, strict=True):
        if cand is not None and counts[cand] == 1:
            labels.append(cand)
            continue
        new, n = fallback, 2
        while new in taken:
            new, n = f"{fallback}_{n}", n + 1
        labels.append(new)
        taken.add(new)
    return labels


def name_elements(net: pp.pandapowerNet) -> None:
    """Give every bus, line, trafo and switch of ``net`` a unique non-empty string name, in place.

    Unique names are kept; a missing name becomes ``<table>_<index>`` and a duplicated one
    ``<name>_<index>``, so the result depends only on the net.
    """
    for table in ("bus", "line", "trafo", "switch"):
        df = net[table]
        if df.empty:
            continue
        names = [_clean(v) for v in df["name"]] if "name" in df else [None] * len(df)
        counts = Counter(n for n in names if n is not None)
        fallbacks = [
            f"{table}_{idx}" if n is None or counts[n] == 1 else f"{n}_{idx}"
            for n, idx in zip(names, df.index, strict=True)
        ]
        df["name"] = _unique_labels(names, fallbacks)


def _slug(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]+", "_", (text or "").lower()).strip("_")


def _device_ids(prefix: str, rows: Sequence[tuple[Hashable, str | None]]) -> list[str]:
    """Stable ids ``<prefix>_<slug of name>``, falling back to ``<prefix>_<index>``."""
    slugs = [_slug(name) for _, name in rows]
    candidates = [
        None if not s else s if s.startswith(prefix + "_") else f"{prefix}_{s}" for s in slugs
    ]
    return _unique_labels(candidates, [f"{prefix}_{idx}" for idx, _ in rows])


def _check_names(net: pp.pandapowerNet, source: str) -> None:
    for table in ("bus", "line", "trafo", "switch"):
        df = net[table]
        names = [_clean(v) for v in df["name"]] if "name" in df else [None] * len(df)
        if None in names or len(set(names)) != len(names):
            raise ModelError(
                "names must be unique and non-empty: call name_elements(net) first",
                source=source, element=table, field="name",
            )


# --- values ----------------------------------------------------------------------------------

# (column, lowest allowed, whether the lowest itself is allowed, what it is, unit): every row of
# these columns must hold a finite number within its bound (NaN refused too), as the power flow
# and the registry compute with them. Other columns may be NaN (pandapower's "not given"), never
# ±inf.
_REQUIRED_VALUES: Mapping[str, tuple[tuple[str, float, bool, str, str], ...]] = MappingProxyType({
    "bus": (("vn_kv", 0.0, False, "nominal voltage", "kV"),),
    "line": (
        ("length_km", 0.0, False, "length", "km"),
        ("r_ohm_per_km", 0.0, True, "resistance", "ohm/km"),
        ("x_ohm_per_km", 0.0, True, "reactance", "ohm/km"),
        ("c_nf_per_km", 0.0, True, "capacitance", "nF/km"),
        ("max_i_ka", 0.0, False, "thermal rating", "kA"),
        ("parallel", 1.0, True, "number of parallel systems", ""),
    ),
    "trafo": (
        ("sn_mva", 0.0, False, "rating", "MVA"),
        ("vn_hv_kv", 0.0, False, "HV rated voltage", "kV"),
        ("vn_lv_kv", 0.0, False, "LV rated voltage", "kV"),
        ("vk_percent", 0.0, False, "short-circuit voltage", "%"),
        ("vkr_percent", 0.0, True, "real part of the short-circuit voltage", "%"),
        ("pfe_kw", 0.0, True, "iron losses", "kW"),
        ("i0_percent", 0.0, True, "open-circuit current", "%"),
        ("shift_degree", -math.inf, False, "phase shift", "degrees"),
    ),
    "ext_grid": (
        ("vm_pu", 0.0, False, "voltage set point", "pu"),
        ("va_degree", -math.inf, False, "voltage angle", "degrees"),
    ),
    "gen": (("p_mw", -math.inf, False, "active power", "MW"),
            ("vm_pu", 0.0, False, "voltage set point", "pu")),
    "load": (("p_mw", -math.inf, False, "active power", "MW"),
             ("q_mvar", -math.inf, False, "reactive power", "Mvar")),
    "sgen": (("p_mw", -math.inf, False, "active power", "MW"),
             ("q_mvar", -math.inf, False, "reactive power", "Mvar")),
    "storage": (("p_mw", -math.inf, False, "active power", "MW"),
                ("q_mvar", -math.inf, False, "reactive power", "Mvar")),
})


def check_net_values(net: pp.pandapowerNet, source: str) -> None:
    """Refuse a net whose ratings, impedances or powers are not finite or out of bounds.

    No table may hold ±inf anywhere; the columns of :data:`_REQUIRED_VALUES` must be finite
    (NaN refused) and within their bound. The error names ``source``, the table, row and column.
    """
    for table in list(net):
        frame = net[table]
        if table.startswith(("res_", "_")) or not isinstance(frame, pd.DataFrame) or frame.empty:
            continue
        required = {c: (low, closed, what, unit) for c, low, closed, what, unit in
                    _REQUIRED_VALUES.get(table, ())}
        for column in frame.columns:
            values = frame[column]
            if column in required:
                low, closed, what, unit = required[column]
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                with np.errstate(invalid="ignore"):
                    inside = np.isfinite(numbers) & (numbers >= low if closed else numbers > low)
                bound = (f" in {unit}" if math.isinf(low)
                         else f" {'≥' if closed else '>'} {low:g} {unit}".rstrip())
                expected = f"a finite {what}{bound}"
            elif pd.api.types.is_float_dtype(values):
                numbers = values.to_numpy(dtype=float)
                inside = ~np.isinf(numbers)
                expected = "a finite number (or none)"
            else:
                continue
            if inside.all():
                continue
            pos = int(np.flatnonzero(~inside)[0])
            row = frame.index[pos]
            name = _clean(frame["name"].iloc[pos]) if "name" in frame else None
            raise ModelError(
                f"{_shown(values.iloc[pos])}: expected {expected}", source=source,
                element=f"{table} table" + (f" {name}" if name else ""), row=int(row),
                field=str(column),
            )


# below this a line's admittance overflows the power flow's arithmetic; real lines have 10 mΩ+
MIN_LINE_IMPEDANCE_OHM = 1e-6


def _check_structure(net: pp.pandapowerNet, source: str) -> None:
    """A grid gridctl can run: fed by a grid supply point, with a branch to carry its power."""
    grids = net.ext_grid if "ext_grid" in net else pd.DataFrame()
    if grids.empty or not grids["in_service"].astype(bool).any():
        raise ModelError(
            "no grid supply point in service: expected an ext_grid (the substation's or "
            "upstream grid's connection) in service", source=source, element="ext_grid table")
    line = net.line
    if not line.empty:
        ohm = (np.hypot(line["r_ohm_per_km"], line["x_ohm_per_km"]) * line["length_km"]
               / line["parallel"]).to_numpy(dtype=float)
        tiny = ohm < MIN_LINE_IMPEDANCE_OHM
        if tiny.any():
            pos = int(np.flatnonzero(tiny)[0])
            raise ModelError(
                f"series impedance {ohm[pos]:.3g} ohm: expected at least "
                f"{MIN_LINE_IMPEDANCE_OHM:g} ohm (r_ohm_per_km, x_ohm_per_km, length_km; a "
                "connection without impedance is a bus-bus switch)", source=source,
                element="line table", row=int(line.index[pos]), field="length_km")
    branches = sum(len(net[t]) for t in ("line", "trafo", "trafo3w") if t in net)
    if not branches:
        raise ModelError(
            "no line or transformer: expected a grid with at least one branch to plan",
            source=source, element="line table")


def _shown(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


# --- registry --------------------------------------------------------------------------------

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
    pv_rows = [(i, r) for i, r in rows if _clean(r.get("type")) in pv_types
               or _is_pv(_clean(r.get("name")), _clean(r.get("type")))]
    pv_set = {i for i, _ in pv_rows}
    dg_rows = [(i, r) for i, r in rows if i not in pv_set]
    devices: list[Device] = []
    pv_ids = _device_ids("pv", [(i, _clean(r.get("name"))) for i, r in pv_rows])
    for dev_id, (idx, row) in zip(pv_ids, pv_rows, strict=True):
        p_mwp = _first_positive(row, ("p_mw", "sn_mva"))
        if p_mwp is None:
            raise ModelError(
                "PV sgen without a rating: expected p_mw > 0 or sn_mva > 0",
                source=source, element=_clean(row.get("name")), row=int(idx), field="p_mw",
            )
        s_mva = _finite_positive(row.get("sn_mva")) or PV_S_MVA_PER_MWP * p_mwp
        devices.append(PvSystem(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "sgen", idx),
            element=ElementRef(table=ElementTable.SGEN, index=int(idx)),
            p_mwp=p_mwp, s_mva=max(s_mva, p_mwp), description=_clean(row.get("name")) or "",
        ))
    dg_ids = _device_ids("dg", [(i, _clean(r.get("name"))) for i, r in dg_rows])
    for dev_id, (idx, row) in zip(dg_ids, dg_rows, strict=True):
        devices.append(Meter(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "sgen", idx),
            element=ElementRef(table=ElementTable.SGEN, index=int(idx)),
            measured=_clean(row.get("name")) or f"sgen {idx}",
            description=f"{_clean(row.get('type')) or 'generator'} of {row['p_mw']:g} MW: "
            "metered, not dispatched",
        ))
    return devices


def _bess_devices(net: pp.pandapowerNet, source: str) -> list[Device]:
    rows = list(net.storage.iterrows())
    ids = _device_ids("bess", [(i, _clean(r.get("name"))) for i, r in rows])
    devices: list[Device] = []
    for dev_id, (idx, row) in zip(ids, rows, strict=True):
        name = _clean(row.get("name"))
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
    ids = _device_ids("load", [(i, _clean(r.get("name"))) for i, r in rows])
    devices: list[Device] = []
    for dev_id, (idx, row) in zip(ids, rows, strict=True):
        p, q = float(row["p_mw"]), float(row["q_mvar"])
        s = math.hypot(p, q)
        name = _clean(row.get("name"))
        devices.append(Load(
            id=dev_id, bus=_bus_name(net, row["bus"], source, "load", idx),
            element=ElementRef(table=ElementTable.LOAD, index=int(idx)),
            customer_class=_customer_class(name, _clean(row.get("type"))),
            p_peak_mw=p, power_factor=abs(p) / s if s > 0 else 1.0, description=name or "",
        ))
    return devices


def _switched_element(net: pp.pandapowerNet, row: Any, idx: Any, source: str) -> str:
    table = {"l": "line", "t": "trafo", "t3": "trafo3w", "b": "bus"}.get(str(row["et"]))
    if table is None or row["element"] not in net[table].index:
        raise ModelError(
            f"switch element ({row['et']!r}, {row['element']}) does not exist: expected et in "
            "l/t/t3/b and an index of that table",
            source=source, element=_clean(row.get("name")), row=int(idx), field="element",
        )
    return _clean(net[table].at[row["element"], "name"]) or f"{table} {row['element']}"


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
    ids = _device_ids("sw", [(i, _clean(r.get("name"))) for i, r in rows])
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


def _hv_trafos(net: pp.pandapowerNet) -> list[tuple[Any, Any]]:
    return [(i, r) for i, r in net.trafo.iterrows() if float(r["vn_hv_kv"]) >= HV_MIN_KV]


def _grid_devices(net: pp.pandapowerNet, source: str) -> list[Device]:
    trafos = _hv_trafos(net)
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
    meter_ids = _device_ids("meter", [(i, _clean(r.get("name"))) for i, r in grids])
    for dev_id, (idx, row) in zip(meter_ids, grids, strict=True):
        bus = _bus_name(net, row["bus"], source, "ext_grid", idx)
        devices.append(Meter(
            id=dev_id, bus=bus, element=ElementRef(table=ElementTable.BUS, index=int(row["bus"])),
            measured=bus, description=f"grid supply point {_clean(row.get('name')) or idx}",
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
    _check_names(net, source)
    devices = [
        *_grid_devices(net, source),
        *_switch_devices(net, source, switch_roles or {}),
        *_sgen_devices(net, source, pv_sgen_types),
        *_bess_devices(net, source),
        *_load_devices(net, source),
    ]
    return DeviceRegistry(tuple(devices))


# --- models ----------------------------------------------------------------------------------

def _substations(net: pp.pandapowerNet) -> tuple[Substation, ...]:
    by_hv: dict[Any, list[Any]] = {}
    for _, row in _hv_trafos(net):
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
    _check_structure(net, source)
    return _model(path.stem, net, source=source, site=_nominal_site(path.stem),
                  description=f"pandapower net from {path.name}")

