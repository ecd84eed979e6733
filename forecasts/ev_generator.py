"""Seeded EV session generator by charging-site type (distributions are assumptions).

Times are hours after local midnight of the session's day (> 24 = next day). "N(m, s) in [a, b]"
is a normal distribution truncated to [a, b]. Each connector of a site draws independently.

==============  ====================================================================================
site type       sessions per connector and day
==============  ====================================================================================
office_ac       commuter: p = 0.90 weekdays, 0.25 weekends; arrival N(8.75, 0.75) in [6.5, 11];
                departure N(18, 1.25) in [12, 22]; energy N(14, 6) in [3, 40] kWh
residential_ac  evening: p = 0.85; arrival N(19, 1.5) in [16, 23.9]; departure next morning
                N(31.5, 1) in [29, 34]; energy N(12, 6) in [2, 40] kWh.
                daytime top-up: p = 0.20 weekdays, 0.35 weekends; arrival N(12, 1.2) in
                [10, 14.5]; dwell N(2.5, 1) in [0.5, 6] h, leaving by 16:00; energy N(8, 4) in
                [2, 25] kWh
public_dc       Poisson, mean 10 weekdays and 12 weekends; arrival hour from an hourly profile with
                midday and evening peaks; dwell N(0.6, 0.25) in [0.25, 1.5] h; energy N(30, 12) in
                [5, 80] kWh; a car that finds the connector busy waits and plugs in 3 min after
                the previous one leaves; the day's last session ends by midnight
bus_depot       overnight: p = 0.95; arrival N(21.5, 1) in [19, 25]; departure N(29.5, 0.5) in
                [28, 31]; energy N(250, 60) in [80, 400] kWh.
                midday opportunity charge: p = 0.40; arrival N(12.5, 1) in [10.5, 14]; dwell
                N(1.5, 0.5) in [0.5, 3] h, leaving by 16:00; energy N(80, 30) in [20, 180] kWh
==============  ====================================================================================

Vehicle power limits: AC 3.3 / 6.6 / 7 kW (15 / 35 / 50 %), DC 60 / 90 / 120 / 150 kW (20 / 30 /
30 / 20 %), buses 150 kW; ``max_kw`` = min(vehicle, connector rating). Times are rounded to the
minute, then the energy is capped at ``max_kw × dwell`` (rounded down to the Wh), so every session
is feasible on its own. Each kind of session has its own window of the day and windows do not
overlap, so sessions on one connector never overlap and a day's sessions depend only on the seed,
the site and the day, not on the horizon they are generated for. With Jiuke Oasis's 408
connectors this gives 620–700 sessions a day, weekends included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from forecasts._random import stream
from forecasts.ev import EvSession
from network_models.model import TIMEZONE
from network_models.registry import EvChargingSite, EvSiteType

MIN_DWELL_MIN = 10
DC_CHANGEOVER_MIN = 3


@dataclass(frozen=True)
class TruncatedNormal:
    """A normal distribution truncated to [lo, hi] (sampled by inverse CDF)."""

    mean: float
    sd: float
    lo: float
    hi: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        a = ndtr((self.lo - self.mean) / self.sd)
        b = ndtr((self.hi - self.mean) / self.sd)
        x = self.mean + self.sd * ndtri(a + (b - a) * rng.random(n))
        return np.clip(x, self.lo, self.hi)


@dataclass(frozen=True, kw_only=True)
class SessionKind:
    """One kind of session at a site type: when it happens, how long, how much energy."""

    code: str
    p_weekday: float  # probability per connector-day, or mean count when ``poisson``
    p_weekend: float
    arrival_h: TruncatedNormal | None  # None: hourly ``arrival_weights`` (Poisson kinds)
    departure_h: TruncatedNormal | None = None
    dwell_h: TruncatedNormal | None = None
    window_end_h: float  # latest departure, hours after the day's midnight
    energy_kwh: TruncatedNormal
    vehicle_kw: tuple[tuple[float, float], ...]  # (kW, probability)
    poisson: bool = False
    arrival_weights: tuple[float, ...] = ()


_AC_VEHICLES = ((3.3, 0.15), (6.6, 0.35), (7.0, 0.50))
_DC_VEHICLES = ((60.0, 0.20), (90.0, 0.30), (120.0, 0.30), (150.0, 0.20))
_BUS_VEHICLES = ((150.0, 1.0),)
_DC_ARRIVAL_WEIGHTS = (
    0.6, 0.4, 0.3, 0.3, 0.3, 0.4, 0.8, 1.6, 2.2, 2.4, 2.6, 3.0,
    3.2, 3.0, 2.6, 2.4, 2.6, 3.0, 3.4, 3.2, 2.6, 2.0, 1.4, 0.9,
)

SESSION_KINDS: dict[EvSiteType, tuple[SessionKind, ...]] = {
    EvSiteType.OFFICE_AC: (
        SessionKind(
            code="w", p_weekday=0.90, p_weekend=0.25,
            arrival_h=TruncatedNormal(8.75, 0.75, 6.5, 11.0),
            departure_h=TruncatedNormal(18.0, 1.25, 12.0, 22.0), window_end_h=22.0,
            energy_kwh=TruncatedNormal(14.0, 6.0, 3.0, 40.0), vehicle_kw=_AC_VEHICLES,
        ),
    ),
    EvSiteType.RESIDENTIAL_AC: (
        SessionKind(
            code="d", p_weekday=0.20, p_weekend=0.35,
            arrival_h=TruncatedNormal(12.0, 1.2, 10.0, 14.5),
            dwell_h=TruncatedNormal(2.5, 1.0, 0.5, 6.0), window_end_h=16.0,
            energy_kwh=TruncatedNormal(8.0, 4.0, 2.0, 25.0), vehicle_kw=_AC_VEHICLES,
        ),
        SessionKind(
            code="e", p_weekday=0.85, p_weekend=0.85,
            arrival_h=TruncatedNormal(19.0, 1.5, 16.0, 23.9),
            departure_h=TruncatedNormal(31.5, 1.0, 29.0, 34.0), window_end_h=34.0,
            energy_kwh=TruncatedNormal(12.0, 6.0, 2.0, 40.0), vehicle_kw=_AC_VEHICLES,
        ),
    ),
    EvSiteType.PUBLIC_DC: (
        SessionKind(
            code="q", p_weekday=10.0, p_weekend=12.0, arrival_h=None,
            dwell_h=TruncatedNormal(0.6, 0.25, 0.25, 1.5), window_end_h=24.0,
            energy_kwh=TruncatedNormal(30.0, 12.0, 5.0, 80.0), vehicle_kw=_DC_VEHICLES,
            poisson=True, arrival_weights=_DC_ARRIVAL_WEIGHTS,
        ),
    ),
    EvSiteType.BUS_DEPOT: (
        SessionKind(
            code="m", p_weekday=0.40, p_weekend=0.40,
            arrival_h=TruncatedNormal(12.5, 1.0, 10.5, 14.0),
            dwell_h=TruncatedNormal(1.5, 0.5, 0.5, 3.0), window_end_h=16.0,
            energy_kwh=TruncatedNormal(80.0, 30.0, 20.0, 180.0), vehicle_kw=_BUS_VEHICLES,
        ),
        SessionKind(
            code="n", p_weekday=0.95, p_weekend=0.95,
            arrival_h=TruncatedNormal(21.5, 1.0, 19.0, 25.0),
            departure_h=TruncatedNormal(29.5, 0.5, 28.0, 31.0), window_end_h=31.0,
            energy_kwh=TruncatedNormal(250.0, 60.0, 80.0, 400.0), vehicle_kw=_BUS_VEHICLES,
        ),
    ),
}
_LOOKBACK_DAYS = 2  # no session lasts longer than this


@dataclass(frozen=True)
class _Draws:
    """Sessions of one site and day as arrays (minutes after the day's midnight)."""

    connector: np.ndarray
    code: list[str]
    arrival_min: np.ndarray
    departure_min: np.ndarray
    energy_kwh: np.ndarray
    max_kw: np.ndarray


def generate_sessions(
    sites: Sequence[EvChargingSite],
    start: pd.Timestamp,
    end: pd.Timestamp,
    seed: int,
) -> tuple[EvSession, ...]:
    """Sessions at ``sites`` plugged in at some time in [start, end), sorted by arrival then id.

    Days and hours are local in ``start``'s time zone (the model's: commuters arrive at 08:45
    on the local clock, wherever the grid is)."""
    tz = str(start.tz) if start.tz is not None else TIMEZONE
    first = (start.tz_convert(tz).normalize() - pd.Timedelta(days=_LOOKBACK_DAYS)).date()
    last = (end.tz_convert(tz) - pd.Timedelta(1)).date()
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    sessions: list[EvSession] = []
    for site in sites:
        for day in days:
            draws = _draw_site_day(site, day, seed)
            sessions.extend(_to_sessions(site, day, draws, start.value, end.value, tz))
    sessions.sort(key=lambda s: (s.arrival.value, s.id))
    return tuple(sessions)


def _draw_site_day(site: EvChargingSite, day: dt.date, seed: int) -> _Draws:
    rng = stream(seed, "ev", site.id, day.toordinal())
    weekend = day.weekday() >= 5
    parts = [
        (_draw_poisson_kind if kind.poisson else _draw_daily_kind)(site, kind, weekend, rng)
        for kind in SESSION_KINDS[site.site_type]
    ]
    return _Draws(
        connector=np.concatenate([p.connector for p in parts]),
        code=[c for p in parts for c in p.code],
        arrival_min=np.concatenate([p.arrival_min for p in parts]),
        departure_min=np.concatenate([p.departure_min for p in parts]),
        energy_kwh=np.concatenate([p.energy_kwh for p in parts]),
        max_kw=np.concatenate([p.max_kw for p in parts]),
    )


def _draw_daily_kind(
    site: EvChargingSite, kind: SessionKind, weekend: bool, rng: np.random.Generator
) -> _Draws:
    n = site.n_connectors
    present = rng.random(n) < (kind.p_weekend if weekend else kind.p_weekday)
    assert kind.arrival_h is not None
    arrival_h = kind.arrival_h.sample(rng, n)
    if kind.departure_h is not None:
        departure_h = kind.departure_h.sample(rng, n)
    else:
        assert kind.dwell_h is not None
        departure_h = arrival_h + kind.dwell_h.sample(rng, n)
    energy = kind.energy_kwh.sample(rng, n)
    vehicle_kw = _vehicle_kw(kind, rng, n)
    connector = np.arange(1, n + 1)
    return _finish(site, kind, present, connector, arrival_h, departure_h, energy, vehicle_kw)


def _draw_poisson_kind(
    site: EvChargingSite, kind: SessionKind, weekend: bool, rng: np.random.Generator
) -> _Draws:
    mean = kind.p_weekend if weekend else kind.p_weekday
    counts = rng.poisson(mean, site.n_connectors)
    total = int(counts.sum())
    weights = np.asarray(kind.arrival_weights, dtype=float)
    hours = rng.choice(24, size=total, p=weights / weights.sum()) + rng.random(total)
    assert kind.dwell_h is not None
    dwell = kind.dwell_h.sample(rng, total)
    energy = kind.energy_kwh.sample(rng, total)
    vehicle_kw = _vehicle_kw(kind, rng, total)
    connector = np.repeat(np.arange(1, site.n_connectors + 1), counts)
    arrival = hours.copy()
    # Queue the day's arrivals at each connector: a busy connector delays the next car.
    changeover_h = DC_CHANGEOVER_MIN / 60.0
    order = np.lexsort((arrival, connector))
    connector, arrival, dwell = connector[order], arrival[order], dwell[order]
    energy, vehicle_kw = energy[order], vehicle_kw[order]
    free_at = -np.inf
    for k in range(total):
        if k == 0 or connector[k] != connector[k - 1]:
            free_at = -np.inf
        arrival[k] = max(arrival[k], free_at + changeover_h)
        free_at = arrival[k] + dwell[k]
    present = np.ones(total, dtype=bool)
    return _finish(site, kind, present, connector, arrival, arrival + dwell, energy, vehicle_kw)


def _vehicle_kw(kind: SessionKind, rng: np.random.Generator, n: int) -> np.ndarray:
    kw = np.array([v for v, _ in kind.vehicle_kw])
    p = np.array([q for _, q in kind.vehicle_kw])
    return rng.choice(kw, size=n, p=p / p.sum())


def _finish(
    site: EvChargingSite,
    kind: SessionKind,
    present: np.ndarray,
    connector: np.ndarray,
    arrival_h: np.ndarray,
    departure_h: np.ndarray,
    energy_kwh: np.ndarray,
    vehicle_kw: np.ndarray,
) -> _Draws:
    arrival_min = np.round(arrival_h * 60.0).astype(np.int64)
    departure_min = np.round(np.minimum(departure_h, kind.window_end_h) * 60.0).astype(np.int64)
    keep = present & (departure_min - arrival_min >= MIN_DWELL_MIN)
    max_kw = np.minimum(vehicle_kw, site.p_connector_kw)
    dwell_h = (departure_min - arrival_min) / 60.0
    capped = np.floor(np.minimum(energy_kwh, max_kw * dwell_h) * 1000.0) / 1000.0
    return _Draws(
        connector=connector[keep],
        code=[kind.code] * int(keep.sum()),
        arrival_min=arrival_min[keep],
        departure_min=departure_min[keep],
        energy_kwh=capped[keep],
        max_kw=max_kw[keep],
    )


def _to_sessions(
    site: EvChargingSite, day: dt.date, draws: _Draws, start_ns: int, end_ns: int, tz: str
) -> list[EvSession]:
    # minutes from local midnight in absolute time: on a day the clocks change, a commuter's
    # 18:00 departure is an hour off the wall clock (an assumption that keeps days alike)
    midnight_ns = pd.Timestamp(day).tz_localize(tz).value
    arrival_ns = midnight_ns + draws.arrival_min * 60_000_000_000
    departure_ns = midnight_ns + draws.departure_min * 60_000_000_000
    hit = np.flatnonzero((arrival_ns < end_ns) & (departure_ns > start_ns))
    if len(hit) == 0:
        return []
    # Box all timestamps at once: indexing a DatetimeIndex element by element is slow.
    arrivals = pd.DatetimeIndex(arrival_ns[hit], tz="UTC").tz_convert(tz).tolist()
    departures = pd.DatetimeIndex(departure_ns[hit], tz="UTC").tz_convert(tz).tolist()
    stamp = day.strftime("%Y%m%d")
    out = []
    for j, k in enumerate(hit):
        c = int(draws.connector[k])
        out.append(EvSession(
            id=f"{site.id}/{stamp}/c{c}/{draws.code[k]}{draws.arrival_min[k]:04d}",
            site=site.id,
            connector=f"c{c}",
            arrival=arrivals[j],
            departure=departures[j],
            energy_kwh=float(draws.energy_kwh[k]),
            max_kw=float(draws.max_kw[k]),
        ))
    return out
