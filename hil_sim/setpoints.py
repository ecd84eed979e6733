"""Setpoints the simulated devices accept: checks of a write and the values before any write."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from gridctl.field.contract import FieldPoint, PointKey
from network_models.registry import (
    Access,
    DeviceRegistry,
    EvChargingSite,
    FaultIndicator,
    Load,
    PvSystem,
    SwitchDevice,
)


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
