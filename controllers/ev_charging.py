"""Orderly EV charging: site energy envelopes for the optimiser, the split among sessions after.

The dispatch optimiser sees each charging site as one flexible load bounded by envelopes built
from its sessions (the power it can draw in each step, the energy it must have delivered by the
end of each step, the energy it may have delivered by then). After the solve, ``allocate_site``
splits each site's power among its sessions: first what a session needs now to finish by its
departure (least laxity), then an equal share of the rest (water-filling), never above a
session's power limit, never outside its stay, never beyond the energy it asked for.
Keeping sessions out of the network problem is what keeps a 500-session, 96-step re-solve
sub-second (see PERFORMANCE_NOTES.md); the allocation restores per-session exactness and reports
any session that cannot be served in full.

Every one of them aims at the energy a session can still get (:func:`servable_owed_kwh`: what it
owes, at most its power limit over the rest of its stay), not at what it asked for: a session
that asked for more than its stay allows (real data has them) is planned at the most it can get,
and only a shortfall against that is the plan's.

Units: kW and kWh for sessions, MW and MWh for sites. Times are step starts (tz-aware).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasts.ev import EvSession
from network_models.registry import EvChargingSite

_NS_PER_H = 3_600_000_000_000


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


@dataclass(frozen=True, kw_only=True)
class SiteEnvelope:
    """Bounds on one site's charging over a horizon (arrays of length T)."""

    cap_mw: np.ndarray  # most the site can draw in each step (sessions present, site limit)
    e_min_mwh: np.ndarray  # energy that must be delivered by the end of each step
    e_max_mwh: np.ndarray  # energy that may be delivered by the end of each step


def presence_h(sessions: Sequence[EvSession], index: pd.DatetimeIndex, step_h: float) -> np.ndarray:
    """Hours each session is plugged in during each step: array (n_sessions, T)."""
    if not sessions:
        return np.zeros((0, len(index)))
    starts = index.asi8.astype(np.int64)
    ends = starts + round(step_h * _NS_PER_H)
    arr = np.array([s.arrival.value for s in sessions], dtype=np.int64)[:, None]
    dep = np.array([s.departure.value for s in sessions], dtype=np.int64)[:, None]
    overlap = np.minimum(ends[None, :], dep) - np.maximum(starts[None, :], arr)
    return np.clip(overlap, 0, None) / _NS_PER_H


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
    step_ns = round(step_h * _NS_PER_H)
    end = starts[-1] + step_ns if len(starts) else 0
    arr = np.array([s.arrival.value for s in sessions], dtype=np.int64)
    dep = np.array([s.departure.value for s in sessions], dtype=np.int64)
    cuts = np.r_[starts, end, arr, dep]
    cuts = np.unique(cuts[(cuts >= (starts[0] if len(starts) else 0)) & (cuts <= end)])
    lo, hi = cuts[:-1], cuts[1:]
    step = np.searchsorted(starts, lo, side="right") - 1
    present = (arr[:, None] <= lo[None, :]) & (dep[:, None] >= hi[None, :])
    return StepSegments(step=step, hours=(hi - lo) / _NS_PER_H, present=present)


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


