"""The field contract: the OPC UA address space every device of a model exposes, defined once.

Derived from the device registry, so the simulator's server and the controller's client agree on
every node without writing anything twice:

- namespace ``urn:gridctl:<model>``; a ``Grid`` folder under Objects holds one object per device
  (node id ``s=<device id>``) and, under it, one variable per registry point, named after the
  point (node id ``s=<device id>.<point name>``, e.g. ``BESS_1.p_set_mw``, ``EV_L1_1.c3.p_set_kw``);
- data types from ``Point.dtype`` (float → Double, bool → Boolean, int → Int64, str → String);
- read points are read-only, write points read-write (the value read back is the last accepted
  setpoint or command);
- float points carry an ``EngineeringUnits`` property (EUInformation, UNECE codes) and write
  points with limits an ``EURange`` property.

A simulator adds a ``Simulator`` object beside ``Grid`` with its clock, status and network
views and the fault-injection methods (:class:`SimulatorNodes`); real devices do not have it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import Access, Device, DeviceKind, DeviceRegistry, Point

__all__ = [
    "GRID_FOLDER",
    "NAMESPACE_PREFIX",
    "SIMULATOR_OBJECT",
    "UNITS_NAMESPACE_URI",
    "EngineeringUnit",
    "FieldContract",
    "FieldDevice",
    "FieldInputError",
    "FieldPoint",
    "PointKey",
    "SimulatorMethod",
    "SimulatorNodes",
    "engineering_unit",
    "namespace_uri",
]

NAMESPACE_PREFIX = "urn:gridctl:"
GRID_FOLDER = "Grid"
SIMULATOR_OBJECT = "Simulator"
UNITS_NAMESPACE_URI = "http://www.opcfoundation.org/UA/units/un/cefact"

PointKey = tuple[str, str]  # (device id, point name)


class FieldInputError(InputError):
    """Something a person gave the field link (an endpoint, a users file, a certificate, a
    method call) that cannot be used; the message says what was expected."""

Dtype = Literal["float", "bool", "int", "str"]


@dataclass(frozen=True, kw_only=True)
class EngineeringUnit:
    """A unit as OPC UA EUInformation carries it: UNECE Rec. 20 common code, display name."""

    code: str | None  # None: no UNECE code (per unit), UnitId -1
    display_name: str
    description: str

    @property
    def unit_id(self) -> int:
        """The EUInformation UnitId: the common code's characters packed into an integer."""
        if self.code is None:
            return -1
        value = 0
        for char in self.code:
            value = (value << 8) | ord(char)
        return value


# UNECE Rec. 20 common codes of the units the registry uses
_UNITS: Mapping[str, EngineeringUnit] = MappingProxyType({
    "MW": EngineeringUnit(code="MAW", display_name="MW", description="megawatt"),
    "Mvar": EngineeringUnit(code="MAR", display_name="Mvar", description="megavar"),
    "kW": EngineeringUnit(code="KWT", display_name="kW", description="kilowatt"),
    "kWh": EngineeringUnit(code="KWH", display_name="kWh", description="kilowatt hour"),
    "MWh": EngineeringUnit(code="MWH", display_name="MWh", description="megawatt hour"),
    "kA": EngineeringUnit(code="B22", display_name="kA", description="kiloampere"),
    "%": EngineeringUnit(code="P1", display_name="%", description="percent"),
    "s": EngineeringUnit(code="SEC", display_name="s", description="second"),
    "1": EngineeringUnit(code="C62", display_name="1", description="one (dimensionless)"),
    "pu": EngineeringUnit(code=None, display_name="pu", description="per unit of nominal"),
    "°C": EngineeringUnit(code="CEL", display_name="°C", description="degree Celsius"),
})


def engineering_unit(unit: str) -> EngineeringUnit | None:
    """The EUInformation of a registry unit string; ``None`` for unitless points ("")."""
    if not unit:
        return None
    known = _UNITS.get(unit)
    if known is not None:
        return known
    return EngineeringUnit(code=None, display_name=unit, description=unit)


def namespace_uri(model_name: str) -> str:
    """The namespace of a model's field devices, e.g. ``urn:gridctl:jiuke_oasis``."""
    return f"{NAMESPACE_PREFIX}{model_name}"


