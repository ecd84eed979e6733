"""The declarative grid file: its schema, validated on load with errors that name what is wrong.

A grid file (YAML) lists buses, cable and transformer types, lines, transformers, switches, fault
indicators, meters, loads, PV, BESS, EV charging sites and the named structure (substations,
switching stations, microgrids). Elements refer to each other by name. ``load_grid_spec`` returns
the validated spec; ``network_models.builder`` turns it into a pandapower net and device registry.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from network_models.errors import ModelError
from network_models.registry import CustomerClass, EvSiteType, SwitchKind, SwitchRole
from network_models.yaml_file import read_yaml

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
# What a cable or line can physically be, generously (from LV service cables to HV overhead
# lines): a value outside is a typing mistake (a unit, a decimal point), and at the extremes the
# power flow's arithmetic overflows or underflows.
OhmPerKm = Annotated[float, Field(ge=1e-4, le=100)]  # 1,000 mm² copper 0.018, 1.5 mm² 12
Kilometres = Annotated[float, Field(ge=1e-3, le=1000)]  # 1 m to 1,000 km
Kilovolts = Annotated[float, Field(gt=0, le=1200)]  # up to the highest lines in service, 1,100 kV
Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")]


class _Spec(BaseModel):
    # every number of a grid is a finite one: .inf or .nan in a rating or an impedance would
    # pass "> 0" and come out of the power flow as NaN
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BusKind(StrEnum):
    HV = "hv"
    SUBSTATION_SECTION = "substation_section"
    STATION_SECTION = "station_section"
    RMU = "rmu"
    LV = "lv"
    MICROGRID = "microgrid"
    OTHER = "other"


class LineRole(StrEnum):
    BACKBONE = "backbone"
    FEEDER = "feeder"
    SERVICE = "service"


class SiteSpec(_Spec):
    name: str
    latitude_deg: Annotated[float, Field(ge=-90, le=90)]
    longitude_deg: Annotated[float, Field(ge=-180, le=180)]
    # from the Dead Sea shore to the highest towns: what pvlib's clear-sky model is for
    altitude_m: Annotated[float, Field(ge=-450, le=6000)] = 0.0
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as "
                             "Asia/Shanghai") from None
        return name


class AssumptionSpec(_Spec):
    value: Any
    unit: str = ""
    note: str = ""

    @field_validator("value")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value}: expected a finite number")
        return value


class LineTypeSpec(_Spec):
    r_ohm_per_km: OhmPerKm
    x_ohm_per_km: OhmPerKm
    c_nf_per_km: Annotated[float, Field(ge=0, le=10_000)]  # cables 150-1,000 nF/km
    max_i_ka: Annotated[float, Field(gt=0, le=10)]  # the largest cables carry about 3 kA
    note: str = ""


class TransformerTypeSpec(_Spec):
    sn_mva: Positive
    vn_hv_kv: Kilovolts
    vn_lv_kv: Kilovolts
    vk_percent: Annotated[float, Field(gt=0, lt=100)]  # percent of the rated voltage
    vkr_percent: NonNegative
    pfe_kw: NonNegative
    i0_percent: Annotated[float, Field(ge=0, lt=100)]  # percent of the rated current
    tap_side: Literal["hv", "lv"] = "hv"
    tap_neutral: int = 0
    tap_min: int = 0
    tap_max: int = 0
    tap_step_percent: NonNegative = 0.0
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> TransformerTypeSpec:
        if self.vn_lv_kv >= self.vn_hv_kv:
            raise ValueError("vn_lv_kv must be below vn_hv_kv")
        if self.vkr_percent >= self.vk_percent:
            raise ValueError("vkr_percent must be below vk_percent")
        if not self.tap_min <= self.tap_neutral <= self.tap_max:
            raise ValueError("expected tap_min <= tap_neutral <= tap_max")
        return self


class GridConnectionSpec(_Spec):
    name: Name
    bus: Name
    vm_pu: Annotated[float, Field(gt=0.8, lt=1.2)] = 1.0
    s_sc_max_mva: Positive = 5000.0


class BusSpec(_Spec):
    name: Name
    vn_kv: Kilovolts
    x_km: float
    y_km: float
    kind: BusKind = BusKind.OTHER
    zone: str = ""


class TransformerSpec(_Spec):
    name: Name
    type: str
    hv_bus: Name
    lv_bus: Name
    role: Literal["substation", "distribution"]
    tap_pos: int | None = None


class LineSpec(_Spec):
    name: Name
    type: str
    from_bus: Name
    to_bus: Name
    length_km: Kilometres
    role: LineRole
    protection: Literal["line_differential", "feeder_overcurrent"]


class SwitchSpec(_Spec):
    name: Name
    bus: Name
    element: Name
    element_type: Literal["line", "trafo", "bus"]
    kind: SwitchKind
    role: SwitchRole
    closed: bool
    remote_controlled: bool = True


class FaultIndicatorSpec(_Spec):
    name: Name
    line: Name
    bus: Name


class MeterSpec(_Spec):
    name: Name
    bus: Name
    element: Name
    element_type: Literal["line", "trafo"]


class LoadSpec(_Spec):
    name: Name
    bus: Name
    customer_class: CustomerClass
    p_peak_mw: Positive
    power_factor: Annotated[float, Field(gt=0, le=1)] = 0.95
    customers: Annotated[int, Field(ge=1)] = 1
    priority: Annotated[int, Field(ge=1, le=5)] = 3
    critical: bool = False


class PvSpec(_Spec):
    name: Name
    bus: Name
    p_mwp: Positive
    s_mva: Positive
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 20.0
    azimuth_deg: Annotated[float, Field(ge=0, lt=360)] = 180.0

    @model_validator(mode="after")
    def _check(self) -> PvSpec:
        if self.s_mva < self.p_mwp * 0.8:
            raise ValueError("s_mva (inverter rating) must be at least 0.8 x p_mwp")
        return self


class BessSpec(_Spec):
    name: Name
    bus: Name
    p_mw: Positive
    e_mwh: Positive
    s_mva: Positive
    soc_min_frac: Fraction = 0.1
    soc_max_frac: Fraction = 0.95
    soc_init_frac: Fraction = 0.5
    eta_charge: Annotated[float, Field(gt=0, le=1)] = 0.95
    eta_discharge: Annotated[float, Field(gt=0, le=1)] = 0.95
    island_reserve_frac: Fraction = 0.0
    degradation_cny_per_mwh: NonNegative = 50.0
    grid_forming: bool = False

    @model_validator(mode="after")
    def _check(self) -> BessSpec:
        if not self.soc_min_frac < self.soc_max_frac:
            raise ValueError("expected soc_min_frac < soc_max_frac")
        if not self.soc_min_frac <= self.soc_init_frac <= self.soc_max_frac:
            raise ValueError("expected soc_min_frac <= soc_init_frac <= soc_max_frac")
        if self.s_mva < self.p_mw:
            raise ValueError("s_mva must be at least p_mw")
        return self


class EvSiteSpec(_Spec):
    name: Name
    bus: Name
    site_type: EvSiteType
    n_connectors: Annotated[int, Field(ge=1)]
    p_connector_kw: Positive
    p_site_max_kw: Positive
    fallback_kw_per_connector: NonNegative = 0.0

    @model_validator(mode="after")
    def _check(self) -> EvSiteSpec:
        if self.fallback_kw_per_connector > self.p_connector_kw:
            raise ValueError("fallback_kw_per_connector must not exceed p_connector_kw")
        return self


class SubstationSpec(_Spec):
    name: Name
    hv_bus: Name
    sections: list[Name]
    transformers: list[Name]
    bus_coupler: Name | None = None


class SwitchingStationSpec(_Spec):
    name: Name
    sections: Annotated[list[Name], Field(min_length=2, max_length=2)]
    bus_tie: Name


class MicrogridSpec(_Spec):
    name: Name
    breaker: Name
    buses: list[Name]
    grid_forming_bess: Name


class GridSpec(_Spec):
    """A whole grid file."""

    schema_version: Literal[1]
    name: Name
    description: str = ""
    site: SiteSpec
    assumptions: dict[str, AssumptionSpec] = {}
    line_types: dict[str, LineTypeSpec]
    transformer_types: dict[str, TransformerTypeSpec] = {}
    grid_connections: Annotated[list[GridConnectionSpec], Field(min_length=1)]
    substations: list[SubstationSpec] = []
    switching_stations: list[SwitchingStationSpec] = []
    microgrids: list[MicrogridSpec] = []
    buses: Annotated[list[BusSpec], Field(min_length=1)]
    transformers: list[TransformerSpec] = []
    lines: list[LineSpec] = []
    switches: list[SwitchSpec] = []
    fault_indicators: list[FaultIndicatorSpec] = []
    meters: list[MeterSpec] = []
    loads: list[LoadSpec] = []
    pv: list[PvSpec] = []
    bess: list[BessSpec] = []
    ev_sites: list[EvSiteSpec] = []


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid file; a problem raises ``ModelError`` naming where it is."""
    path = Path(path)
    source = str(path)
    raw = read_yaml(path, expected="a gridctl grid file (YAML)", error=ModelError)
    if not isinstance(raw, dict):
        raise ModelError("expected a mapping of sections at the top level", source=source)
    try:
        spec = GridSpec.model_validate(raw)
    except ValidationError as exc:
        raise _model_error_from_validation(exc, raw, source) from None
    check_references(spec, source)
    return spec


