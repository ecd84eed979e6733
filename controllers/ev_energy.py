"""Energy bookkeeping of EV sessions: when each is plugged in, what it owes, what it can still get.

A session is plugged in from its arrival to its departure; within a step its power is held
while it is there, so a step is cut into segments at the arrivals and departures inside it
(:class:`StepSegments`), and a site limit held on every segment holds at every minute. What a
session is planned for is what it can still get (:func:`servable_owed_kwh`: what it owes, at
most its power limit over the rest of its stay), not what it asked for.

Units: kW and kWh for sessions, MW and MWh for sites. Times are step starts (tz-aware).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasts.ev import EvSession
from network_models.registry import EvChargingSite

NS_PER_H = 3_600_000_000_000  # nanoseconds in an hour (pandas times are ns since the epoch)


@dataclass(frozen=True, kw_only=True)
class SessionState:
    """A session as the controller sees it: the record and the energy delivered so far."""

    session: EvSession
    energy_delivered_kwh: float = 0.0

    @property
    def energy_owed_kwh(self) -> float:
        """What it asked for and has not had yet, kWh (the record; see :func:`servable_owed_kwh`
        for what can still be delivered)."""
        return max(0.0, self.session.energy_kwh - self.energy_delivered_kwh)



def presence_h(sessions: Sequence[EvSession], index: pd.DatetimeIndex, step_h: float) -> np.ndarray:
    """Hours each session is plugged in during each step: array (n_sessions, T)."""
    if not sessions:
        return np.zeros((0, len(index)))
    starts = index.asi8.astype(np.int64)
    ends = starts + round(step_h * NS_PER_H)
    arr = np.array([s.arrival.value for s in sessions], dtype=np.int64)[:, None]
    dep = np.array([s.departure.value for s in sessions], dtype=np.int64)[:, None]
    overlap = np.minimum(ends[None, :], dep) - np.maximum(starts[None, :], arr)
    return np.clip(overlap, 0, None) / NS_PER_H


@dataclass(frozen=True, kw_only=True)
class StepSegments:
    """The parts of each step between the arrivals and departures inside it.

    A session's power is held while it is plugged in within a step (kW, its energy in the step
    over the hours it is there), so the site's power changes only where a vehicle plugs in or
    leaves: a site limit held on every segment holds at every minute.
    """

    step: np.ndarray  # (n_segments,) the step each segment is in
    hours: np.ndarray  # (n_segments,) its length, h
    present: np.ndarray  # (n_sessions, n_segments) plugged in for the whole segment


def step_segments(
    sessions: Sequence[EvSession], index: pd.DatetimeIndex, step_h: float
) -> StepSegments:
    """Segments of every step of ``index`` cut at the sessions' arrivals and departures."""
    starts = index.asi8.astype(np.int64)
    step_ns = round(step_h * NS_PER_H)
    end = starts[-1] + step_ns if len(starts) else 0
    arr = np.array([s.arrival.value for s in sessions], dtype=np.int64)
    dep = np.array([s.departure.value for s in sessions], dtype=np.int64)
    cuts = np.r_[starts, end, arr, dep]
    cuts = np.unique(cuts[(cuts >= (starts[0] if len(starts) else 0)) & (cuts <= end)])
    lo, hi = cuts[:-1], cuts[1:]
    step = np.searchsorted(starts, lo, side="right") - 1
    present = (arr[:, None] <= lo[None, :]) & (dep[:, None] >= hi[None, :])
    return StepSegments(step=step, hours=(hi - lo) / NS_PER_H, present=present)


