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

This module is the public surface; the work is done by concern in:

- :mod:`controllers.ev_energy`: energy bookkeeping of sessions (presence in each step, the
  segments between arrivals and departures, the site limit on them, what is owed and due);
- :mod:`controllers.ev_site_envelope`: a site's envelope for the optimiser;
- :mod:`controllers.ev_site_split`: the split of a site's planned power among its sessions over
  the horizon, under the site limit (and unmanaged charging, to compare);
- :mod:`controllers.ev_field_split`: the split of a site's power over its connectors in the
  field, for the rest of a step (least laxity first).

Units: kW and kWh for sessions, MW and MWh for sites. Times are step starts (tz-aware).
"""

from __future__ import annotations

from controllers.ev_energy import (
    SessionState,
    StepSegments,
    deliverable_kwh,
    energy_due_in_window_kwh,
    presence_h,
    servable_owed_kwh,
    session_limits_kw,
    sessions_that_should_not_wait,
    site_limit_rows,
    step_segments,
)
from controllers.ev_field_split import split_rest_of_step, water_fill
from controllers.ev_site_envelope import SiteEnvelope, max_site_energy_kwh, site_envelope
from controllers.ev_site_split import SiteAllocation, allocate_site, uncontrolled_site_kw

__all__ = [
    "SessionState",
    "SiteAllocation",
    "SiteEnvelope",
    "StepSegments",
    "allocate_site",
    "deliverable_kwh",
    "energy_due_in_window_kwh",
    "max_site_energy_kwh",
    "presence_h",
    "servable_owed_kwh",
    "session_limits_kw",
    "sessions_that_should_not_wait",
    "site_envelope",
    "site_limit_rows",
    "split_rest_of_step",
    "step_segments",
    "uncontrolled_site_kw",
    "water_fill",
]
