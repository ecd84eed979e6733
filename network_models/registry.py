"""The device registry: every device the controller observes or commands, as immutable records.

The registry is the one source of truth for what exists in the field. The optimiser reads ratings
from it, the simulator builds its devices from it and the OPC UA field contract derives its address
space from the points each device exposes.

Sign conventions, everywhere in gridctl unless a name says otherwise:
- ``p_mw`` / ``q_mvar`` of a generating or storage device is what it *injects* into the grid
  (generation positive; a charging battery has negative ``p_mw``);
- ``p_charge_kw`` of an EV connector is what it draws (charging positive);
- ``p_mw`` of a load is what it consumes (consumption positive), as in pandapower.

Why one module of about 450 lines: it is the table of what exists, read as a whole (every device
kind beside its ratings and its points, the vocabulary enums they use, the container). Its parts
are declarative records with no logic to separate, and a split would scatter that table over
files without giving any of them a concern of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, TypeVar


class Access(StrEnum):
    """Whether the controller may only read a point or may also write it."""

    READ = "read"
    WRITE = "write"


class DeviceKind(StrEnum):
    PV = "pv"
    BESS = "bess"
    EV_SITE = "ev_site"
    SWITCH = "switch"
    FAULT_INDICATOR = "fault_indicator"
    METER = "meter"
    SUBSTATION_TRANSFORMER = "substation_transformer"
    LOAD = "load"


class CustomerClass(StrEnum):
    OFFICE = "office"
    LIGHT_INDUSTRY = "light_industry"
    DATA_CENTRE = "data_centre"
    COMMERCE = "commerce"
    RESIDENTIAL = "residential"


class EvSiteType(StrEnum):
    OFFICE_AC = "office_ac"
    RESIDENTIAL_AC = "residential_ac"
    PUBLIC_DC = "public_dc"
    BUS_DEPOT = "bus_depot"


class SwitchKind(StrEnum):
    BREAKER = "breaker"
    LOAD_BREAK_SWITCH = "load_break_switch"
    DISCONNECTOR = "disconnector"


class SwitchRole(StrEnum):
    """What a switch is for, in the operator's words."""

    TRANSFORMER_BREAKER = "transformer_breaker"
    BUS_COUPLER = "bus_coupler"  # substation 10 kV section coupler
    BUS_TIE = "bus_tie"  # switching-station section tie
    BACKBONE_BREAKER = "backbone_breaker"  # closed-loop cable end, line differential protection
    FEEDER_BREAKER = "feeder_breaker"  # head of an open-loop distribution feeder
    RING_SWITCH = "ring_switch"  # RMU load-break switch on the ring
    NORMALLY_OPEN_POINT = "normally_open_point"
    TIE = "tie"  # tie switch of a standard feeder (e.g. IEEE 33-bus)
    MICROGRID_BREAKER = "microgrid_breaker"  # point of common coupling of a microgrid
    SECTIONALISER = "sectionaliser"  # any other sectionalising switch


class ElementTable(StrEnum):
    """pandapower tables a device can map to."""

    SGEN = "sgen"
    STORAGE = "storage"
    LOAD = "load"
    SWITCH = "switch"
    LINE = "line"
    TRAFO = "trafo"
    BUS = "bus"


@dataclass(frozen=True, kw_only=True)
class ElementRef:
    """Where a device lives in the pandapower net: table name and row index."""

    table: ElementTable
    index: int


@dataclass(frozen=True, kw_only=True)
class Point:
    """One value a device exposes: a measurement (read) or a setpoint/command (write)."""

    name: str
    unit: str
    access: Access
    dtype: Literal["float", "bool", "int", "str"] = "float"
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""

    def accepts(self, value: float | bool | int | str) -> bool:
        """True if ``value`` is of the point's type and within its limits."""
        if self.dtype == "bool":
            return isinstance(value, bool)
        if self.dtype == "str":
            return isinstance(value, str)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value):
            return False
        if self.min_value is not None and value < self.min_value - 1e-9:
            return False
        return not (self.max_value is not None and value > self.max_value + 1e-9)


def _read(name: str, unit: str, description: str, dtype: str = "float") -> Point:
    return Point(name=name, unit=unit, access=Access.READ, dtype=dtype, description=description)  # type: ignore[arg-type]


def _write(
    name: str,
    unit: str,
    description: str,
    min_value: float | None = None,
    max_value: float | None = None,
    dtype: str = "float",
) -> Point:
    return Point(
        name=name,
        unit=unit,
        access=Access.WRITE,
        dtype=dtype,  # type: ignore[arg-type]
        min_value=min_value,
        max_value=max_value,
        description=description,
    )


@dataclass(frozen=True, kw_only=True)
class Device:
    """Common fields of every device: a unique id, its bus and its element in the net."""

    kind: ClassVar[DeviceKind]
    id: str
    bus: str
    element: ElementRef
    description: str = ""

    @property
    def points(self) -> tuple[Point, ...]:
        raise NotImplementedError

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"device {self.id!r} has no point {name!r}")