@dataclass(frozen=True, kw_only=True)
class FieldPoint:
    """One variable of the contract: a registry point of one device."""

    device_id: str
    kind: DeviceKind
    point: Point

    @property
    def key(self) -> PointKey:
        return (self.device_id, self.point.name)

    @property
    def node_identifier(self) -> str:
        """The string identifier of the variable's node id (namespace: the contract's)."""
        return f"{self.device_id}.{self.point.name}"

    @property
    def name(self) -> str:
        return self.point.name

    @property
    def writable(self) -> bool:
        return self.point.access == Access.WRITE

    @property
    def dtype(self) -> Dtype:
        return self.point.dtype

    @property
    def unit(self) -> EngineeringUnit | None:
        return engineering_unit(self.point.unit) if self.point.dtype == "float" else None


@dataclass(frozen=True, kw_only=True)
class FieldDevice:
    """One object of the ``Grid`` folder: a registry device and its points in registry order."""

    id: str
    kind: DeviceKind
    description: str
    points: tuple[FieldPoint, ...]


@dataclass(frozen=True)
class FieldContract:
    """The address space of one model's devices (see the module docstring)."""

    model_name: str
    devices: tuple[FieldDevice, ...]
    _by_key: Mapping[PointKey, FieldPoint] = field(init=False, repr=False, compare=False)
    _by_identifier: Mapping[str, FieldPoint] = field(init=False, repr=False, compare=False)
    _by_device: Mapping[str, FieldDevice] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key = {p.key: p for d in self.devices for p in d.points}
        object.__setattr__(self, "_by_key", MappingProxyType(by_key))
        by_identifier = {p.node_identifier: p for p in by_key.values()}
        object.__setattr__(self, "_by_identifier", MappingProxyType(by_identifier))
        object.__setattr__(self, "_by_device", MappingProxyType({d.id: d for d in self.devices}))

    @classmethod
    def from_registry(cls, registry: DeviceRegistry, model_name: str) -> FieldContract:
        """The contract of every device of ``registry`` in registry order."""
        return cls(model_name, tuple(_field_device(d) for d in registry))

    @classmethod
    def from_model(cls, model: GridModel) -> FieldContract:
        return cls.from_registry(model.registry, model.name)

    @property
    def namespace_uri(self) -> str:
        return namespace_uri(self.model_name)

    def __iter__(self) -> Iterator[FieldPoint]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def point(self, device_id: str, point_name: str) -> FieldPoint:
        """The point ``point_name`` of device ``device_id``; ``KeyError`` names what is missing."""
        try:
            return self._by_key[(device_id, point_name)]
        except KeyError:
            if device_id not in self._by_device:
                raise KeyError(f"no device {device_id!r} in the field contract") from None
            raise KeyError(f"device {device_id!r} has no point {point_name!r}") from None

    def device(self, device_id: str) -> FieldDevice:
        try:
            return self._by_device[device_id]
        except KeyError:
            raise KeyError(f"no device {device_id!r} in the field contract") from None

    def by_identifier(self, identifier: str) -> FieldPoint | None:
        """The point whose node id string is ``identifier``, or ``None``."""
        return self._by_identifier.get(identifier)

    def measurements(self) -> tuple[FieldPoint, ...]:
        """Every read-only point, in registry order."""
        return tuple(p for p in self if not p.writable)

    def setpoints(self) -> tuple[FieldPoint, ...]:
        """Every writable point (setpoints and commands), in registry order."""
        return tuple(p for p in self if p.writable)

    def points_of(self, devices: Iterable[str]) -> tuple[FieldPoint, ...]:
        return tuple(p for d in devices for p in self.device(d).points)


def _field_device(device: Device) -> FieldDevice:
    points = tuple(
        FieldPoint(device_id=device.id, kind=device.kind, point=p) for p in device.points
    )
    return FieldDevice(
        id=device.id, kind=device.kind, description=device.description, points=points
    )


# ---------------------------------------------------------------------------------------------
# the simulator's own objects


@dataclass(frozen=True, kw_only=True)
class SimulatorMethod:
    """A method of the ``Simulator`` object: name, input arguments (name, dtype), output dtype."""

    name: str
    inputs: tuple[tuple[str, Dtype], ...]
    output: Dtype
    description: str


