"""The split of one site's planned power among its sessions, over a horizon, under its limit.

After the solve, :func:`allocate_site` splits each site's power among its sessions: first what
a session needs now to finish by its departure (least laxity), spread over the sessions present,
never above a session's power limit, never outside its stay, never beyond the energy it can
still get; the allocation restores per-session exactness and reports any session that cannot be
served in full. :func:`uncontrolled_site_kw` is the site without orderly charging, to compare.

Units: kW and kWh for sessions, MW for sites. Times are step starts (tz-aware).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from controllers.ev_energy import (
    SessionState,
    deliverable_kwh,
    energy_due_in_window_kwh,
    presence_h,
    servable_owed_kwh,
    session_limits_kw,
    site_limit_rows,
)
from controllers.ev_field_split import water_fill
from forecasts.ev import EvSession
from network_models.registry import EvChargingSite


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
    in within a step; see :class:`~controllers.ev_energy.StepSegments`). Energy in the last
    ``finish_margin_h`` of a stay costs a little more (a driver who leaves early still has it):
    a preference that never costs delivered energy, since a kWh owed costs a thousand times more.
    With ``top_up`` a session the plan would leave short may draw beyond the site's planned power
    (within the site's limit) at a cost between the two: the site envelope the optimiser sees is
    a relaxation, and the few kWh it can misplace are better delivered than owed. The caller
    checks the result in AC power flow.
    """
    from scipy.optimize import linprog

    states = [s for s in states if s.session.site == site.id]
    t = len(index)
    if not states:
        return SiteAllocation(session_ids=(), p_kw=np.zeros((0, t)))
    sessions = [s.session for s in states]
    lp = _allocation_lp(site, states, site_p_mw, index, step_h, top_up=top_up,
                        finish_margin_h=finish_margin_h)
    res = linprog(lp.c, A_ub=lp.a_ub, b_ub=lp.b_ub, A_eq=lp.a_eq, b_eq=lp.b_eq,
                  bounds=lp.bounds, method="highs")
    energy = np.zeros((len(sessions), t))
    if res.status == 0:
        energy[lp.rows, lp.cols] = np.clip(res.x[:len(lp.rows)], 0.0, None)
    else:  # cannot happen for a well-formed site (zero charging is feasible); stay safe
        energy[:] = 0.0
    # energy is zero wherever the vehicle is away, so the step average needs no mask
    return SiteAllocation(session_ids=tuple(s.id for s in sessions), p_kw=energy / step_h)


@dataclass(frozen=True, kw_only=True)
class _AllocationLp:
    """The LP of :func:`allocate_site` for one site, in ``scipy.optimize.linprog``'s terms.

    Variables: x (energy of session ``rows[k]`` in step ``cols[k]``, kWh); per session the
    shortfall on what is due inside the window and on the rest; per step a top-up beyond the
    plan. Rows: per step the plan's site energy (less the top-up), the site limit on every
    segment where it can bind; per session its energy and shortfalls summing to what it owes.
    """

    rows: np.ndarray
    cols: np.ndarray
    c: np.ndarray
    a_ub: Any  # scipy.sparse CSR matrix
    b_ub: np.ndarray
    a_eq: Any  # scipy.sparse CSR matrix
    b_eq: np.ndarray
    bounds: np.ndarray


def _allocation_lp(
    site: EvChargingSite,
    states: Sequence[SessionState],
    site_p_mw: np.ndarray,
    index: pd.DatetimeIndex,
    step_h: float,
    *,
    top_up: bool,
    finish_margin_h: float,
) -> _AllocationLp:
    """The allocation LP of the site's sessions ``states`` (all of them at ``site``)."""
    from scipy.sparse import coo_matrix

    t = len(index)
    sessions = [s.session for s in states]
    cap_kwh = deliverable_kwh(site, sessions, index, step_h)
    owed = servable_owed_kwh(site, states, index, step_h)
    budget_kwh = np.clip(np.asarray(site_p_mw, dtype=float), 0.0, None) * 1000.0 * step_h
    budget_kwh = np.minimum(budget_kwh, site.p_site_max_kw * step_h) + 1e-9
    due = np.minimum(energy_due_in_window_kwh(states, index, step_h, owed), owed)
    rows, cols = np.nonzero(cap_kwh > 1e-9)
    n_x, n_s = len(rows), len(sessions)
    room_kwh = (site.p_site_max_kw * step_h - budget_kwh).clip(0.0) if top_up else np.zeros(t)
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
    return _AllocationLp(
        rows=rows, cols=cols,
        c=_allocation_costs(site, sessions, owed, index, step_h, finish_margin_h, rows, cols),
        a_ub=a_ub.tocsr(), b_ub=np.r_[budget_kwh, seg_b], a_eq=energy_rows.tocsr(), b_eq=owed,
        bounds=np.c_[np.zeros(n_var), np.r_[cap_kwh[rows, cols], due, owed - due, room_kwh]],
    )


def _allocation_costs(
    site: EvChargingSite, sessions: Sequence[EvSession], owed_kwh: np.ndarray,
    index: pd.DatetimeIndex, step_h: float, finish_margin_h: float,
    rows: np.ndarray, cols: np.ndarray,
) -> np.ndarray:
    """The cost of each variable of :class:`_AllocationLp`: a kWh later or in the last
    ``finish_margin_h`` of a stay a little dearer (later by the session's urgency), a kWh
    short of what is due inside the window a thousand times dearer, one short of the rest
    a tenth as dear, a top-up beyond the plan in between."""
    late = _share_in_last_h(sessions, index, step_h, finish_margin_h)[rows, cols]
    urgency = _urgency(sessions, owed_kwh, session_limits_kw(site, sessions), index[0], step_h)
    return np.r_[
        (1.0 + late + urgency[rows] * (cols - 1.0)) * 1e-3,
        np.ones(len(sessions)),
        np.full(len(sessions), 1e-4),
        np.full(len(index), 0.02),
    ]


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
    cap_kwh = deliverable_kwh(site, sessions, index, step_h)
    owed = servable_owed_kwh(site, states, index, step_h)
    energy = np.zeros((len(states), t))
    for k in range(t):
        room = np.minimum(cap_kwh[:, k], owed)
        budget = site.p_site_max_kw * step_h
        give = room if room.sum() <= budget else water_fill(room, budget)
        energy[:, k] = give
        owed = owed - give
    return SiteAllocation(session_ids=tuple(s.id for s in sessions), p_kw=energy / step_h)
