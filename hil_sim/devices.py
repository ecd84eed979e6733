"""Device dynamics of the simulated field: BESS, PV inverters and EV charging sites.

Small pure functions do the physics; the ``*Unit`` classes hold each device's state between
ticks. Signs as in the registry: BESS and PV ``p_mw``/``q_mvar`` are injections (discharge and
generation positive); EV ``p_kw`` is drawn (charging positive). Energies: MWh for BESS, kWh
for EV; ``step_h`` is the tick in hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasts import EvSession
from network_models.registry import Bess, EvChargingSite, PvSystem

# ---------------------------------------------------------------------------------------------
# pure physics


def ramp(previous: float, target: float, max_change: float) -> float:
    """``target`` reached from ``previous`` by at most ``max_change`` (same unit)."""
    return previous + min(max(target - previous, -max_change), max_change)


def bess_power_limits_mw(bess: Bess, soc_frac: float, step_h: float) -> tuple[float, float]:
    """(most charging, most discharging) injection in MW over ``step_h`` that keeps the state of
    charge within [soc_min, soc_max] and the power within the rating; charging is negative."""
    room_mwh = max(bess.soc_max_frac - soc_frac, 0.0) * bess.e_mwh
    stored_mwh = max(soc_frac - bess.soc_min_frac, 0.0) * bess.e_mwh
    charge = min(bess.p_mw, room_mwh / (bess.eta_charge * step_h))
    discharge = min(bess.p_mw, stored_mwh * bess.eta_discharge / step_h)
    return -charge, discharge


def integrate_soc(bess: Bess, soc_frac: float, p_mw: float, step_h: float) -> float:
    """State of charge after injecting ``p_mw`` for ``step_h``: charging stores ``eta_charge`` of
    the energy drawn, discharging draws ``1 / eta_discharge`` of the energy delivered."""
    charging = p_mw < 0.0
    stored = -p_mw * step_h * bess.eta_charge if charging else -p_mw * step_h / bess.eta_discharge
    return soc_frac + stored / bess.e_mwh


def reactive_within(q_set_mvar: float, p_mw: float, s_mva: float) -> float:
    """``q_set_mvar`` limited to what the rating leaves after the active power (P priority)."""
    q_max = math.sqrt(max(s_mva * s_mva - p_mw * p_mw, 0.0))
    return min(max(q_set_mvar, -q_max), q_max)


def share_site_limit(p_kw: np.ndarray, limit_kw: float) -> np.ndarray:
    """Connector powers scaled down together so that their sum stays within ``limit_kw``."""
    total = float(p_kw.sum())
    if total <= limit_kw or total <= 0.0:
        return p_kw
    return p_kw * (max(limit_kw, 0.0) / total)


# ---------------------------------------------------------------------------------------------
# device state


@dataclass
class _Watchdog:
    """Device-side safety: setpoints count only while writes keep arriving."""

    last_write: pd.Timestamp | None = None

    def expired(self, now: pd.Timestamp, timeout_s: float) -> bool:
        return self.last_write is None or (now - self.last_write).total_seconds() > timeout_s


@dataclass
class BessUnit:
    spec: Bess
    soc_frac: float
    p_set_mw: float = 0.0
    q_set_mvar: float = 0.0
    p_mw: float = 0.0
    q_mvar: float = 0.0
    p_prev_mw: float = 0.0  # output of the tick before: where a ramp starts
    tripped: bool = False
    watchdog: _Watchdog = field(default_factory=_Watchdog)

    def dispatch(
        self,
        *,
        fallback: bool,
        energised: bool,
        step_h: float,
        ramp_frac_per_s: float,
    ) -> None:
        """Output for the coming tick from the setpoints (or the safe default), within the
        rating, the state of charge and the ramp rate. Tripped or de-energised: 0."""
        if self.tripped or not energised:
            self.p_mw, self.q_mvar = 0.0, 0.0
            return
        p_target = 0.0 if fallback else self.p_set_mw
        q_target = 0.0 if fallback else self.q_set_mvar
        lo, hi = bess_power_limits_mw(self.spec, self.soc_frac, step_h)
        step = ramp_frac_per_s * self.spec.p_mw * step_h * 3600.0
        self.p_mw = min(max(ramp(self.p_prev_mw, p_target, step), lo), hi)
        self.q_mvar = reactive_within(q_target, self.p_mw, self.spec.s_mva)

    def integrate(self, step_h: float) -> None:
        soc = integrate_soc(self.spec, self.soc_frac, self.p_mw, step_h)
        # the limits above keep it inside; clip only float round-off
        self.soc_frac = min(max(soc, 0.0), 1.0)


@dataclass
class PvUnit:
    spec: PvSystem
    p_limit_mw: float
    q_set_mvar: float = 0.0
    p_avail_mw: float = 0.0
    p_mw: float = 0.0
    q_mvar: float = 0.0
    p_prev_mw: float = 0.0
    tripped: bool = False
    watchdog: _Watchdog = field(default_factory=_Watchdog)

    def dispatch(
        self,
        *,
        fallback: bool,
        energised: bool,
        step_h: float,
        ramp_frac_per_s: float,
    ) -> None:
        """Output: available power under the curtailment limit (none in fallback), ramped up,
        never above what the sun gives; 0 when tripped or de-energised (anti-islanding)."""
        if self.tripped or not energised:
            self.p_mw, self.q_mvar = 0.0, 0.0
            return
        limit = self.spec.p_mwp if fallback else self.p_limit_mw
        target = min(self.p_avail_mw, limit)
        step = ramp_frac_per_s * self.spec.s_mva * step_h * 3600.0
        self.p_mw = max(min(ramp(self.p_prev_mw, target, step), self.p_avail_mw), 0.0)
        q_target = 0.0 if fallback or not self.spec.q_capable else self.q_set_mvar
        self.q_mvar = reactive_within(q_target, self.p_mw, self.spec.s_mva)


@dataclass
class EvSiteUnit:
    """An EV charging site: one session slot, setpoint and energy counter per connector."""

    spec: EvChargingSite
    p_set_kw: np.ndarray
    site_limit_kw: float
    sessions: list[EvSession | None]
    delivered_kwh: np.ndarray
    p_kw: np.ndarray
    p_prev_kw: np.ndarray
    tripped: bool = False
    watchdog: _Watchdog = field(default_factory=_Watchdog)
    # per connector, the session that ended last and the energy it got in all (kWh)
    ended: list[tuple[str, float] | None] = field(default_factory=list)

    @classmethod
    def new(cls, spec: EvChargingSite) -> EvSiteUnit:
        n = spec.n_connectors
        return cls(
            spec=spec,
            p_set_kw=np.full(n, spec.fallback_kw_per_connector),
            site_limit_kw=spec.p_site_max_kw,
            sessions=[None] * n,
            delivered_kwh=np.zeros(n),
            p_kw=np.zeros(n),
            p_prev_kw=np.zeros(n),
            ended=[None] * n,
        )

    def connector_index(self, connector: str) -> int | None:
        if not connector.startswith("c") or not connector[1:].isdigit():
            return None
        k = int(connector[1:]) - 1
        return k if 0 <= k < self.spec.n_connectors else None

    def dispatch(
        self,
        *,
        now: pd.Timestamp,
        fallback: bool,
        energised: bool,
        step_h: float,
        ramp_frac_per_s: float,
    ) -> np.ndarray:
        """Mean charging power of every connector over the coming tick, kW.

        Each vehicle draws its setpoint (the fallback power when the watchdog expired), at most
        its own ``max_kw`` and the connector rating, never more than it still asks for and only
        until it departs; the site's limit is shared in proportion. Returns the hours each
        connector charges within the tick (up to departure).
        """
        n = self.spec.n_connectors
        hours = np.zeros(n)
        target = np.zeros(n)
        if not self.tripped and energised:
            setpoint = (
                np.full(n, self.spec.fallback_kw_per_connector) if fallback else self.p_set_kw
            )
            for k, session in enumerate(self.sessions):
                if session is None:
                    continue
                hours[k] = min(step_h, (session.departure - now).total_seconds() / 3600.0)
                if hours[k] <= 0.0:
                    continue
                owed = max(session.energy_kwh - self.delivered_kwh[k], 0.0)
                cap = min(
                    float(setpoint[k]), session.max_kw, self.spec.p_connector_kw, owed / hours[k]
                )
                target[k] = max(cap, 0.0)
            limit = (
                self.spec.p_site_max_kw
                if fallback
                else min(self.site_limit_kw, self.spec.p_site_max_kw)
            )
            target = share_site_limit(target, limit)
        step = ramp_frac_per_s * self.spec.p_connector_kw * step_h * 3600.0
        ramped = np.minimum(np.maximum(target, self.p_prev_kw - step), self.p_prev_kw + step)
        # a ramp never keeps a vehicle drawing more than its target (owed energy, departure)
        self.p_kw = np.minimum(np.maximum(ramped, 0.0), target)
        return hours

    def integrate(self, hours: np.ndarray) -> None:
        for k, session in enumerate(self.sessions):
            if session is None:
                continue
            self.delivered_kwh[k] = min(
                self.delivered_kwh[k] + self.p_kw[k] * hours[k], session.energy_kwh
            )

    def mean_power_kw(self, hours: np.ndarray, step_h: float) -> np.ndarray:
        """Connector power averaged over the whole tick (a vehicle leaving mid-tick draws part)."""
        return self.p_kw * (hours / step_h)

    def depart(self, now: pd.Timestamp) -> list[tuple[EvSession, float]]:
        """Vehicles whose departure has come leave, each with the energy it got (kWh); their
        counters reset."""
        gone = []
        for k, session in enumerate(self.sessions):
            if session is not None and session.departure <= now:
                gone.append((session, float(self.delivered_kwh[k])))
                self.ended[k] = (session.id, float(self.delivered_kwh[k]))
                self.sessions[k] = None
                self.delivered_kwh[k] = 0.0
                self.p_kw[k] = 0.0
                self.p_prev_kw[k] = 0.0
        return gone

    def arrive(self, session: EvSession, delivered_kwh: float = 0.0) -> bool:
        """Plug a vehicle in at its connector; False if the connector is unknown or busy.

        A new session starts at the connector's rating (within the site limit) until the
        controller sets its power: a setpoint belongs to the session it was written for, as a
        charging profile belongs to its transaction (OCPP's default profile for new ones).
        """
        k = self.connector_index(session.connector)
        if k is None or self.sessions[k] is not None:
            return False
        self.p_set_kw[k] = self.spec.p_connector_kw
        self.sessions[k] = session
        self.delivered_kwh[k] = min(delivered_kwh, session.energy_kwh)
        self.p_kw[k] = 0.0
        self.p_prev_kw[k] = 0.0
        return True