def _model_error_from_validation(exc: ValidationError, raw: dict, source: str) -> ModelError:
    err = exc.errors()[0]
    loc = list(err["loc"])
    element, field = None, None
    # loc: ("lines", 12, "length_km"), ("site", "latitude_deg") or ("line_types", name, field)
    if loc:
        section = loc[0]
        if len(loc) >= 2 and isinstance(loc[1], int):
            item = raw.get(section, [])[loc[1]] if isinstance(raw.get(section), list) else None
            name = item.get("name") if isinstance(item, dict) else None
            element = f"{section}[{loc[1]}]" + (f" {name}" if name else "")
            field = ".".join(str(p) for p in loc[2:]) or None
        elif len(loc) >= 2 and section in ("line_types", "transformer_types", "assumptions"):
            element = f"{section} {loc[1]}"
            field = ".".join(str(p) for p in loc[2:]) or None
        else:
            field = ".".join(str(p) for p in loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "missing: this field is required"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif "input" in err and err["type"] not in ("value_error",):
        msg = f"{msg} (got {err['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''} after this one)"
    return ModelError(msg, source=source, element=element, field=field)


def _unique(items: Iterable[Any], table: str, source: str) -> set[str]:
    seen: set[str] = set()
    for it in items:
        if it.name in seen:
            raise ModelError(
                "duplicate name", source=source, element=f"{table} {it.name}", field="name"
            )
        seen.add(it.name)
    return seen


def check_references(spec: GridSpec, source: str) -> None:
    """Every name an element refers to exists, and names are unique within their table."""
    buses = _unique(spec.buses, "buses", source)
    lines = _unique(spec.lines, "lines", source)
    trafos = _unique(spec.transformers, "transformers", source)
    switches = _unique(spec.switches, "switches", source)
    bess = _unique(spec.bess, "bess", source)
    for table in ("grid_connections", "fault_indicators", "meters", "loads", "pv", "ev_sites"):
        _unique(getattr(spec, table), table, source)
    device_names: dict[str, str] = {}
    for table in ("switches", "fault_indicators", "meters", "loads", "pv", "bess", "ev_sites"):
        for it in getattr(spec, table):
            if it.name in device_names:
                raise ModelError(
                    f"name already used by {device_names[it.name]}: device names must be unique",
                    source=source,
                    element=f"{table} {it.name}",
                    field="name",
                )
            device_names[it.name] = table

    def need(ok: bool, table: str, name: str, field: str, what: str) -> None:
        if not ok:
            raise ModelError(what, source=source, element=f"{table} {name}", field=field)

    def bus_ref(table: str, name: str, field: str, bus: str) -> None:
        need(bus in buses, table, name, field, f"unknown bus {bus!r}")

    if not spec.lines and not spec.transformers:
        raise ModelError("no line or transformer: expected a grid with at least one branch",
                         source=source, field="lines")
    vn = {b.name: b.vn_kv for b in spec.buses}
    for g in spec.grid_connections:
        bus_ref("grid_connections", g.name, "bus", g.bus)
    line_by_name = {ln.name: ln for ln in spec.lines}
    for ln in spec.lines:
        need(ln.type in spec.line_types, "lines", ln.name, "type", f"unknown line type {ln.type!r}")
        bus_ref("lines", ln.name, "from_bus", ln.from_bus)
        bus_ref("lines", ln.name, "to_bus", ln.to_bus)
        need(ln.from_bus != ln.to_bus, "lines", ln.name, "to_bus", "a line must join two buses")
        need(
            vn[ln.from_bus] == vn[ln.to_bus],
            "lines",
            ln.name,
            "to_bus",
            "both ends of a line must have the same nominal voltage",
        )
    trafo_by_name = {t.name: t for t in spec.transformers}
    for t in spec.transformers:
        need(
            t.type in spec.transformer_types,
            "transformers",
            t.name,
            "type",
            f"unknown transformer type {t.type!r}",
        )
        bus_ref("transformers", t.name, "hv_bus", t.hv_bus)
        bus_ref("transformers", t.name, "lv_bus", t.lv_bus)
        tt = spec.transformer_types[t.type]
        for field, bus, v in (("hv_bus", t.hv_bus, tt.vn_hv_kv), ("lv_bus", t.lv_bus, tt.vn_lv_kv)):
            need(
                abs(vn[bus] - v) <= 0.15 * v,
                "transformers",
                t.name,
                field,
                f"bus {bus!r} is {vn[bus]} kV but the type's winding is {v} kV",
            )
        if t.tap_pos is not None:
            need(
                tt.tap_min <= t.tap_pos <= tt.tap_max,
                "transformers",
                t.name,
                "tap_pos",
                f"expected a tap between {tt.tap_min} and {tt.tap_max}",
            )
    for s in spec.switches:
        bus_ref("switches", s.name, "bus", s.bus)
        if s.element_type == "line":
            need(s.element in lines, "switches", s.name, "element", f"unknown line {s.element!r}")
            ln = line_by_name[s.element]
            need(
                s.bus in (ln.from_bus, ln.to_bus),
                "switches",
                s.name,
                "bus",
                f"bus {s.bus!r} is not an end of line {s.element!r}",
            )
        elif s.element_type == "trafo":
            need(
                s.element in trafos,
                "switches",
                s.name,
                "element",
                f"unknown transformer {s.element!r}",
            )
            t = trafo_by_name[s.element]
            need(
                s.bus in (t.hv_bus, t.lv_bus),
                "switches",
                s.name,
                "bus",
                f"bus {s.bus!r} is not a side of transformer {s.element!r}",
            )
        else:
            need(s.element in buses, "switches", s.name, "element", f"unknown bus {s.element!r}")
            need(s.element != s.bus, "switches", s.name, "element", "a bus switch joins two buses")
    for fi in spec.fault_indicators:
        need(fi.line in lines, "fault_indicators", fi.name, "line", f"unknown line {fi.line!r}")
        ln = line_by_name[fi.line]
        need(
            fi.bus in (ln.from_bus, ln.to_bus),
            "fault_indicators",
            fi.name,
            "bus",
            f"bus {fi.bus!r} is not an end of line {fi.line!r}",
        )
    for m in spec.meters:
        bus_ref("meters", m.name, "bus", m.bus)
        known = lines if m.element_type == "line" else trafos
        need(
            m.element in known,
            "meters",
            m.name,
            "element",
            f"unknown {m.element_type} {m.element!r}",
        )
    for table in ("loads", "pv", "bess", "ev_sites"):
        for it in getattr(spec, table):
            bus_ref(table, it.name, "bus", it.bus)
    for sub in spec.substations:
        bus_ref("substations", sub.name, "hv_bus", sub.hv_bus)
        for b in sub.sections:
            bus_ref("substations", sub.name, "sections", b)
        for t in sub.transformers:
            need(t in trafos, "substations", sub.name, "transformers", f"unknown transformer {t!r}")
        if sub.bus_coupler is not None:
            need(
                sub.bus_coupler in switches,
                "substations",
                sub.name,
                "bus_coupler",
                f"unknown switch {sub.bus_coupler!r}",
            )
    for st in spec.switching_stations:
        for b in st.sections:
            bus_ref("switching_stations", st.name, "sections", b)
        need(
            st.bus_tie in switches,
            "switching_stations",
            st.name,
            "bus_tie",
            f"unknown switch {st.bus_tie!r}",
        )
    for mg in spec.microgrids:
        need(
            mg.breaker in switches,
            "microgrids",
            mg.name,
            "breaker",
            f"unknown switch {mg.breaker!r}",
        )
        for b in mg.buses:
            bus_ref("microgrids", mg.name, "buses", b)
        need(
            mg.grid_forming_bess in bess,
            "microgrids",
            mg.name,
            "grid_forming_bess",
            f"unknown BESS {mg.grid_forming_bess!r}",
        )