def max_site_energy_kwh(
    site: EvChargingSite,
    sessions: Sequence[EvSession],
    index: pd.DatetimeIndex,
    step_h: float,
    owed_kwh: np.ndarray | None = None,
) -> np.ndarray:
    """The most energy the site's sessions can take in each step (kWh): each session within
    its power limit (and, if given, ``owed_kwh`` in each step), the site within its limit at
    every minute of the step (every segment between arrivals and departures)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    t = len(index)
    if not sessions:
        return np.zeros(t)
    hours = presence_h(sessions, index, step_h)
    cap = hours * session_limits_kw(site, sessions)[:, None]
    if owed_kwh is not None:
        cap = np.minimum(cap, np.asarray(owed_kwh, dtype=float)[:, None])
    rows, cols = np.nonzero(cap > 1e-9)
    r, v, c, b = site_limit_rows(site, sessions, index, step_h, rows, cols)
    out = np.minimum(cap.sum(axis=0), site.p_site_max_kw * step_h)
    if not len(b):
        return out
    # only the steps where the limit binds on some segment need the LP; each step is apart
    steps = np.unique(cols[v])
    keep = np.isin(cols, steps)
    new = -np.ones(len(rows), dtype=int)
    new[keep] = np.arange(int(keep.sum()))
    a = coo_matrix((c, (r, new[v])), shape=(len(b), int(keep.sum())))
    res = linprog(-np.ones(int(keep.sum())), A_ub=a.tocsr(), b_ub=b,
                  bounds=np.c_[np.zeros(int(keep.sum())), cap[rows[keep], cols[keep]]],
                  method="highs")
    if res.status == 0:
        out[steps] = np.bincount(cols[keep], weights=res.x, minlength=t)[steps]
    return np.minimum(out, cap.sum(axis=0))


def energy_due_in_window_kwh(
    states: Sequence[SessionState], index: pd.DatetimeIndex, step_h: float, owed: np.ndarray
) -> np.ndarray:
    """Energy each session must get inside the window: all it owes if it leaves inside; if it
    leaves later, the share of what it owes that the window's part of its remaining stay is of
    the whole (steady progress: a short window must not leave a late-evening crowd to a site
    too small to serve it in time)."""
    start = index[0].value
    end = index[-1].value + round(step_h * _NS_PER_H)
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
    end = index[-1].value + round(step_h * _NS_PER_H)
    after = np.array([max(s.departure.value - max(end, s.arrival.value), 0) for s in sessions])
    owed = np.array([s.energy_owed_kwh for s in states], dtype=float)
    p_kw = (session_limits_kw(site, sessions) if site is not None
            else np.array([s.max_kw for s in sessions], dtype=float))
    return np.minimum(owed, p_kw * (inside + after / _NS_PER_H))


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


def site_envelope(
    site: EvChargingSite,
    states: Sequence[SessionState],
    index: pd.DatetimeIndex,
    step_h: float,
) -> SiteEnvelope:
    """The envelope of one site's sessions over ``index`` (sessions of other sites ignored)."""
    states = [s for s in states if s.session.site == site.id]
    t = len(index)
    site_cap = np.full(t, site.p_site_max_kw / 1000.0)
    if not states:
        return SiteEnvelope(cap_mw=np.zeros(t), e_min_mwh=np.zeros(t), e_max_mwh=np.zeros(t))
    sessions = [s.session for s in states]
    hours = presence_h(sessions, index, step_h)
    p_kw = session_limits_kw(site, sessions)
    deliverable_kwh = hours * p_kw[:, None]  # per step
    owed = servable_owed_kwh(site, states, index, step_h)
    # the most the site can draw in each step with its limit held at every minute of it
    site_kwh = max_site_energy_kwh(site, sessions, index, step_h, owed)
    total_kwh = deliverable_kwh.sum(axis=1)
    # energy owed beyond the horizon's end stays owed; only what departs inside must be met
    ends = index[-1].value + round(step_h * _NS_PER_H)
    departs_inside = np.array([s.departure.value <= ends for s in sessions])
    servable = np.minimum(owed, total_kwh)
    cum = np.cumsum(deliverable_kwh, axis=1)
    remaining_after = total_kwh[:, None] - cum
    must = np.clip(servable[:, None] - remaining_after, 0.0, None)
    due = np.minimum(energy_due_in_window_kwh(states, index, step_h, owed), servable)
    # sessions leaving after the window: their steady-progress share, by the window's end
    must = np.where(departs_inside[:, None], must, 0.0)
    must[~departs_inside, -1] = due[~departs_inside]
    may = np.minimum(cum, servable[:, None])
    cap = np.minimum(site_cap, site_kwh / step_h / 1000.0)
    return SiteEnvelope(
        cap_mw=cap,
        e_min_mwh=must.sum(axis=0) / 1000.0,
        e_max_mwh=may.sum(axis=0) / 1000.0,
    )


