"""Build a pandapower net and its device registry from a validated grid file.

``build_model`` reads as a table of contents: the net's elements first (buses, grid connections,
types, transformers, lines, switches), then one small function per device kind (substation
transformer, switch, fault indicator, meter, and the ``add_*`` functions for loads, EV sites, PV
and batteries, which devices files use too), then the named structure (substations, switching
stations, microgrids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pandapower as pp

from network_models.grid_file import (
    BessSpec,
    EvSiteSpec,
    FaultIndicatorSpec,
    GridSpec,
    LineRole,
    LineTypeSpec,
    LoadSpec,
    MeterSpec,
    MicrogridSpec,
    PvSpec,
    SubstationSpec,
    SwitchingStationSpec,
    SwitchSpec,
    TransformerSpec,
    TransformerTypeSpec,
    load_grid_spec,
)
from network_models.model import (
    Assumption,
    GridModel,
    Microgrid,
    Site,
    Substation,
    SwitchingStation,
)
from network_models.registry import (
    Bess,
    Device,
    DeviceRegistry,
    ElementRef,
    ElementTable,
    EvChargingSite,
    FaultIndicator,
    Load,
    Meter,
    PvSystem,
    SubstationTransformer,
    SwitchDevice,
)

DATA_DIR = Path(__file__).parent / "data"

_PP_SWITCH_TYPE = {"breaker": "CB", "load_break_switch": "LBS", "disconnector": "DS"}


def load_grid_file(path: str | Path) -> GridModel:
    """A GridModel from a gridctl grid file (YAML)."""
    spec = load_grid_spec(path)
    return build_model(spec, source=str(path))


def load_jiuke_oasis() -> GridModel:
    """The built-in Jiuke Oasis diamond-type 10 kV grid."""
    return load_grid_file(DATA_DIR / "jiuke_oasis.yaml")


def build_model(spec: GridSpec, *, source: str) -> GridModel:
    """Turn a validated spec into a GridModel (pandapower net + registry + named structure).

    Static values in the net are design values: loads at their peak, EV sites at their connection
    limit, PV at nameplate, storage idle. Studies set the operating point they need. Elements are
    created in a fixed order (buses, grid connections, types, transformers, lines, switches, then
    the devices' loads, EV sites, PV and storage), so row indices follow the file.
    """
    net = pp.create_empty_network(name=spec.name, f_hz=50.0, sn_mva=1.0)
    bus = _create_buses(net, spec)
    _create_grid_connections(net, spec, bus)
    _create_types(net, spec)
    trafo = _create_transformers(net, spec, bus)
    line = _create_lines(net, spec, bus)
    rows = _ElementRows(bus=bus, line=line, trafo=trafo,
                        switch=_create_switches(net, spec, bus, line, trafo))
    devices: list[Device] = [
        *(_substation_transformer(t, spec, rows) for t in spec.transformers
          if t.role == "substation"),
        *(_switch_device(s, rows) for s in spec.switches),
        *(_fault_indicator(fi, rows) for fi in spec.fault_indicators),
        *(_meter(m, rows) for m in spec.meters),
        *(add_load(net, bus[ld.bus], ld) for ld in spec.loads),
        *(add_ev_site(net, bus[ev.bus], ev) for ev in spec.ev_sites),
        *(add_pv(net, bus[pv.bus], pv) for pv in spec.pv),
        *(add_bess(net, bus[b.bus], b) for b in spec.bess),
    ]
    return GridModel(
        name=spec.name,
        net=net,
        registry=DeviceRegistry(tuple(devices)),
        site=Site(**spec.site.model_dump()),
        source=source,
        substations=tuple(_substation(s) for s in spec.substations),
        switching_stations=tuple(_switching_station(s) for s in spec.switching_stations),
        microgrids=tuple(_microgrid(m) for m in spec.microgrids),
        backbone_lines=tuple(ln.name for ln in spec.lines if ln.role == LineRole.BACKBONE),
        assumptions=MappingProxyType(
            {k: Assumption(value=a.value, unit=a.unit, note=a.note)
             for k, a in spec.assumptions.items()}
        ),
        description=spec.description,
    )


@dataclass(frozen=True)
class _ElementRows:
    """pandapower row index of each named bus, line, transformer and switch of the spec."""

    bus: dict[str, int]
    line: dict[str, int]
    trafo: dict[str, int]
    switch: dict[str, int]


# --- the net: buses, grid connections, types, branches, switches -----------------------------

def _create_buses(net: pp.pandapowerNet, spec: GridSpec) -> dict[str, int]:
    """One bus per spec bus, with its geodata (km) and kind; returns name -> row."""
    bus_idx = {
        b.name: pp.create_bus(
            net, vn_kv=b.vn_kv, name=b.name, geodata=(b.x_km, b.y_km), type="b", zone=b.zone
        )
        for b in spec.buses
    }
    net.bus["kind"] = [b.kind.value for b in spec.buses]
    return bus_idx


def _create_grid_connections(net: pp.pandapowerNet, spec: GridSpec, bus: dict[str, int]) -> None:
    """An ext_grid (slack) per grid connection, with its short-circuit power for fault studies."""
    for g in spec.grid_connections:
        pp.create_ext_grid(
            net, bus[g.bus], vm_pu=g.vm_pu, name=g.name, s_sc_max_mva=g.s_sc_max_mva, rx_max=0.1
        )


def _create_types(net: pp.pandapowerNet, spec: GridSpec) -> None:
    """The file's cable and transformer types as pandapower standard types of this net."""
    for name, lt in spec.line_types.items():
        pp.create_std_type(net, _line_type(lt), name=name, element="line")
    for name, tt in spec.transformer_types.items():
        pp.create_std_type(net, _transformer_type(tt), name=name, element="trafo")


def _line_type(lt: LineTypeSpec) -> dict[str, object]:
    return {
        "r_ohm_per_km": lt.r_ohm_per_km,
        "x_ohm_per_km": lt.x_ohm_per_km,
        "c_nf_per_km": lt.c_nf_per_km,
        "max_i_ka": lt.max_i_ka,
        "type": "cs",
    }


def _transformer_type(tt: TransformerTypeSpec) -> dict[str, object]:
    return {
        "sn_mva": tt.sn_mva,
        "vn_hv_kv": tt.vn_hv_kv,
        "vn_lv_kv": tt.vn_lv_kv,
        "vk_percent": tt.vk_percent,
        "vkr_percent": tt.vkr_percent,
        "pfe_kw": tt.pfe_kw,
        "i0_percent": tt.i0_percent,
        "shift_degree": 0.0,
        "tap_side": tt.tap_side,
        "tap_neutral": tt.tap_neutral,
        "tap_min": tt.tap_min,
        "tap_max": tt.tap_max,
        "tap_step_percent": tt.tap_step_percent,
        "tap_step_degree": 0.0,
        "tap_changer_type": "Ratio" if tt.tap_step_percent > 0 else None,
    }


def _create_transformers(
    net: pp.pandapowerNet, spec: GridSpec, bus: dict[str, int]
) -> dict[str, int]:
    """Two-winding transformers at their tap (the type's neutral when the file gives none)."""
    trafo_idx = {
        t.name: pp.create_transformer(
            net,
            bus[t.hv_bus],
            bus[t.lv_bus],
            std_type=t.type,
            name=t.name,
            tap_pos=t.tap_pos
            if t.tap_pos is not None
            else spec.transformer_types[t.type].tap_neutral,
        )
        for t in spec.transformers
    }
    net.trafo["role"] = [t.role for t in spec.transformers]
    return trafo_idx


def _create_lines(net: pp.pandapowerNet, spec: GridSpec, bus: dict[str, int]) -> dict[str, int]:
    """Cables of their type and length, with their role and protection scheme."""
    line_idx = {
        ln.name: pp.create_line(
            net, bus[ln.from_bus], bus[ln.to_bus], length_km=ln.length_km, std_type=ln.type,
            name=ln.name,
        )
        for ln in spec.lines
    }
    net.line["role"] = [ln.role.value for ln in spec.lines]
    net.line["protection"] = [ln.protection for ln in spec.lines]
    return line_idx


def _create_switches(
    net: pp.pandapowerNet,
    spec: GridSpec,
    bus: dict[str, int],
    line: dict[str, int],
    trafo: dict[str, int],
) -> dict[str, int]:
    """Switches at a line end, a transformer side or between two buses, in their file state."""
    switch_idx: dict[str, int] = {}
    for s in spec.switches:
        if s.element_type == "line":
            element, et = line[s.element], "l"
        elif s.element_type == "trafo":
            element, et = trafo[s.element], "t"
        else:
            element, et = bus[s.element], "b"
        switch_idx[s.name] = pp.create_switch(
            net, bus[s.bus], element, et=et, closed=s.closed, type=_PP_SWITCH_TYPE[s.kind.value],
            name=s.name,
        )
    net.switch["role"] = [s.role.value for s in spec.switches]
    return switch_idx


# --- devices on elements that exist already: one registry record each -----------------------

def _substation_transformer(
    t: TransformerSpec, spec: GridSpec, rows: _ElementRows
) -> SubstationTransformer:
    """A substation transformer (the feeder head of the registry), seen at its LV bus."""
    return SubstationTransformer(
        id=t.name,
        bus=t.lv_bus,
        element=ElementRef(table=ElementTable.TRAFO, index=rows.trafo[t.name]),
        sn_mva=spec.transformer_types[t.type].sn_mva,
        hv_bus=t.hv_bus,
        lv_bus=t.lv_bus,
    )


def _switch_device(s: SwitchSpec, rows: _ElementRows) -> SwitchDevice:
    """A breaker, load-break switch or disconnector, with its role and normal state."""
    return SwitchDevice(
        id=s.name,
        bus=s.bus,
        element=ElementRef(table=ElementTable.SWITCH, index=rows.switch[s.name]),
        switch_kind=s.kind,
        role=s.role,
        switched_element=s.element,
        normally_closed=s.closed,
        remote_controlled=s.remote_controlled,
    )


def _fault_indicator(fi: FaultIndicatorSpec, rows: _ElementRows) -> FaultIndicator:
    """A fault passage indicator on a line, at the end at bus ``fi.bus``."""
    return FaultIndicator(
        id=fi.name,
        bus=fi.bus,
        element=ElementRef(table=ElementTable.LINE, index=rows.line[fi.line]),
        line=fi.line,
    )


def _meter(m: MeterSpec, rows: _ElementRows) -> Meter:
    """A meter on a line or a transformer."""
    ref = (
        ElementRef(table=ElementTable.LINE, index=rows.line[m.element])
        if m.element_type == "line"
        else ElementRef(table=ElementTable.TRAFO, index=rows.trafo[m.element])
    )
    return Meter(id=m.name, bus=m.bus, element=ref, measured=m.element)


# --- named structure ------------------------------------------------------------------------

def _substation(s: SubstationSpec) -> Substation:
    return Substation(
        name=s.name,
        hv_bus=s.hv_bus,
        sections=tuple(s.sections),
        transformers=tuple(s.transformers),
        bus_coupler=s.bus_coupler,
    )


def _switching_station(s: SwitchingStationSpec) -> SwitchingStation:
    return SwitchingStation(name=s.name, sections=(s.sections[0], s.sections[1]), bus_tie=s.bus_tie)


def _microgrid(m: MicrogridSpec) -> Microgrid:
    return Microgrid(
        name=m.name, breaker=m.breaker, buses=tuple(m.buses), grid_forming_bess=m.grid_forming_bess
    )


# --- devices: one pandapower element and one registry device each (grid files and devices files)

def add_load(net: pp.pandapowerNet, bus: int, ld: LoadSpec) -> Load:
    """A load at its peak (``p_peak_mw``, Q from the power factor) on bus row ``bus``."""
    q = ld.p_peak_mw * math.tan(math.acos(ld.power_factor))
    i = pp.create_load(net, bus, p_mw=ld.p_peak_mw, q_mvar=q, name=ld.name,
                       type=ld.customer_class.value)
    return Load(
        id=ld.name, bus=ld.bus, element=ElementRef(table=ElementTable.LOAD, index=i),
        customer_class=ld.customer_class, p_peak_mw=ld.p_peak_mw, power_factor=ld.power_factor,
        customers=ld.customers, priority=ld.priority, critical=ld.critical,
    )


def add_ev_site(net: pp.pandapowerNet, bus: int, ev: EvSiteSpec) -> EvChargingSite:
    """An EV charging site: a load at its connection limit ``p_site_max_kw`` on bus row ``bus``."""
    i = pp.create_load(net, bus, p_mw=ev.p_site_max_kw / 1000.0, q_mvar=0.0, name=ev.name,
                       type="ev_" + ev.site_type.value)
    return EvChargingSite(
        id=ev.name, bus=ev.bus, element=ElementRef(table=ElementTable.LOAD, index=i),
        site_type=ev.site_type, n_connectors=ev.n_connectors, p_connector_kw=ev.p_connector_kw,
        p_site_max_kw=ev.p_site_max_kw, fallback_kw_per_connector=ev.fallback_kw_per_connector,
    )


def add_pv(net: pp.pandapowerNet, bus: int, pv: PvSpec) -> PvSystem:
    """A PV system: an sgen at nameplate ``p_mwp`` (generation positive) on bus row ``bus``."""
    i = pp.create_sgen(net, bus, p_mw=pv.p_mwp, q_mvar=0.0, sn_mva=pv.s_mva, name=pv.name,
                       type="PV")
    return PvSystem(
        id=pv.name, bus=pv.bus, element=ElementRef(table=ElementTable.SGEN, index=i),
        p_mwp=pv.p_mwp, s_mva=pv.s_mva, tilt_deg=pv.tilt_deg, azimuth_deg=pv.azimuth_deg,
    )


def add_bess(net: pp.pandapowerNet, bus: int, b: BessSpec) -> Bess:
    """A battery: idle storage (``max_e_mwh`` = ``e_mwh``, SoC at its initial value)."""
    i = pp.create_storage(
        net, bus, p_mw=0.0, max_e_mwh=b.e_mwh, q_mvar=0.0, sn_mva=b.s_mva,
        soc_percent=100.0 * b.soc_init_frac, min_e_mwh=b.soc_min_frac * b.e_mwh,
        max_p_mw=b.p_mw, min_p_mw=-b.p_mw, name=b.name,
    )
    return Bess(
        id=b.name, bus=b.bus, element=ElementRef(table=ElementTable.STORAGE, index=i),
        p_mw=b.p_mw, e_mwh=b.e_mwh, s_mva=b.s_mva, soc_min_frac=b.soc_min_frac,
        soc_max_frac=b.soc_max_frac, soc_init_frac=b.soc_init_frac, eta_charge=b.eta_charge,
        eta_discharge=b.eta_discharge, island_reserve_frac=b.island_reserve_frac,
        degradation_cny_per_mwh=b.degradation_cny_per_mwh, grid_forming=b.grid_forming,
    )
