"""Truth and forecast: a realised day and forecasts of it whose error grows with lead time.

A forecast issued at ``t`` covers the steps from the one containing ``t``. Step k (0-based) has
lead time k × step. Each quantity has an error envelope

    e(lead) = min(step_one + growth × sqrt(lead_h), max)

and the forecast error at step k is e(lead_k) × u_k, with u a smooth seeded noise path in
[-1, 1] (AR(1), correlation time ``correlation_h``). So step one is within ``step_one`` of the
truth and the error grows with lead time. PV and load errors are relative (PV clipped to
[0, the largest truth value of that system], loads to ≥ 0); temperature errors are in °C. PV errors
share a common weather component across systems (``pv_common_frac``), load errors partly
(``load_common_frac``). Prices and carbon intensity are published ahead: forecast = truth.

EV sessions: a session that has arrived by ``t`` is known exactly (arrival, announced departure,
requested energy). A future session is forecast as the truth's session with its arrival and
departure shifted together by e_ev_time(lead) × u hours (kept after ``t``) and its energy scaled
by 1 + e_ev_energy(lead) × u, capped at what ``max_kw`` can deliver; where a shifted session
would overlap an earlier one on the same connector, it starts when that one leaves, and it is
dropped if less than 10 minutes remain. Forecast sessions keep the truth's ids.
The noise of a forecast is seeded by the seed and the issue time: the same call gives
the same forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasts._random import bounded_ar1, stream
from forecasts.bundle import ForecastBundle, build
from forecasts.errors import ForecastInputError
from forecasts.ev import EvSession, sessions_overlapping
from forecasts.timegrid import floor_to_step, to_duration, to_local
from network_models.model import GridModel

_MIN_DWELL = pd.Timedelta(minutes=10)


@dataclass(frozen=True, kw_only=True)
class ErrorEnvelope:
    """Largest forecast error at a lead time: ``min(step_one + growth × sqrt(lead_h), max)``."""

    step_one: float
    growth_per_sqrt_h: float
    max: float

    def __post_init__(self) -> None:
        if min(self.step_one, self.growth_per_sqrt_h, self.max) < 0:
            raise ValueError("ErrorEnvelope values must be ≥ 0")

    def at(self, lead_h: np.ndarray) -> np.ndarray:
        """The envelope at each lead time (hours, ≥ 0)."""
        lead = np.clip(np.asarray(lead_h, dtype=float), 0.0, None)
        return np.minimum(self.step_one + self.growth_per_sqrt_h * np.sqrt(lead), self.max)


@dataclass(frozen=True, kw_only=True)
class ForecastErrorModel:
    """Error envelopes of each forecast quantity (defaults are assumptions, typical day-ahead)."""

    pv_rel: ErrorEnvelope = ErrorEnvelope(step_one=0.03, growth_per_sqrt_h=0.08, max=0.40)
    load_rel: ErrorEnvelope = ErrorEnvelope(step_one=0.01, growth_per_sqrt_h=0.015, max=0.10)
    temperature_c: ErrorEnvelope = ErrorEnvelope(step_one=0.2, growth_per_sqrt_h=0.4, max=3.0)
    ev_time_h: ErrorEnvelope = ErrorEnvelope(step_one=0.0, growth_per_sqrt_h=0.15, max=1.0)
    ev_energy_rel: ErrorEnvelope = ErrorEnvelope(step_one=0.0, growth_per_sqrt_h=0.05, max=0.30)
    pv_common_frac: float = 0.8
    load_common_frac: float = 0.5
    correlation_h: float = 3.0

    @classmethod
    def perfect(cls) -> ForecastErrorModel:
        """No error at all: forecasts equal the truth (for tests and perfect-foresight studies)."""
        zero = ErrorEnvelope(step_one=0.0, growth_per_sqrt_h=0.0, max=0.0)
        return cls(pv_rel=zero, load_rel=zero, temperature_c=zero, ev_time_h=zero,
                   ev_energy_rel=zero)


@dataclass(frozen=True)
class TruthAndForecasts:
    """A realised truth and the error model to forecast it with."""

    truth: ForecastBundle
    errors: ForecastErrorModel = ForecastErrorModel()
    seed: int = 0

    @classmethod
    def build(
        cls,
        model: GridModel,
        start: object,
        horizon: object = "24h",
        step: object = "15min",
        *,
        seed: int = 0,
        errors: ForecastErrorModel = ForecastErrorModel(),
        **build_options: object,
    ) -> TruthAndForecasts:
        """The truth from :func:`forecasts.bundle.build` with the same arguments, and ``errors``."""
        truth = build(model, start, horizon, step, seed=seed, **build_options)  # type: ignore[arg-type]
        return cls(truth=truth, errors=errors, seed=seed)

    def forecast_at(self, issued_at: object, horizon: object | None = None) -> ForecastBundle:
        """The forecast issued at ``issued_at`` from its step up to the truth's end (or horizon)."""
        truth = self.truth
        t_issue = to_local(issued_at, what="issued_at", tz=str(truth.index.tz))
        first = floor_to_step(t_issue, truth.step)
        end = truth.end if horizon is None else min(truth.end, first + to_duration(horizon,
                                                                                   what="horizon"))
        if first < truth.start or first >= truth.end:
            raise ForecastInputError(
                f"issue time {t_issue.isoformat()} is outside the scenario "
                f"({truth.start.isoformat()} to {truth.end.isoformat()})", field="issued_at"
            )
        window = truth.window(first, end)
        n = len(window.index)
        lead_h = np.arange(n) * truth.step_h
        rng = stream(self.seed, "forecast", int(t_issue.value // 1_000_000_000))
        phi = float(np.exp(-truth.step_h / max(self.errors.correlation_h, 1e-9)))
        e = self.errors

        pv_err = e.pv_rel.at(lead_h)[:, None] * _mixed_noise(
            rng, n, phi, window.pv_p_mw.shape[1], e.pv_common_frac)
        pv_cap = truth.pv_p_mw.max().to_numpy()
        pv = window.pv_p_mw * (1.0 + pv_err)
        pv = pv.clip(lower=0.0, upper=pd.Series(pv_cap, index=pv.columns), axis=1)

        load_err = e.load_rel.at(lead_h)[:, None] * _mixed_noise(
            rng, n, phi, window.load_p_mw.shape[1], e.load_common_frac)
        load_p = (window.load_p_mw * (1.0 + load_err)).clip(lower=0.0)
        load_q = window.load_q_mvar * (1.0 + load_err)

        temperature = window.temperature_c + e.temperature_c.at(lead_h) * bounded_ar1(rng, n, phi)

        sessions = forecast_sessions(window.ev_sessions, t_issue, e, rng)
        return replace(
            window,
            pv_p_mw=pv,
            load_p_mw=load_p,
            load_q_mvar=load_q,
            temperature_c=temperature.rename("temperature_c"),
            ev_sessions=sessions_overlapping(sessions, window.start, window.end),
            issued_at=t_issue,
        )


def forecast_sessions(
    truth_sessions: Sequence[EvSession],
    issued_at: pd.Timestamp,
    errors: ForecastErrorModel,
    rng: np.random.Generator,
) -> tuple[EvSession, ...]:
    """Sessions as known at ``issued_at``: arrived ones exact, future ones perturbed.

    See the module docstring for how future sessions are perturbed.
    """
    ordered = sorted(truth_sessions, key=lambda s: (s.arrival.value, s.id))
    n = len(ordered)
    u_time = np.clip(0.5 * rng.standard_normal(n), -1.0, 1.0)
    u_energy = np.clip(0.5 * rng.standard_normal(n), -1.0, 1.0)
    busy_until: dict[tuple[str, str], pd.Timestamp] = {}
    out: list[EvSession] = []
    # Known sessions first, so a perturbed future one yields to them on a connector.
    for s in ordered:
        if s.arrival <= issued_at:
            out.append(s)
            busy_until[(s.site, s.connector)] = s.departure
    for k, s in enumerate(ordered):
        if s.arrival <= issued_at:
            continue
        lead_h = (s.arrival - issued_at).value / 3.6e12
        shift = pd.Timedelta(hours=float(errors.ev_time_h.at(np.array([lead_h]))[0] * u_time[k]))
        shift = pd.Timedelta(minutes=round(shift / pd.Timedelta(minutes=1)))
        arrival = max(s.arrival + shift, issued_at.ceil("min") + pd.Timedelta(minutes=1))
        departure = s.departure + (arrival - s.arrival)
        free = busy_until.get((s.site, s.connector))
        if free is not None and arrival < free:
            arrival = free
        if departure - arrival < _MIN_DWELL:
            continue
        scale = 1.0 + errors.ev_energy_rel.at(np.array([lead_h]))[0] * u_energy[k]
        dwell_h = (departure - arrival).value / 3.6e12
        energy = _feasible_energy_kwh(s.energy_kwh * scale, s.max_kw * dwell_h)
        out.append(replace(s, arrival=arrival, departure=departure, energy_kwh=energy))
        busy_until[(s.site, s.connector)] = departure
    out.sort(key=lambda s: (s.arrival.value, s.id))
    return tuple(out)


def _feasible_energy_kwh(energy_kwh: float, cap_kwh: float) -> float:
    """Energy to the Wh, never above what the session can take."""
    rounded = round(max(energy_kwh, 0.0), 3)
    return rounded if rounded <= cap_kwh else float(np.floor(cap_kwh * 1000.0) / 1000.0)


def _mixed_noise(
    rng: np.random.Generator, n: int, phi: float, columns: int, common_frac: float
) -> np.ndarray:
    """Noise in [-1, 1] per column: a shared path mixed with one of each column's own."""
    if columns == 0:
        return np.zeros((n, 0))
    common = bounded_ar1(rng, n, phi)[:, None]
    own = bounded_ar1(rng, n, phi, columns)
    return np.clip(common_frac * common + (1.0 - common_frac) * own, -1.0, 1.0)