def site_limit_rows(
    site: EvChargingSite, sessions: Sequence[EvSession], index: pd.DatetimeIndex, step_h: float,
    rows: np.ndarray, cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The site limit on every segment where it can bind, as sparse rows over the energies
    ``x[k]`` of session ``rows[k]`` in step ``cols[k]`` (kWh): Σ x / hours plugged in that
    step ≤ ``p_site_max_kw``. Returns (row, variable, coefficient, bound kW); a segment whose
    sessions cannot together exceed the limit gets no row."""
    hours = presence_h(sessions, index, step_h)
    seg = step_segments(sessions, index, step_h)
    p_kw = session_limits_kw(site, sessions)
    load = (seg.present * p_kw[:, None]).sum(axis=0)
    binding = np.flatnonzero(load > site.p_site_max_kw * (1 + 1e-9))
    var_of = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(rows, cols, strict=True))}
    r_out, v_out, c_out = [], [], []
    n = 0
    for j in binding:
        k = int(seg.step[j])
        found = [(var_of[(int(i), k)], 1.0 / hours[i, k])
                 for i in np.flatnonzero(seg.present[:, j]) if (int(i), k) in var_of]
        if found:
            r_out += [n] * len(found)
            v_out += [v for v, _ in found]
            c_out += [c for _, c in found]
            n += 1
    return (np.array(r_out, dtype=int), np.array(v_out, dtype=int), np.array(c_out, dtype=float),
            np.full(n, site.p_site_max_kw))


def energy_due_in_window_kwh(
    states: Sequence[SessionState], index: pd.DatetimeIndex, step_h: float, owed: np.ndarray
) -> np.ndarray:
    """Energy each session must get inside the window: all it owes if it leaves inside; if it
    leaves later, the share of what it owes that the window's part of its remaining stay is of
    the whole (steady progress: a short window must not leave a late-evening crowd to a site
    too small to serve it in time)."""
    start = index[0].value
    end = index[-1].value + round(step_h * NS_PER_H)
    due = owed.copy()
    for k, st in enumerate(states):
        s = st.session
        if s.departure.value > end:
            begin = max(start, s.arrival.value)
            due[k] = owed[k] * max(0.0, end - begin) / max(s.departure.value - begin, 1)
    return due


def session_limits_kw(site: EvChargingSite, sessions: Sequence[EvSession]) -> np.ndarray:
    """Each session's power limit: its vehicle's ``max_kw`` and the connector rating."""
    return np.array([min(s.max_kw, site.p_connector_kw) for s in sessions], dtype=float)


def deliverable_kwh(
    site: EvChargingSite, sessions: Sequence[EvSession], index: pd.DatetimeIndex, step_h: float
) -> np.ndarray:
    """The most each session can take in each step at ``site``, kWh: its power limit over the
    hours it is plugged in that step; array (n_sessions, T)."""
    return presence_h(sessions, index, step_h) * session_limits_kw(site, sessions)[:, None]


def servable_owed_kwh(
    site: EvChargingSite | None,
    states: Sequence[SessionState],
    index: pd.DatetimeIndex,
    step_h: float,
) -> np.ndarray:
    """The energy each session can still get, kWh: what it owes, at most its power limit (at
    ``site``; without one, its own ``max_kw``) over what is left of its stay from the window's
    first step (inside the window and after it)."""
    sessions = [s.session for s in states]
    if not sessions:
        return np.zeros(0)
    inside = presence_h(sessions, index, step_h).sum(axis=1)
    end = index[-1].value + round(step_h * NS_PER_H)
    after = np.array([max(s.departure.value - max(end, s.arrival.value), 0) for s in sessions])
    owed = np.array([s.energy_owed_kwh for s in states], dtype=float)
    p_kw = (session_limits_kw(site, sessions) if site is not None
            else np.array([s.max_kw for s in sessions], dtype=float))
    return np.minimum(owed, p_kw * (inside + after / NS_PER_H))


def sessions_that_should_not_wait(
    site: EvChargingSite,
    states: Sequence[SessionState],
    now: pd.Timestamp,
    *,
    slack_h: float,
    busy_frac: float,
    oversubscribed_ratio: float,
) -> list[SessionState]:
    """The vehicles plugged in at ``site`` now whose charging an online plan should not defer.

    A plan that knows only the vehicles already plugged in can shift their charging to cheaper
    hours, and every kWh it shifts is one a vehicle arriving meanwhile may compete for. So:

    - every vehicle, at a site built to be shared: its connectors can together draw at least
      ``oversubscribed_ratio`` times its rating (a workplace with many slow connectors behind a
      small connection, a fast-charging hub), so it is at its limit whenever it is busy;
    - every vehicle, when the site is busy: its plugged-in vehicles need at least
      ``busy_frac`` of its rating from now until they leave (the largest share over their
      departures, earliest first);
    - otherwise the vehicles with less than ``slack_h`` of slack (laxity: the hours left in
      the stay beyond what it takes at full power to get what can still be had); a short stay
      at a hub with room.

    A residential site in the evening, its vehicles there for the night, has neither: its
    charging is the plan's to shift into the valley.
    """
    plugged = [st for st in states if st.session.site == site.id
               and st.session.arrival <= now < st.session.departure]
    if not plugged:
        return []
    sessions = [st.session for st in plugged]
    left_h = np.array([(s.departure - now).total_seconds() / 3600.0 for s in sessions])
    p_kw = session_limits_kw(site, sessions)
    owed = np.minimum([st.energy_owed_kwh for st in plugged], p_kw * left_h)
    order = np.argsort(left_h, kind="stable")
    need_kw = np.cumsum(owed[order]) / np.maximum(left_h[order], 1e-9)
    connectors_kw = site.n_connectors * site.p_connector_kw
    oversubscribed = connectors_kw >= oversubscribed_ratio * site.p_site_max_kw
    if oversubscribed or (site.p_site_max_kw > 0
                          and need_kw.max() >= busy_frac * site.p_site_max_kw):
        return [plugged[i] for i in range(len(plugged)) if owed[i] > 1e-9]
    with np.errstate(divide="ignore", invalid="ignore"):
        laxity_h = left_h - np.where(p_kw > 0, owed / p_kw, 0.0)
    return [plugged[i] for i in range(len(plugged)) if owed[i] > 1e-9 and laxity_h[i] < slack_h]