@dataclass(frozen=True, kw_only=True)
class SiteAllocation:
    """Per-session charging power of one site: kW averaged over each step, (n_sessions, T)."""

    session_ids: tuple[str, ...]
    p_kw: np.ndarray


def allocate_site(
    site: EvChargingSite,
    states: Sequence[SessionState],
    site_p_mw: np.ndarray,
    index: pd.DatetimeIndex,
    step_h: float,
    *,
    top_up: bool = True,
    finish_margin_h: float = 0.0,
) -> SiteAllocation:
    """Split the site's planned power among its sessions, exactly: a small LP per site.

    It minimises the energy owed at departure first; among allocations that owe the same, it
    serves every session in proportion to its need as early as the plan allows (each kWh a step
    later costs a little more, relative to the session's need), which spreads the site's power
    over the sessions present instead of finishing one vehicle before starting the next.
    Never above a session's power limit, never outside its stay, never beyond what it asked for,
    and the site's limit held at every minute (each session's power is held while it is plugged
    in within a step; see :class:`StepSegments`). Energy in the last ``finish_margin_h`` of a
    stay costs a little more (a driver who leaves early still has it): a preference that never
    costs delivered energy, since a kWh owed costs a thousand times more.
    With ``top_up`` a session the plan would leave short may draw beyond the site's planned power
    (within the site's limit) at a cost between the two: the site envelope the optimiser sees is
    a relaxation, and the few kWh it can misplace are better delivered than owed. The caller
    checks the result in AC power flow.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    states = [s for s in states if s.session.site == site.id]
    t = len(index)
    if not states:
        return SiteAllocation(session_ids=(), p_kw=np.zeros((0, t)))
    sessions = [s.session for s in states]
    hours = presence_h(sessions, index, step_h)
    cap_kwh = hours * session_limits_kw(site, sessions)[:, None]
    owed = servable_owed_kwh(site, states, index, step_h)
    budget_kwh = np.clip(np.asarray(site_p_mw, dtype=float), 0.0, None) * 1000.0 * step_h
    budget_kwh = np.minimum(budget_kwh, site.p_site_max_kw * step_h) + 1e-9
    due = np.minimum(energy_due_in_window_kwh(states, index, step_h, owed), owed)
    rows, cols = np.nonzero(cap_kwh > 1e-9)
    n_x, n_s = len(rows), len(sessions)
    room_kwh = (site.p_site_max_kw * step_h - budget_kwh).clip(0.0) if top_up else np.zeros(t)
    # variables: x (energy of session rows[k] in step cols[k]); per session the shortfall on what
    # is due inside the window and on the rest; per step a top-up beyond the plan
    late = _share_in_last_h(sessions, index, step_h, finish_margin_h)[rows, cols]
    urgency = _urgency(sessions, owed, session_limits_kw(site, sessions), index[0], step_h)
    c = np.r_[
        (1.0 + late + urgency[rows] * (cols - 1.0)) * 1e-3,
        np.ones(n_s),
        np.full(n_s, 1e-4),
        np.full(t, 0.02),
    ]
    n_var = n_x + 2 * n_s + t
    seg_r, seg_v, seg_c, seg_b = site_limit_rows(site, sessions, index, step_h, rows, cols)
    a_ub = coo_matrix(
        (
            np.r_[np.ones(n_x), -np.ones(t), seg_c],
            (np.r_[cols, np.arange(t), t + seg_r],
             np.r_[np.arange(n_x), n_x + 2 * n_s + np.arange(t), seg_v]),
        ),
        shape=(t + len(seg_b), n_var),
    )
    sess = np.arange(n_s)
    energy_rows = coo_matrix(
        (
            np.ones(n_x + 2 * n_s),
            (np.r_[rows, sess, sess], np.r_[np.arange(n_x), n_x + sess, n_x + n_s + sess]),
        ),
        shape=(n_s, n_var),
    )
    res = linprog(
        c,
        A_ub=a_ub.tocsr(),
        b_ub=np.r_[budget_kwh, seg_b],
        A_eq=energy_rows.tocsr(),
        b_eq=owed,
        bounds=np.c_[np.zeros(n_var), np.r_[cap_kwh[rows, cols], due, owed - due, room_kwh]],
        method="highs",
    )
    energy = np.zeros((n_s, t))
    if res.status == 0:
        energy[rows, cols] = np.clip(res.x[:n_x], 0.0, None)
    else:  # cannot happen for a well-formed site (zero charging is feasible); stay safe
        energy[:] = 0.0
    # energy is zero wherever the vehicle is away, so the step average needs no mask
    return SiteAllocation(session_ids=tuple(s.id for s in sessions), p_kw=energy / step_h)


def _urgency(
    sessions: Sequence[EvSession], owed_kwh: np.ndarray, p_kw: np.ndarray, now: pd.Timestamp,
    step_h: float,
) -> np.ndarray:
    """How much a session's charging loses by waiting, in (0, 1]: ``step_h / (laxity + step_h)``
    with its laxity the hours it could still wait and finish at full power (least laxity first:
    the vehicle with the least slack is served first; one with a night ahead of it waits)."""
    stay_h = np.array([(s.departure - max(s.arrival, now)).total_seconds() / 3600.0
                       for s in sessions])
    with np.errstate(divide="ignore", invalid="ignore"):
        laxity_h = np.where(p_kw > 0, stay_h - owed_kwh / p_kw, stay_h)
    return step_h / (np.clip(laxity_h, 0.0, None) + step_h)


def _share_in_last_h(
    sessions: Sequence[EvSession], index: pd.DatetimeIndex, step_h: float, last_h: float
) -> np.ndarray:
    """The share of each session's time in each step that lies in the last ``last_h`` of its
    stay: (n_sessions, T), 0 without a margin."""
    hours = presence_h(sessions, index, step_h)
    if last_h <= 0 or not len(sessions):
        return np.zeros_like(hours)
    margin = pd.Timedelta(hours=last_h)
    tail = [replace(s, arrival=max(s.arrival, s.departure - margin)) for s in sessions]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hours > 0, presence_h(tail, index, step_h) / hours, 0.0)


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
        give = give + _water_fill(np.where(group, room - give, 0.0), left)
    return {s.id: float(kw) for s, kw in zip(sessions, give, strict=True)}


def _water_fill(room: np.ndarray, amount: float) -> np.ndarray:
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


def uncontrolled_site_kw(
    site: EvChargingSite, states: Sequence[SessionState], index: pd.DatetimeIndex, step_h: float
) -> SiteAllocation:
    """Unmanaged charging: every vehicle at full power from arrival until done, the hub's
    connection limit shared equally (what a site without orderly charging does)."""
    states = [s for s in states if s.session.site == site.id]
    t = len(index)
    if not states:
        return SiteAllocation(session_ids=(), p_kw=np.zeros((0, t)))
    sessions = [s.session for s in states]
    hours = presence_h(sessions, index, step_h)
    cap_kwh = hours * session_limits_kw(site, sessions)[:, None]
    owed = servable_owed_kwh(site, states, index, step_h)
    energy = np.zeros((len(states), t))
    for k in range(t):
        room = np.minimum(cap_kwh[:, k], owed)
        budget = site.p_site_max_kw * step_h
        give = room if room.sum() <= budget else _water_fill(room, budget)
        energy[:, k] = give
        owed = owed - give
    return SiteAllocation(session_ids=tuple(s.id for s in sessions), p_kw=energy / step_h)
