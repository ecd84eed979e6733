"""The EV codec: what one connector of an EV charging site reports, to and from its points.

Each connector ``c<k>`` of an :class:`~network_models.registry.EvChargingSite` reports under
points named ``c<k>.<name>`` (the registry declares them, with units). The simulator encodes
what its connectors hold (:func:`encode_connector`), the controller decodes what it read
(:func:`decode_connector`): one definition of which point carries what, and of what a point
that is not reported (missing, or Bad: ``None``) means. Plain values in, plain records out; no
OPC UA here.

A :class:`ConnectorReport`'s fields are named as the points they come from, except
``departure``: the point ``departure_s`` is Unix seconds, 0 or NaN when none is announced; the
record holds a UTC time or ``None``. What the controller makes of a report (the arrival it
saw, a stay assumed when no departure is announced, the connector's rating as a cap) is the
controller's: see :class:`forecasts.ev.EvSession` for the session record both ends share.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from gridctl.field.contract import PointKey
from network_models.registry import EvChargingSite

__all__ = [
    "ENDED_POINTS",
    "REPORTED_POINTS",
    "SESSION_POINTS",
    "ConnectorReport",
    "connector_keys",
    "decode_connector",
    "departure_of",
    "encode_connector",
    "point_name",
    "session_id_keys",
    "site_keys",
]

# what the controller reads of a plugged-in session
SESSION_POINTS = ("connected", "session_id", "energy_requested_kwh", "energy_delivered_kwh",
                  "departure_s", "vehicle_max_kw")
# the charger's report of the session that ended last (OCPP: meter value at stop)
ENDED_POINTS = ("last_session_id", "last_session_energy_kwh")
# every point a connector reports, in the order the simulator publishes them
REPORTED_POINTS = ("connected", "session_id", "p_charge_kw", "energy_delivered_kwh",
                   "energy_requested_kwh", "departure_s", "vehicle_max_kw", *ENDED_POINTS)


class ConnectorReport(NamedTuple):
    """What one connector reports (see the module docstring). Energies in kWh, power in kW
    (charging positive); with no vehicle ``session_id`` is ``None`` and the session's figures
    are 0. A named tuple, not a frozen dataclass: the simulator makes one per connector at
    every tick, and a frozen dataclass takes three times as long to make."""

    site: str  # EvChargingSite device id
    connector: str  # "c1".."cN"
    connected: bool = False
    session_id: str | None = None
    p_charge_kw: float = 0.0
    energy_requested_kwh: float = 0.0
    energy_delivered_kwh: float = 0.0
    departure: pd.Timestamp | None = None  # announced, UTC
    vehicle_max_kw: float = 0.0
    last_session_id: str | None = None  # the session that ended last here
    last_session_energy_kwh: float | None = None  # what it got in all; None: not reported


def point_name(connector: str, name: str) -> str:
    """The point name of ``name`` at ``connector``, e.g. ``c2.session_id``."""
    return f"{connector}.{name}"


@functools.cache
def connector_keys(site_id: str, connector: str,
                   names: tuple[str, ...] = REPORTED_POINTS) -> tuple[PointKey, ...]:
    """The point keys of ``names`` at one connector, in that order (built once, not at every
    tick)."""
    return tuple((site_id, point_name(connector, name)) for name in names)


def site_keys(sites: Iterable[EvChargingSite],
              names: tuple[str, ...] = SESSION_POINTS) -> list[PointKey]:
    """The point keys of ``names`` at every connector of ``sites``."""
    return [key for site in sites for c in site.connector_ids()
            for key in connector_keys(site.id, c, names)]


def session_id_keys(sites: Iterable[EvChargingSite]) -> tuple[PointKey, ...]:
    """Every connector's session id: what tells a plug-in or a departure."""
    return tuple(site_keys(sites, ("session_id",)))


def encode_connector(report: ConnectorReport,
                     into: dict[PointKey, Any] | None = None) -> dict[PointKey, Any]:
    """The points of one connector from its report, added to ``into`` if given (the simulator
    publishes every connector at every tick: one dict, not one per connector). No session id
    is "", no departure NaN, no ended session "" and 0 kWh; numbers are sent as given."""
    values: dict[PointKey, Any] = {} if into is None else into
    (connected, session_id, p_charge, delivered, requested, departure, vehicle_max, last_id,
     last_energy) = connector_keys(report.site, report.connector)
    values[connected] = report.connected
    values[session_id] = report.session_id or ""
    values[p_charge] = report.p_charge_kw
    values[delivered] = report.energy_delivered_kwh
    values[requested] = report.energy_requested_kwh
    values[departure] = (report.departure.timestamp() if report.departure is not None
                         else math.nan)
    values[vehicle_max] = report.vehicle_max_kw
    values[last_id] = report.last_session_id or ""
    values[last_energy] = (report.last_session_energy_kwh
                           if report.last_session_energy_kwh is not None else 0.0)
    return values


def decode_connector(site_id: str, connector: str,
                     values: Mapping[PointKey, Any]) -> ConnectorReport:
    """The report of one connector from point values (``None`` or absent: not reported, read
    as no vehicle, no session id, 0 kW and kWh, no departure, an ended energy unknown)."""
    (connected, session_id, p_charge, delivered, requested, departure, vehicle_max, last_id,
     last_energy) = (values.get(k) for k in connector_keys(site_id, connector))
    return ConnectorReport(
        site=site_id,
        connector=connector,
        connected=bool(connected),
        session_id=str(session_id) if session_id else None,
        p_charge_kw=float(p_charge or 0.0),
        energy_requested_kwh=float(requested or 0.0),
        energy_delivered_kwh=float(delivered or 0.0),
        departure=departure_of(departure),
        vehicle_max_kw=float(vehicle_max or 0.0),
        last_session_id=str(last_id) if last_id else None,
        last_session_energy_kwh=float(last_energy) if last_energy is not None else None,
    )


def departure_of(departure_s: Any) -> pd.Timestamp | None:
    """An announced departure (Unix seconds) as a UTC time; None when none is announced (0,
    NaN or missing)."""
    if departure_s is None or isinstance(departure_s, bool):
        return None
    seconds = float(departure_s)
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return pd.Timestamp(seconds, unit="s", tz="UTC")
