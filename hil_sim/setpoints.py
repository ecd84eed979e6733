"""Setpoints the simulated devices accept: checks of a write, the values before any write,
and what an accepted write does, as tables keyed by point (:data:`DEVICE_SETPOINTS`,
:data:`FIELD_COMMANDS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from gridctl.field.contract import FieldPoint, PointKey
from hil_sim.devices import BessUnit, EvSiteUnit, PvUnit
from network_models.registry import (
    Access,
    DeviceKind,
    DeviceRegistry,
    EvChargingSite,
    FaultIndicator,
    Load,
    PvSystem,
    SwitchDevice,
)

DeviceUnit = BessUnit | PvUnit | EvSiteUnit
# (the unit, its connector ("" for a point of the whole device), the value written)
Setter = Callable[[Any, str, float], None]
CONNECTOR = "c<k>"  # stands for a connector's prefix in a point name of the tables below


class WriteCheck(StrEnum):
    """Whether the field accepts a write, and why not."""

    OK = "ok"
    UNKNOWN_POINT = "unknown_point"
    NOT_WRITABLE = "not_writable"
    TYPE_MISMATCH = "type_mismatch"
    OUT_OF_RANGE = "out_of_range"
    NO_COMMUNICATION = "no_communication"


def check_write(point: FieldPoint | None, value: Any, *, reachable: bool = True) -> WriteCheck:
    """Whether a device accepts ``value`` for ``point`` (``None``: no such point): writable,
    of the point's type, within its limits (finite), and the device answers."""
    if point is None:
        return WriteCheck.UNKNOWN_POINT
    if not point.writable:
        return WriteCheck.NOT_WRITABLE
    if not type_matches(point.dtype, value):
        return WriteCheck.TYPE_MISMATCH
    if not point.point.accepts(value):
        return WriteCheck.OUT_OF_RANGE
    if not reachable:
        return WriteCheck.NO_COMMUNICATION
    return WriteCheck.OK


def initial_setpoint(key: PointKey, registry: DeviceRegistry) -> Any:
    """Safe defaults, the values a device holds before any controller writes to it."""
    device = registry[key[0]]
    name = key[1]
    if isinstance(device, PvSystem):
        return device.p_mwp if name == "p_limit_mw" else 0.0
    if isinstance(device, EvChargingSite):
        if name == "p_site_limit_kw":
            return device.p_site_max_kw
        return device.fallback_kw_per_connector
    if isinstance(device, SwitchDevice):
        return device.normally_closed
    if isinstance(device, FaultIndicator):
        return False
    if isinstance(device, Load) and name == "connect_cmd":
        return True  # a customer is supplied until someone sheds it
    point = device.point(name)
    if point.access != Access.WRITE:
        raise KeyError(key)
    return {"float": 0.0, "bool": False, "int": 0, "str": ""}[point.dtype]


def type_matches(dtype: str, value: Any) -> bool:
    """True if ``value`` is of the contract type ``dtype`` (a bool is not a number)."""
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype == "str":
        return isinstance(value, str)
    if dtype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, float | int) and not isinstance(value, bool)


def _attribute(name: str) -> Setter:
    def set_attribute(unit: Any, _connector: str, value: float) -> None:
        setattr(unit, name, value)

    return set_attribute


def _connector_kw(unit: EvSiteUnit, connector: str, value: float) -> None:
    k = unit.connector_index(connector)
    if k is not None:
        unit.p_set_kw[k] = value


# what an accepted setpoint changes in a device, by (unit type, point); a connector's point is
# named with CONNECTOR in place of its "c1".."cN"; a point not here changes nothing
DEVICE_SETPOINTS: Mapping[tuple[type, str], Setter] = MappingProxyType({
    (BessUnit, "p_set_mw"): _attribute("p_set_mw"),
    (BessUnit, "q_set_mvar"): _attribute("q_set_mvar"),
    (PvUnit, "p_limit_mw"): _attribute("p_limit_mw"),
    (PvUnit, "q_set_mvar"): _attribute("q_set_mvar"),
    (EvSiteUnit, "p_site_limit_kw"): _attribute("site_limit_kw"),
    (EvSiteUnit, f"{CONNECTOR}.p_set_kw"): _connector_kw,
})

# the commands an accepted write queues (run in order at the next prepare), by (device kind,
# point): a switch opens or closes, a load is disconnected or reconnected, a fault indicator
# resets (on True only)
FIELD_COMMANDS: Mapping[tuple[DeviceKind, str], str] = MappingProxyType({
    (DeviceKind.SWITCH, "close_cmd"): "switch",
    (DeviceKind.LOAD, "connect_cmd"): "load",
    (DeviceKind.FAULT_INDICATOR, "reset_cmd"): "reset",
})


def apply_setpoint(unit: DeviceUnit, point: str, value: float) -> None:
    """Set what a write of ``value`` to ``point`` of ``unit`` sets (see ``DEVICE_SETPOINTS``)."""
    connector, dot, name = point.partition(".")
    key = (type(unit), f"{CONNECTOR}.{name}") if dot else (type(unit), point)
    setter = DEVICE_SETPOINTS.get(key)
    if setter is not None:
        setter(unit, connector if dot else "", value)


def field_command(kind: DeviceKind, point: str, value: Any) -> tuple[str, bool] | None:
    """The command (kind, value) a write of ``value`` to ``point`` queues, if any."""
    command = FIELD_COMMANDS.get((kind, point))
    if command is None or (command == "reset" and not value):
        return None
    return command, bool(value)
