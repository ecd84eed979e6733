"""The EV sessions of a plan: which are planned for, what is owed, what the plan may chase.

The optimiser sees each EV site as an energy envelope (a relaxation); the split among sessions
(``ev_charging.allocate_site``) then decides each session's power. These functions say which
sessions a window holds, what each is left owed, which of those gaps a higher envelope could
close (and which no schedule could), and what vehicles that should not wait can take now.
Energies in kWh per session, MWh per site; times tz-aware.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from controllers.config import DispatchConfig
from controllers.dispatch_problem import DispatchSolution
from controllers.ev_charging import (
    SessionState,
    max_site_energy_kwh,
    presence_h,
    servable_owed_kwh,
    sessions_that_should_not_wait,
)
from controllers.schedule import DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.registry import EvChargingSite


def session_states(bundle: ForecastBundle, snapshot: GridSnapshot) -> tuple[SessionState, ...]:
    """The sessions a plan from ``snapshot`` serves: the measured ones win; forecast sessions not
    measured are added as owed if they arrive in the window after now (one that has arrived yet
    is not measured is not plugged in any more)."""
    known = {s.session.id: s for s in snapshot.ev_sessions}
    states = list(known.values())
    end = bundle.end
    for s in bundle.ev_sessions:
        if s.id not in known and s.departure > snapshot.time and s.arrival < end:
            if s.arrival < snapshot.time:
                continue  # already arrived yet not measured: not plugged in any more
            states.append(SessionState(session=s, energy_delivered_kwh=0.0))
    return tuple(s for s in states if s.session.departure > snapshot.time)


def shortfall_kwh(
    bundle: ForecastBundle, states: Sequence[SessionState], schedule: DispatchSchedule
) -> dict[str, float]:
    """Session id -> kWh still owed at a departure inside the window (more than 1 Wh)."""
    out: dict[str, float] = {}
    end = bundle.end
    delivered = schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
    for s in states:
        if s.session.departure <= end:
            got = float(delivered.get(s.session.id, 0.0))
            owed = s.energy_owed_kwh - got
            if owed > 1e-3:
                out[s.session.id] = round(owed, 4)
    return out


def fixable_shortfall(
    sites: Sequence[EvChargingSite],
    bundle: ForecastBundle,
    states: Sequence[SessionState],
    schedule: DispatchSchedule,
    solution: DispatchSolution,
    ev_energy_min_mwh: np.ndarray,
) -> list[tuple[int, int, float]]:
    """(site row, step of departure, kWh) for sessions left short of what they could get
    (an unservable session's gap beyond its maximum is reported, not chased), at sites
    whose plan met their envelope by that step: where the plan itself fell short of the
    envelope (the grid or the site limit could not carry it), a higher envelope costs the
    same per MWh and changes nothing, so it is reported, not chased."""
    short = shortfall_kwh(bundle, states, schedule)
    if not short:
        return []
    planned_mwh = np.cumsum(solution.ev_p_mw, axis=1) * bundle.step_h
    plan_short = ev_energy_min_mwh - planned_mwh > 1e-6
    site_row = {s.id: k for k, s in enumerate(sites)}
    by_id = {s.session.id: s for s in states}
    by_site = {s.id: s for s in sites}
    delivered = schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
    out = []
    for sid in short:
        st = by_id[sid]
        site = by_site[st.session.site]
        servable = float(servable_owed_kwh(site, [st], bundle.index, bundle.step_h)[0])
        kwh = servable - float(delivered.get(sid, 0.0))
        if kwh <= 1e-3:
            continue  # no schedule can serve more: reported, not chased
        hours = presence_h([st.session], bundle.index, bundle.step_h)[0]
        present = np.flatnonzero(hours > 0)
        row, step = site_row[site.id], int(present[-1])
        if plan_short[row, step]:
            continue
        out.append((row, step, kwh))
    return out


def topped_up(
    sites: Sequence[EvChargingSite], schedule: DispatchSchedule, solution: DispatchSolution
) -> bool:
    """True if the split among sessions drew more than the plan's site power somewhere."""
    if not len(sites):
        return False
    drawn = schedule.ev_site_p_mw.to_numpy().T
    return bool((drawn - solution.ev_p_mw > 1e-6).any())


def unservable_note(
    sites: Sequence[EvChargingSite],
    bundle: ForecastBundle,
    states: Sequence[SessionState],
    short: Mapping[str, float],
) -> str | None:
    """What of the shortfall no schedule could have served: sessions that ask for more than
    the rest of their stay allows at their power."""
    by_site = {s.id: s for s in sites}
    gaps = {}
    for st in states:
        if st.session.id in short and st.session.site in by_site:
            servable = servable_owed_kwh(by_site[st.session.site], [st], bundle.index,
                                         bundle.step_h)[0]
            gap = st.energy_owed_kwh - float(servable)
            if gap > 1e-3:
                gaps[st.session.id] = gap
    if not gaps:
        return None
    named = ", ".join(f"{sid} {kwh:.1f} kWh" for sid, kwh in list(gaps.items())[:5])
    return (f"{len(gaps)} session(s) unservable on their own (more than their stay allows at "
            f"their power), {sum(gaps.values()):.1f} kWh of the shortfall: {named}"
            + (", ..." if len(gaps) > 5 else ""))


def vehicles_that_should_not_wait(
    site: EvChargingSite,
    states: Sequence[SessionState],
    now: pd.Timestamp,
    config: DispatchConfig,
) -> list[SessionState]:
    """The vehicles plugged in at ``site`` whose charging the plan does not defer, with the
    thresholds of ``config`` (:func:`~controllers.ev_charging.sessions_that_should_not_wait`);
    none when ``ev_deferral_cny_per_mwh`` is off. The MPC gives them the grid's room too."""
    if config.weights.ev_deferral_cny_per_mwh <= 0:
        return []
    return sessions_that_should_not_wait(
        site, states, now, slack_h=config.ev_wait_slack_min / 60.0,
        busy_frac=config.ev_site_busy_frac,
        oversubscribed_ratio=config.ev_site_oversubscribed_ratio)


def first_step_floor_mwh(
    site: EvChargingSite,
    snapshot: GridSnapshot,
    index: pd.DatetimeIndex,
    step_h: float,
    config: DispatchConfig,
) -> float:
    """What the vehicles at ``site`` that should not wait can take in the first step, MWh:
    each at its power limit up to what it can still get, the site within its limit at every
    minute. The optimiser is asked for it (a soft floor priced at
    ``ev_deferral_cny_per_mwh``) so that no price or peak term holds such a vehicle back
    while the site has room and the grid is not limiting: energy deferred is energy a later
    arrival, unknown now, may take (the shortfall risk of an online plan)."""
    plugged = vehicles_that_should_not_wait(site, snapshot.ev_sessions, snapshot.time, config)
    if not plugged:
        return 0.0
    owed = servable_owed_kwh(site, plugged, index, step_h)
    kwh = max_site_energy_kwh(site, [st.session for st in plugged], index[:1], step_h, owed)
    return float(kwh[0]) / 1000.0