@dataclass(frozen=True, kw_only=True)
class PvSystem(Device):
    """Rooftop or ground PV behind an inverter of apparent-power rating ``s_mva``."""

    kind: ClassVar[DeviceKind] = DeviceKind.PV
    p_mwp: float
    s_mva: float
    tilt_deg: float = 20.0
    azimuth_deg: float = 180.0  # pvlib convention: 180 = south
    q_capable: bool = True

    @property
    def points(self) -> tuple[Point, ...]:
        return (
            _read("p_mw", "MW", "active power injected"),
            _read("q_mvar", "Mvar", "reactive power injected"),
            _read("p_avail_mw", "MW", "available (uncurtailed) active power"),
            _write("p_limit_mw", "MW", "active power limit (curtailment)", 0.0, self.p_mwp),
            _write(
                "q_set_mvar",
                "Mvar",
                "reactive power setpoint, injection positive",
                -self.s_mva if self.q_capable else 0.0,
                self.s_mva if self.q_capable else 0.0,
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Bess(Device):
    """Battery energy storage. ``p_mw`` > 0 discharges into the grid."""

    kind: ClassVar[DeviceKind] = DeviceKind.BESS
    p_mw: float
    e_mwh: float
    s_mva: float
    soc_min_frac: float = 0.1
    soc_max_frac: float = 0.95
    soc_init_frac: float = 0.5
    eta_charge: float = 0.95
    eta_discharge: float = 0.95
    island_reserve_frac: float = 0.0  # SoC held back for islanding (0 = none)
    degradation_cny_per_mwh: float = 50.0
    grid_forming: bool = False

    @property
    def points(self) -> tuple[Point, ...]:
        return (
            _read("p_mw", "MW", "active power injected (discharge positive)"),
            _read("q_mvar", "Mvar", "reactive power injected"),
            _read("soc_frac", "1", "state of charge as a fraction of e_mwh"),
            _write(
                "p_set_mw", "MW", "active power setpoint, discharge positive", -self.p_mw, self.p_mw
            ),
            _write("q_set_mvar", "Mvar", "reactive power setpoint", -self.s_mva, self.s_mva),
        )


@dataclass(frozen=True, kw_only=True)
class EvChargingSite(Device):
    """An EV charger or charging hub: ``n_connectors`` connectors behind one grid connection.

    Each connector has its own points, prefixed ``c<k>.`` (k from 1), so the controller can set the
    charging power of every session. ``p_site_max_kw`` is the hub's connection limit.
    """

    kind: ClassVar[DeviceKind] = DeviceKind.EV_SITE
    site_type: EvSiteType
    n_connectors: int
    p_connector_kw: float
    p_site_max_kw: float
    fallback_kw_per_connector: float = 0.0

    def connector_ids(self) -> tuple[str, ...]:
        return tuple(f"c{k}" for k in range(1, self.n_connectors + 1))

    @property
    def points(self) -> tuple[Point, ...]:
        pts = [
            _read("p_charge_kw", "kW", "total charging power of the site"),
            _write("p_site_limit_kw", "kW", "site charging power limit", 0.0, self.p_site_max_kw),
        ]
        for c in self.connector_ids():
            pts += [
                _read(f"{c}.connected", "", "a vehicle is plugged in", "bool"),
                _read(f"{c}.session_id", "", "id of the session at this connector", "str"),
                _read(f"{c}.p_charge_kw", "kW", "charging power"),
                _read(f"{c}.energy_delivered_kwh", "kWh", "energy delivered in this session"),
                _read(f"{c}.energy_requested_kwh", "kWh", "energy the driver asked for"),
                _read(f"{c}.departure_s", "s", "announced departure, Unix time"),
                _read(f"{c}.vehicle_max_kw", "kW", "most the plugged-in vehicle can draw"),
                _write(f"{c}.p_set_kw", "kW", "charging power setpoint", 0.0, self.p_connector_kw),
                # what a charger reports when a transaction ends (OCPP: meter value at stop)
                _read(f"{c}.last_session_id", "", "id of the session that ended last here",
                      "str"),
                _read(f"{c}.last_session_energy_kwh", "kWh",
                      "energy delivered to that session in all"),
            ]
        return tuple(pts)


@dataclass(frozen=True, kw_only=True)
class SwitchDevice(Device):
    """A breaker, load-break switch or disconnector; ``element`` is the switch row.

    ``switched_element`` names what it connects to its bus (a line, transformer or other bus).
    """

    kind: ClassVar[DeviceKind] = DeviceKind.SWITCH
    switch_kind: SwitchKind
    role: SwitchRole
    switched_element: str
    normally_closed: bool
    remote_controlled: bool = True

    @property
    def points(self) -> tuple[Point, ...]:
        pts = [_read("closed", "", "switch position, True = closed", "bool")]
        if self.switch_kind == SwitchKind.BREAKER:
            pts.append(_read("tripped", "", "opened by protection", "bool"))
            # each trip is an event of its own: a breaker closed onto a fault trips again
            # within one publication, and only the counter shows it (IEC 61850 OpCnt)
            pts.append(_read("trip_count", "", "protection trips since commissioning", "int"))
        if self.remote_controlled:
            pts.append(_write("close_cmd", "", "command: True closes, False opens", dtype="bool"))
        return tuple(pts)


@dataclass(frozen=True, kw_only=True)
class FaultIndicator(Device):
    """Fault passage indicator on ``line``, at the end on ``bus``."""

    kind: ClassVar[DeviceKind] = DeviceKind.FAULT_INDICATOR
    line: str

    @property
    def points(self) -> tuple[Point, ...]:
        return (
            _read("fault_detected", "", "fault current passed since the last reset", "bool"),
            _write("reset_cmd", "", "command: True resets the indication", dtype="bool"),
        )


@dataclass(frozen=True, kw_only=True)
class Meter(Device):
    """A measuring point on a line end, transformer or bus (``element`` is what it measures)."""

    kind: ClassVar[DeviceKind] = DeviceKind.METER
    measured: str

    @property
    def points(self) -> tuple[Point, ...]:
        return (
            _read("p_mw", "MW", "active power flowing away from the bus"),
            _read("q_mvar", "Mvar", "reactive power flowing away from the bus"),
            _read("i_ka", "kA", "current"),
            _read("v_pu", "pu", "voltage at the bus"),
        )


@dataclass(frozen=True, kw_only=True)
class SubstationTransformer(Device):
    kind: ClassVar[DeviceKind] = DeviceKind.SUBSTATION_TRANSFORMER
    sn_mva: float
    hv_bus: str
    lv_bus: str

    @property
    def points(self) -> tuple[Point, ...]:
        return (
            _read("p_mw", "MW", "active power from HV to LV side"),
            _read("q_mvar", "Mvar", "reactive power from HV to LV side"),
            _read("loading_pct", "%", "loading against sn_mva"),
            _read("in_service", "", "energised", "bool"),
        )


@dataclass(frozen=True, kw_only=True)
class Load(Device):
    """A customer load (consumption positive). ``priority`` 1 is shed last; shedding opens the
    customer's intake through ``connect_cmd``."""

    kind: ClassVar[DeviceKind] = DeviceKind.LOAD
    customer_class: CustomerClass
    p_peak_mw: float
    power_factor: float = 0.95
    customers: int = 1
    priority: int = 3
    critical: bool = False

    @property
    def q_peak_mvar(self) -> float:
        return self.p_peak_mw * math.tan(math.acos(self.power_factor))

    @property
    def points(self) -> tuple[Point, ...]:
        return (
            _read("p_mw", "MW", "active power consumed"),
            _read("q_mvar", "Mvar", "reactive power consumed"),
            _read("energised", "", "supplied", "bool"),
            _read("connected", "", "the customer's intake is connected", "bool"),
            _write(
                "connect_cmd",
                "",
                "command: True connects the customer's supply, False disconnects it "
                "(load shedding)",
                dtype="bool",
            ),
        )


D = TypeVar("D", bound=Device)


@dataclass(frozen=True)
class DeviceRegistry:
    """All devices of one model, in a stable order. Ids are unique."""

    devices: tuple[Device, ...]
    _by_id: dict[str, Device] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Device] = {}
        for d in self.devices:
            if d.id in by_id:
                raise ValueError(f"duplicate device id {d.id!r}")
            by_id[d.id] = d
        object.__setattr__(self, "_by_id", by_id)

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._by_id

    def __getitem__(self, device_id: str) -> Device:
        try:
            return self._by_id[device_id]
        except KeyError:
            raise KeyError(f"no device {device_id!r} in the registry") from None

    def of_type(self, cls: type[D]) -> tuple[D, ...]:
        return tuple(d for d in self.devices if isinstance(d, cls))

    @property
    def pv(self) -> tuple[PvSystem, ...]:
        return self.of_type(PvSystem)

    @property
    def bess(self) -> tuple[Bess, ...]:
        return self.of_type(Bess)

    @property
    def ev_sites(self) -> tuple[EvChargingSite, ...]:
        return self.of_type(EvChargingSite)

    @property
    def switches(self) -> tuple[SwitchDevice, ...]:
        return self.of_type(SwitchDevice)

    @property
    def loads(self) -> tuple[Load, ...]:
        return self.of_type(Load)

    @property
    def fault_indicators(self) -> tuple[FaultIndicator, ...]:
        return self.of_type(FaultIndicator)

    @property
    def meters(self) -> tuple[Meter, ...]:
        return self.of_type(Meter)

    @property
    def substation_transformers(self) -> tuple[SubstationTransformer, ...]:
        return self.of_type(SubstationTransformer)

    def point_count(self) -> int:
        return sum(len(d.points) for d in self.devices)
