"""EV sessions as the runtime reads them from the field's points.

The chargers report each connector's session through the EV codec
(:mod:`gridctl.field.ev_points`); here those reports become what the controller plans with
(:class:`~controllers.ev_charging.SessionState`), what the historian keeps
(:class:`~gridctl.historian.StoredSession`) and who is plugged in at which connector
(:data:`~controllers.ev_setpoints.Occupancy`, what the EV setpoints are made from). The arrival
of each session is the field time it was first seen (kept across a restart by the historian);
a session id given at two connectors is planned once, and said so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from controllers.ev_charging import SessionState
from controllers.ev_setpoints import Occupancy, PluggedIn, SiteConnectors
from forecasts.ev import EvSession
from gridctl.field import ev_points
from gridctl.field.contract import PointKey
from gridctl.field_client import PointReading
from gridctl.historian import Historian, StoredSession
from network_models.model import GridModel
from network_models.registry import EvChargingSite

log = logging.getLogger("gridctl.runtime")

_DELIVERED = ".energy_delivered_kwh"  # every connector's energy counter (gridctl.field.ev_points)


class EvSessionReader:
    """The sessions at the EV sites, from the chargers' reports, with their arrivals."""

    def __init__(self, historian: Historian) -> None:
        self.historian = historian
        self.arrivals: dict[str, pd.Timestamp] = {}
        self._duplicates_seen: set[tuple[str, ...]] = set()  # session ids given twice, told

    def resume(self, sessions: Iterable[StoredSession]) -> None:
        """The sessions the historian knew keep their arrival times."""
        for s in sessions:
            self.arrivals[s.id] = s.arrival

    def arrived(self, session_id: str, now: pd.Timestamp) -> None:
        """A session seen at ``now`` (it arrived then, unless it was seen before)."""
        self.arrivals.setdefault(session_id, now)

    def forget_after(self, now: pd.Timestamp) -> None:
        """The field's clock went back: sessions "arrived" in the time left behind did not
        arrive yet."""
        self.arrivals = {sid: t for sid, t in self.arrivals.items() if t <= now}

    def sessions(
        self,
        now: pd.Timestamp,
        values: Mapping[PointKey, Any],
        sites: Sequence[EvChargingSite],
        *,
        measured_at: pd.Timestamp | None = None,
    ) -> tuple[list[SessionState], list[StoredSession]]:
        """The plugged-in sessions of ``sites`` as read (``values``: good readings), with the
        energy delivered so far; for planning, a session is present from ``measured_at`` on
        (when its energy was read)."""
        states, stored = [], []
        where: dict[str, str] = {}  # session id -> the connector that holds it
        for site in sites:
            for c in site.connector_ids():
                report = ev_points.decode_connector(site.id, c, values)
                if not report.connected:
                    continue
                sid = report.session_id or f"{site.id}/{c}/unknown"
                if sid in where:
                    # two vehicles reported under one id (a charger's bug, a replayed id):
                    # merged they would share one energy; the second is left out, and said so
                    self._duplicate_session(now, sid, where[sid], f"{site.id}/{c}")
                    continue
                where[sid] = f"{site.id}/{c}"
                state, record = self._session(now, site, c, sid, report, measured_at)
                states.append(state)
                stored.append(record)
        return states, stored

    def _session(
        self, now: pd.Timestamp, site: EvChargingSite, c: str, sid: str,
        report: ev_points.ConnectorReport, measured_at: pd.Timestamp | None,
    ) -> tuple[SessionState, StoredSession]:
        requested = report.energy_requested_kwh
        delivered = report.energy_delivered_kwh
        arrival = self.arrivals.setdefault(sid, now)
        # no departure announced: assume the site's typical stay
        departure = (
            report.departure.tz_convert(now.tz)
            if report.departure is not None
            else now + pd.Timedelta(hours=1)
        )
        departure = max(
            departure,
            now + pd.Timedelta(minutes=1),
            max(arrival, measured_at or arrival) + pd.Timedelta(minutes=1),
        )
        vehicle_kw = report.vehicle_max_kw
        max_kw = min(vehicle_kw, site.p_connector_kw) if vehicle_kw > 0 else site.p_connector_kw
        session = EvSession(
            id=sid,
            site=site.id,
            connector=c,
            arrival=max(arrival, measured_at) if measured_at is not None else arrival,
            departure=departure,
            energy_kwh=max(requested, delivered),
            max_kw=max_kw,
        )
        record = StoredSession(
            id=sid, site=site.id, connector=c, arrival=arrival, departure=departure,
            energy_kwh=requested, max_kw=max_kw, energy_delivered_kwh=delivered,
        )
        return SessionState(session=session, energy_delivered_kwh=delivered), record

    def _duplicate_session(self, now: pd.Timestamp, sid: str, first: str, again: str) -> None:
        """Record (once per pair of connectors) a session id the field gave twice."""
        key = (sid, first, again)
        if key in self._duplicates_seen:
            return
        self._duplicates_seen.add(key)
        log.warning("session id %r reported at %s and %s: the second is not planned", sid,
                    first, again)
        self.historian.record_event(now, "duplicate_session", session_id=sid, kept=first,
                                    refused=again)

    def record_ends(
        self, now: pd.Timestamp, changed: Iterable[PointKey], value: Callable[[PointKey], Any]
    ) -> None:
        """Record the charger's report of each session that ended (its final energy), from the
        end points that ``changed``, each read with ``value``."""
        # either point may come first; the historian keeps the first complete pair as final
        connectors = {(d, p.split(".", 1)[0]) for d, p in changed}
        for device, c in sorted(connectors):
            keys = ev_points.connector_keys(device, c, ev_points.ENDED_POINTS)
            ended = ev_points.decode_connector(device, c, {k: value(k) for k in keys})
            if ended.last_session_id and ended.last_session_energy_kwh is not None:
                self.historian.record_session_end(now, ended.last_session_id,
                                                  ended.last_session_energy_kwh)


def good_values(readings: Iterable[PointReading]) -> dict[PointKey, Any]:
    """The values of the good readings, by point (what the EV codec decodes)."""
    return {r.key: r.value for r in readings if r.good}


def plugged_in(values: Mapping[PointKey, Any], site: EvChargingSite) -> SiteConnectors:
    """Connector → the vehicle its charger reports (session id, announced departure), or None
    where no vehicle is."""
    out: dict[str, PluggedIn | None] = {}
    for c in site.connector_ids():
        report = ev_points.decode_connector(site.id, c, values)
        out[c] = PluggedIn(report.session_id, report.departure) if report.session_id else None
    return out


def occupancy(values: Mapping[PointKey, Any], model: GridModel) -> Occupancy:
    """Every EV site's connectors and who is plugged in at each (``values``: good readings)."""
    return {site.id: plugged_in(values, site) for site in model.registry.of_type(EvChargingSite)}


def measured_at(readings: Sequence[PointReading], step_start: pd.Timestamp) -> pd.Timestamp:
    """When the EV readings were taken: their latest source time (the simulator stamps its
    simulated time, a real charger its own), within the step that begins at ``step_start``."""
    stamps = [
        r.source_time
        for r in readings
        if r.source_time is not None and r.point.endswith(_DELIVERED)
    ]
    if not stamps:
        return step_start
    latest = pd.Timestamp(max(stamps))
    latest = latest.tz_localize("UTC") if latest.tzinfo is None else latest
    return max(step_start, latest.tz_convert(step_start.tz))
