"""The split of a site's power over its connectors in the field, from now to the step's end.

At a control step and again whenever a vehicle plugs in or leaves, the site's planned power is
shared among the vehicles plugged in, least laxity first (:func:`split_rest_of_step`), with
equal shares where they tie (:func:`water_fill`).

Units: kW and kWh. Times are tz-aware.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from controllers.ev_energy import SessionState, session_limits_kw
from network_models.registry import EvChargingSite


def split_rest_of_step(
    site: EvChargingSite,
    states: Sequence[SessionState],
    now: pd.Timestamp,
    step_end: pd.Timestamp,
    planned_site_kw: float,
    *,
    room_kw: float = 0.0,
) -> dict[str, float]:
    """Charging power (kW while plugged in) of each session at ``site`` from ``now`` to
    ``step_end``: at a control step and again whenever a vehicle plugs in or leaves.

    The plan decides the site's power (the network, prices and deadlines are its to weigh);
    the field splits it among the vehicles plugged in, least laxity first: the vehicle with the
    least slack (hours left in its stay beyond what it needs at full power) first, at full
    power, vehicles of equal slack sharing equally, until the budget is used. The budget is the
    plan's site power and ``room_kw``, power beyond the plan the grid is known to take at the
    site now (the MPC checks it in AC), and at least what the sessions that would miss their
    departure even at full power after this step must have now; never above the site's rating,
    a session's power limit or what it still owes.

    Why least laxity first and not the plan's own split among sessions: the plan holds each
    session's power for a whole step and knows only the vehicles already there, so it finds a
    short stay dear in site capacity and a later arrival free; the field re-splits at every
    arrival and departure, and least laxity first there delivers at least what the best online
    schedulers do (``tests/test_ev_site_limit.py``).
    """
    states = [s for s in states if s.session.site == site.id and s.session.departure > now]
    if not states:
        return {}
    sessions = [s.session for s in states]
    rest_h = np.array([(min(s.departure, step_end) - now).total_seconds() / 3600.0
                       for s in sessions]).clip(0.0)
    after_h = np.array([max((s.departure - step_end).total_seconds(), 0.0) / 3600.0
                        for s in sessions])
    p_max = session_limits_kw(site, sessions)
    # no more than the rest of its stay can take: an unservable session's gap is not "must"
    owed = np.minimum([s.energy_owed_kwh for s in states], p_max * (rest_h + after_h))
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(rest_h > 0, np.minimum(p_max, owed / rest_h), 0.0)
        must = np.where(rest_h > 0, (owed - p_max * after_h) / rest_h, 0.0)
        laxity_h = rest_h + after_h - np.where(p_max > 0, owed / p_max, 0.0)
    must = np.clip(must, 0.0, room)
    budget = min(site.p_site_max_kw, max(planned_site_kw + max(room_kw, 0.0), must.sum()))
    give = np.zeros(len(sessions))
    # slack to the second: ties share (a fleet of identical vehicles is not served in id order)
    slack_s = np.round(laxity_h * 3600.0)
    for level in np.unique(slack_s):
        left = budget - give.sum()
        if left <= 1e-9:
            break
        group = slack_s == level
        give = give + water_fill(np.where(group, room - give, 0.0), left)
    return {s.id: float(kw) for s, kw in zip(sessions, give, strict=True)}


def water_fill(room: np.ndarray, amount: float) -> np.ndarray:
    """Share ``amount`` equally among entries with room, none above its room."""
    room = np.clip(room, 0.0, None)
    if amount >= room.sum():
        return room.copy()
    order = np.sort(room)
    n = len(order)
    level, used = 0.0, 0.0
    for i, r in enumerate(order):
        # raising the level to r costs (r - level) for each of the n - i entries still open
        step_cost = (r - level) * (n - i)
        if used + step_cost >= amount:
            level += (amount - used) / (n - i)
            break
        used += step_cost
        level = r
    return np.minimum(room, level)
