"""EV setpoints as decisions: each connector's power and each site's limit, made in one place.

The MPC decides each session's power for the step (``MpcDecision.session_p_kw``); what a
charging site is sent follows from that, from who is plugged in at which connector and from
when the step ends. The MPC carries these setpoints in its decision and the runtime writes them
as they are; when a vehicle plugs in or leaves within the step the runtime splits the site's
power again (:func:`resplit_site`) and sends what this module makes of the new split.

- A connector with no vehicle is set to its rating: a vehicle plugging in starts charging at
  once (a short stay may have no slack) until its site is split again.
- The site limit lets the connectors' sum through (the plan's site power is a step average,
  the setpoints are what each vehicle draws while plugged in), plus a reserve: the rating of
  every connector whose vehicle leaves within the step (a successor may plug in), all within
  the site's rating.
- A site curtailed by self-healing or a microgrid supervisor is held at 0 kW
  (:func:`held_site_setpoints`), whatever the plan says.

Pure functions of plain records: no field, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pandas as pd

from controllers.ev_charging import SessionState, split_rest_of_step
from network_models.registry import EvChargingSite

PointKey = tuple[str, str]


class PluggedIn(NamedTuple):
    """The vehicle at one connector as its charger reports it."""

    session_id: str
    departure: pd.Timestamp | None  # as announced; None when the vehicle announced none


SiteConnectors = Mapping[str, PluggedIn | None]  # connector -> its vehicle, None where none
Occupancy = Mapping[str, SiteConnectors]  # EV site id -> its connectors


def site_setpoints(
    site: EvChargingSite,
    session_kw: Mapping[str, float],
    plugged_in: SiteConnectors,
    step_end: pd.Timestamp,
) -> dict[PointKey, float]:
    """Connector setpoints and the site limit from each session's power (kW while plugged in),
    with the reserve for a vehicle that may plug in where one leaves before ``step_end``."""
    values: dict[PointKey, float] = {}
    reserve = 0.0
    for c in site.connector_ids():
        at = plugged_in.get(c)
        kw = session_kw.get(at[0], 0.0) if at else site.p_connector_kw
        kw = float(min(max(kw, 0.0), site.p_connector_kw))
        values[(site.id, f"{c}.p_set_kw")] = kw
        if at and at[1] is not None and at[1] < step_end:
            reserve += site.p_connector_kw - kw
    total = sum(values.values()) + reserve
    values[(site.id, "p_site_limit_kw")] = float(min(total, site.p_site_max_kw))
    return values


def held_site_setpoints(site: EvChargingSite) -> dict[PointKey, float]:
    """A curtailed site: every connector and the site limit at 0 kW."""
    values = {(site.id, f"{c}.p_set_kw"): 0.0 for c in site.connector_ids()}
    values[(site.id, "p_site_limit_kw")] = 0.0
    return values


def sites_setpoints(
    sites: Sequence[EvChargingSite],
    session_kw: Mapping[str, float],
    occupancy: Occupancy,
    step_end: pd.Timestamp,
) -> dict[str, dict[str, float]]:
    """:func:`site_setpoints` of every site, as a decision carries them (device -> point)."""
    out: dict[str, dict[str, float]] = {}
    for site in sites:
        values = site_setpoints(site, session_kw, occupancy.get(site.id, {}), step_end)
        out[site.id] = {point: v for (_, point), v in values.items()}
    return out


def resplit_site(
    site: EvChargingSite,
    states: Sequence[SessionState],
    plugged_in: SiteConnectors,
    now: pd.Timestamp,
    step_end: pd.Timestamp,
    planned_site_kw: float,
    *,
    room_kw: float = 0.0,
) -> tuple[dict[PointKey, float], dict[str, float]]:
    """A site's power split again for the rest of the step (a vehicle plugged in or left):
    its setpoints and the split (session id -> kW) they come from."""
    split = split_rest_of_step(site, states, now, step_end, planned_site_kw, room_kw=room_kw)
    return site_setpoints(site, split, plugged_in, step_end), split
