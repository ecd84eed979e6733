"""The schema of the grid file: one pydantic model per section, every number bounded and finite.

Each model names its fields in the operator's units (kV, km, ohm/km, MW, MWh); bounds are what a
real element can physically be, so a value outside is a typing mistake. Cross-references between
elements are checked after the schema (``network_models._grid_references``). Import the names from
:mod:`network_models.grid_file`.
"""

from __future__ import annotations

import math
import zoneinfo
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from network_models.registry import CustomerClass, EvSiteType, SwitchKind, SwitchRole

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
