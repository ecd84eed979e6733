"""The envelope of one charging site the dispatch optimiser sees: one flexible load per site.

The optimiser does not see sessions: each site is bounded by the power it can draw in each step
(its sessions present, its limit held at every minute), the energy it must have delivered by
the end of each step and the energy it may have delivered by then. Keeping sessions out of the
network problem is what keeps a 500-session, 96-step re-solve sub-second (see
PERFORMANCE_NOTES.md); :func:`~controllers.ev_site_split.allocate_site` splits the site's power
among its sessions after the solve.

Units: kW and kWh for sessions, MW and MWh for sites. Times are step starts (tz-aware).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controllers.ev_energy import (
    NS_PER_H,
    SessionState,
    deliverable_kwh,
    energy_due_in_window_kwh,
    servable_owed_kwh,
    site_limit_rows,
)
from forecasts.ev import EvSession
from network_models.registry import EvChargingSite


@dataclass(frozen=True, kw_only=True)
class SiteEnvelope:
    """Bounds on one site's charging over a horizon (arrays of length T)."""

    cap_mw: np.ndarray  # most the site can draw in each step (sessions present, site limit)
    e_min_mwh: np.ndarray  # energy that must be delivered by the end of each step
    e_max_mwh: np.ndarray  # energy that may be delivered by the end of each step



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
    cap = deliverable_kwh(site, sessions, index, step_h)
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
    deliverable = deliverable_kwh(site, sessions, index, step_h)
    owed = servable_owed_kwh(site, states, index, step_h)
    # the most the site can draw in each step with its limit held at every minute of it
    site_kwh = max_site_energy_kwh(site, sessions, index, step_h, owed)
    total_kwh = deliverable.sum(axis=1)
    # energy owed beyond the horizon's end stays owed; only what departs inside must be met
    ends = index[-1].value + round(step_h * NS_PER_H)
    departs_inside = np.array([s.departure.value <= ends for s in sessions])
    servable = np.minimum(owed, total_kwh)
    cum = np.cumsum(deliverable, axis=1)
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