class SimulatorNodes:
    """Node id strings of the simulator's clock, status and network views, and its methods.

    Clock: ``sim_time`` (DateTime, UTC), ``sim_time_iso`` (String, ISO 8601 with the model's
    offset, e.g. +08:00), ``tick`` (Int64), ``tick_s`` (Double, simulated seconds per tick),
    ``speed`` (Double, simulated seconds per wall second, 0 = as fast as possible),
    ``step_mode`` (Boolean), ``publish_seq`` (Int64: counts the simulator's publications of the
    field's values, fault injections included; every point a publication changes is written
    before it, so a subscriber that has seen ``publish_seq`` N has seen every change up to N).
    Status: ``model`` (String), ``converged`` (Boolean, last power flow), ``import_mw`` and
    ``losses_mw`` (Double), ``active_faults``, ``fallback_devices``, ``unsupplied_loads``
    (String arrays), ``recent_events`` (String array, "<ISO time> <what happened>", the last
    20: protection trips, switching, arrivals and departures), ``last_message`` (String: what
    the last method call did or why it refused).
    Network: names and values of every bus voltage and line/transformer loading (arrays).
    """

    OBJECT = SIMULATOR_OBJECT
    CLOCK = f"{SIMULATOR_OBJECT}.Clock"
    STATUS = f"{SIMULATOR_OBJECT}.Status"
    NETWORK = f"{SIMULATOR_OBJECT}.Network"

    CLOCK_VARIABLES: tuple[tuple[str, str], ...] = (
        ("sim_time", "datetime"),
        ("sim_time_iso", "str"),
        ("tick", "int"),
        ("tick_s", "float"),
        ("speed", "float"),
        ("step_mode", "bool"),
        ("publish_seq", "int"),
    )
    STATUS_VARIABLES: tuple[tuple[str, str], ...] = (
        ("model", "str"),
        ("converged", "bool"),
        ("import_mw", "float"),
        ("losses_mw", "float"),
        ("active_faults", "str[]"),
        ("fallback_devices", "str[]"),
        ("unsupplied_loads", "str[]"),
        ("recent_events", "str[]"),
        ("last_message", "str"),
    )
    NETWORK_VARIABLES: tuple[tuple[str, str], ...] = (
        ("bus_names", "str[]"),
        ("bus_vm_pu", "float[]"),
        ("line_names", "str[]"),
        ("line_loading_pct", "float[]"),
        ("trafo_names", "str[]"),
        ("trafo_loading_pct", "float[]"),
    )

    METHODS: tuple[SimulatorMethod, ...] = (
        SimulatorMethod(name="Step", inputs=(("ticks", "int"),), output="int",
                        description="advance n ticks (step mode only); returns the tick"),
        SimulatorMethod(name="FaultLine", inputs=(("line", "str"),), output="str",
                        description="permanent cable fault on a line; protection clears it"),
        SimulatorMethod(name="LoseTransformer", inputs=(("transformer", "str"),), output="str",
                        description="internal fault of a substation transformer"),
        SimulatorMethod(name="LoseSubstation", inputs=(("substation", "str"),), output="str",
                        description="the 110 kV supply of a substation is lost"),
        SimulatorMethod(name="LoseComm", inputs=(("device", "str"),), output="str",
                        description="communication with a device is lost"),
        SimulatorMethod(name="TripDevice", inputs=(("device", "str"),), output="str",
                        description="a PV inverter, BESS or charger trips to 0"),
        SimulatorMethod(name="StickMeter", inputs=(("device", "str"),), output="str",
                        description="a device's measurements freeze with a good status"),
        SimulatorMethod(name="ClearFault", inputs=(("target", "str"),), output="str",
                        description="repair or restore what was injected on the target"),
        SimulatorMethod(name="ClearAll", inputs=(), output="str",
                        description="clear every injected fault"),
    )

    # what ``gridctl sim fault KIND TARGET`` calls
    FAULT_KINDS: Mapping[str, str] = MappingProxyType({
        "line": "FaultLine",
        "transformer": "LoseTransformer",
        "substation": "LoseSubstation",
        "comm": "LoseComm",
        "trip": "TripDevice",
        "stuck": "StickMeter",
    })

    @classmethod
    def clock(cls, name: str) -> str:
        return f"{cls.CLOCK}.{name}"

    @classmethod
    def status(cls, name: str) -> str:
        return f"{cls.STATUS}.{name}"

    @classmethod
    def network(cls, name: str) -> str:
        return f"{cls.NETWORK}.{name}"

    @classmethod
    def method(cls, name: str) -> str:
        if name not in {m.name for m in cls.METHODS}:
            raise KeyError(f"the simulator has no method {name!r}")
        return f"{cls.OBJECT}.{name}"
