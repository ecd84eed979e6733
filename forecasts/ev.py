"""EV charging sessions: the plain record every scheduler, simulator and file uses.

A session is one vehicle at one connector of an :class:`~network_models.registry.EvChargingSite`
(its ``site``, the registry's device id; "charger" in prose is the equipment at a connector)
from ``arrival`` to ``departure`` (timezone-aware, in the model's time zone), asking for
``energy_kwh`` and able to draw at most ``max_kw`` (≤ the connector's rating). Sessions on one
connector never overlap.

A session is servable on its own when ``energy_kwh ≤ max_kw × dwell``. Real data holds sessions
that are not (ACN-Data rounds times, and a vehicle may draw less than it reported): such a
session keeps the energy it asked for (``energy_kwh``, the record), is planned for the most it
can get (``servable_kwh``) and is reported as unservable (``unservable_kwh``,
``unservable_reason``), apart from any shortfall the grid or the plan causes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

_NS_PER_H = 3_600_000_000_000
# below this a session is servable: times to the second and energies to the Wh round to less
SERVABLE_TOL_KWH = 1e-6


@dataclass(frozen=True, kw_only=True)
class EvSession:
    """One charging session. Energy in kWh, power in kW (charging positive)."""

    id: str
    site: str  # EvChargingSite device id in the registry
    connector: str  # "c1".."cN" of that site
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy_kwh: float
    max_kw: float

    def __post_init__(self) -> None:
        if self.arrival.tzinfo is None or self.departure.tzinfo is None:
            raise ValueError(f"session {self.id!r}: arrival and departure must be timezone-aware")
        if not self.departure > self.arrival:
            raise ValueError(f"session {self.id!r}: departure must be after arrival")
        if not (np.isfinite(self.energy_kwh) and self.energy_kwh >= 0):
            raise ValueError(f"session {self.id!r}: energy_kwh must be finite and ≥ 0")
        if not (np.isfinite(self.max_kw) and self.max_kw > 0):
            raise ValueError(f"session {self.id!r}: max_kw must be finite and > 0")

    @property
    def dwell_h(self) -> float:
        """Time plugged in, hours."""
        return (self.departure - self.arrival).value / _NS_PER_H

    @property
    def min_charging_h(self) -> float:
        """Time needed at ``max_kw`` to deliver ``energy_kwh``, hours."""
        return self.energy_kwh / self.max_kw

    @property
    def max_deliverable_kwh(self) -> float:
        """The most the vehicle can take in its stay: ``max_kw × dwell``, kWh."""
        return self.max_kw * self.dwell_h

    @property
    def servable_kwh(self) -> float:
        """The energy the session can get if nothing else limits it: what it asked for, at most
        :attr:`max_deliverable_kwh`, kWh. Planners aim for this."""
        return min(self.energy_kwh, self.max_deliverable_kwh)

    @property
    def unservable_kwh(self) -> float:
        """What it asked for beyond what it can get even alone, kWh (0 for a servable one)."""
        short = self.energy_kwh - self.max_deliverable_kwh
        return short if short > SERVABLE_TOL_KWH else 0.0

    def is_feasible(self) -> bool:
        """True if the energy can be delivered at ``max_kw`` within the dwell time."""
        return self.unservable_kwh == 0.0

    def unservable_reason(self) -> str | None:
        """Why it cannot be served in full even alone, in an operator's words; None if it can."""
        if self.is_feasible():
            return None
        return (f"needs {self.energy_kwh:.1f} kWh, at most {self.max_deliverable_kwh:.1f} kWh "
                f"in its {round(self.dwell_h, 2):g} h stay at {self.max_kw:g} kW")

    def overlaps(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        """True if the vehicle is plugged in at some time in [start, end)."""
        return self.arrival < end and self.departure > start


def sessions_overlapping(
    sessions: Iterable[EvSession], start: pd.Timestamp, end: pd.Timestamp
) -> tuple[EvSession, ...]:
    """The sessions plugged in at some time in [start, end), sorted by arrival then id."""
    hits = [s for s in sessions if s.arrival < end and s.departure > start]
    return tuple(sorted(hits, key=lambda s: (s.arrival.value, s.id)))


def uncontrolled_charging_kw(
    sessions: Sequence[EvSession], index: pd.DatetimeIndex, sites: Sequence[str]
) -> pd.DataFrame:
    """Charging power per site if every vehicle charges at ``max_kw`` from arrival until done.

    Mean kW over each step of ``index`` (step starts, fixed step), one column per site id. Site
    connection limits are not applied: this is the demand an unmanaged site would see.
    """
    step_ns = int((index[1] - index[0]).value) if len(index) > 1 else _NS_PER_H // 4
    edges = np.append(index.asi8, index.asi8[-1] + step_ns).astype(np.int64)
    t0 = edges[0]
    edges_h = (edges - t0) / _NS_PER_H
    out = {}
    by_site: dict[str, list[EvSession]] = {c: [] for c in sites}
    for s in sessions:
        if s.site in by_site:
            by_site[s.site].append(s)
    for site in sites:
        group = by_site[site]
        if not group:
            out[site] = np.zeros(len(index))
            continue
        kw = np.array([s.max_kw for s in group])
        start_h = (np.array([s.arrival.value for s in group], dtype=np.int64) - t0) / _NS_PER_H
        dwell_h = np.array([s.dwell_h for s in group])
        energy = np.array([s.energy_kwh for s in group])
        end_h = start_h + np.minimum(energy / kw, dwell_h)
        cumulative_kwh = _ramp_sum(edges_h, start_h, kw) - _ramp_sum(edges_h, end_h, kw)
        out[site] = np.diff(cumulative_kwh) / (step_ns / _NS_PER_H)
    return pd.DataFrame(out, index=index, columns=list(sites))


def _ramp_sum(t: np.ndarray, at: np.ndarray, slope: np.ndarray) -> np.ndarray:
    # Σ slope_i · max(t − at_i, 0) at every t, in O((n + m) log n).
    order = np.argsort(at)
    at_sorted = at[order]
    s1 = np.concatenate([[0.0], np.cumsum(slope[order])])
    s2 = np.concatenate([[0.0], np.cumsum(slope[order] * at_sorted)])
    k = np.searchsorted(at_sorted, t, side="right")
    return t * s1[k] - s2[k]
