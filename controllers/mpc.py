"""Receding-horizon control: every step, re-plan the next hours from fresh measurements.

``RecedingHorizonController.step(snapshot, forecast)`` plans ``horizon_steps`` ahead from the
measured state (BESS SoC, EV energy delivered so far, switch positions) and returns the setpoints
of the first step with a decision record. The problem is built once; each step only updates its
parameters. Batteries end the window at the day-ahead plan's state of charge when a day plan is
given, so a short window still follows the day's arbitrage.

Fallback chain, recorded in the decision: when the solver fails or runs past ``deadline_s``,
the last good schedule shifted to now; when there is none (or it does not cover now), a
rule-based safe dispatch (batteries idle, PV uncurtailed, every vehicle charged just in time
within half its site's limit). A plan that came late but passed its AC check is sent rather
than a fallback that fails it (seen on jiuke_2030 at the evening peak: a 7 s plan replaced by
a rule-based dispatch that overloaded three transformers). Setpoints are always clamped to each
device's limits.

Whatever was decided, plan or fallback, is checked against the measured SoC before it is sent:
each battery's power is clipped step by step so that its projected SoC never goes further out
of its band, a battery of unknown SoC is held at 0 MW (``bess_soc``), and the record names each
battery whose reading was out of band, faulty or unknown and each power that was clipped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from controllers.bess_soc import SocReading, guard_schedule, read_fleet, soc_issues
from controllers.config import DispatchConfig
from controllers.dispatch import Dispatcher
from controllers.ev_charging import (
    presence_h,
    session_limits_kw,
    split_rest_of_step,
)
from controllers.ev_setpoints import Occupancy, sites_setpoints
from controllers.schedule import DecisionRecord, DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.model import GridModel


@dataclass(frozen=True, kw_only=True, eq=False)
class MpcDecision:
    """The setpoints of the first step and why.

    With the connectors' occupancy given to :meth:`RecedingHorizonController.step`, the EV
    sites' setpoints are each connector's power and the site limit made from ``session_p_kw``
    (:mod:`controllers.ev_setpoints`): what the runtime writes as it is."""

    time: pd.Timestamp
    setpoints: Mapping[str, Mapping[str, float]]  # device id -> point name -> value
    session_p_kw: Mapping[str, float]  # session id -> charging power for this step
    schedule: DispatchSchedule
    record: DecisionRecord
    planned_import_mw: float = float("nan")  # AC power flow of the first step, when planned
    # site id -> power beyond the plan the grid takes in the first step (kW): a vehicle that
    # plugs in before the next step may use it (``split_rest_of_step``)
    ev_site_room_kw: Mapping[str, float] = field(default_factory=dict)


class RecedingHorizonController:
    """Model-predictive dispatch with a fixed-length window and a fallback chain."""

    def __init__(
        self,
        model: GridModel,
        *,
        horizon_steps: int = 32,
        step_h: float = 0.25,
        config: DispatchConfig | None = None,
        deadline_s: float = 5.0,
        day_plan: DispatchSchedule | None = None,
    ) -> None:
        base = config or DispatchConfig()
        # one re-linearisation per step is enough: the base point is last step's AC solution
        self.config = replace(base, max_relinearisations=min(base.max_relinearisations, 2))
        self.model = model
        self.horizon_steps = horizon_steps
        self.step_h = step_h
        self.deadline_s = deadline_s
        self.day_plan = day_plan
        self.dispatcher = Dispatcher(model, steps=horizon_steps, step_h=step_h, config=self.config)
        self.last_good: DispatchSchedule | None = None

    def step(self, snapshot: GridSnapshot, forecast: ForecastBundle, *,
             plugged_in: Occupancy | None = None) -> MpcDecision:
        """Plan from ``snapshot`` over the forecast and return the first step's setpoints.

        ``plugged_in``: who is plugged in at which connector of each EV site, as the chargers
        report it; with it the decision carries every connector's setpoint and the site limits
        made from the sessions' powers, without it the site limits of the schedule's first
        step."""
        t0 = time.perf_counter()
        if dict(snapshot.switch_closed) != self.dispatcher.switch_closed and snapshot.switch_closed:
            # topology changed (restoration, reconfiguration): new network, new problem
            self.dispatcher = Dispatcher(
                self.model,
                steps=self.horizon_steps,
                step_h=self.step_h,
                config=self.config,
                switch_closed=snapshot.switch_closed,
            )
            self.last_good = None
        self._set_terminal_targets(snapshot.time)
        base = self._shifted_last_good(snapshot.time)  # last step's plan as base point
        readings = read_fleet(self.model.registry.bess, snapshot.bess_soc_frac)
        notes: list[str] = []
        late = None  # a plan that passed its AC check after the deadline
        try:
            result = self.dispatcher.plan(forecast, snapshot, base=base)
            plan_ok = result.solution is not None and result.solution.ok and result.ac.passed
            record = result.record
            schedule = result.schedule
            if not plan_ok:
                notes.append(f"plan not usable: {record.status}, AC passed {result.ac.passed}")
            elapsed = time.perf_counter() - t0
            if plan_ok and elapsed > self.deadline_s:
                plan_ok, late = False, schedule
                notes.append(f"plan took {elapsed:.2f} s, past the {self.deadline_s} s deadline")
        except Exception as exc:  # the fallback chain exists precisely for this
            plan_ok, record, schedule, result = False, None, None, None
            notes.append(f"planning failed: {type(exc).__name__}: {exc}")
        fallback = None
        if not plan_ok:
            schedule, fallback = self._fallback(snapshot, forecast, late, notes)
            plan_ok = fallback is None  # the late plan, sent after all
        # the last check before anything is sent: every path, plan or fallback, from what was
        # measured (an old schedule knows nothing of the battery's present charge)
        schedule, clipped = guard_schedule(
            schedule,
            self.model.registry.bess,
            readings,
            use_island_reserve=self.config.use_island_reserve,
        )
        notes.extend(clipped)
        if plan_ok:
            self.last_good = schedule
        ac_check = record.ac_check if record is not None else {}
        if fallback is not None or clipped:
            # the record carries the AC check of what is sent, not of a plan it replaced
            ac_check = self._ac_of(forecast, schedule, notes)
        record = _record_sent(snapshot.time, record, fallback, ac_check, notes, readings,
                              total_s=time.perf_counter() - t0)
        room_kw = self._ev_site_room_kw(forecast, schedule) if plan_ok else {}
        session_kw = self._session_setpoints(snapshot, schedule, room_kw)
        setpoints = first_step_setpoints(self.model, schedule)
        if plugged_in is not None:
            step_end = snapshot.time + pd.Timedelta(hours=self.step_h)
            setpoints.update(sites_setpoints(self.model.registry.ev_sites, session_kw,
                                             plugged_in, step_end))
        return MpcDecision(
            time=snapshot.time,
            setpoints=setpoints,
            session_p_kw=session_kw,
            schedule=schedule,
            record=record,
            planned_import_mw=float(result.ac.import_mw[0])
            if fallback is None and result is not None else float("nan"),
            ev_site_room_kw=room_kw,
        )

    def _fallback(
        self, snapshot: GridSnapshot, forecast: ForecastBundle,
        late: DispatchSchedule | None, notes: list[str],
    ) -> tuple[DispatchSchedule, str | None]:
        """What is sent when the plan is not: the last good schedule shifted to now, else a
        rule-based safe dispatch; but a ``late`` plan that passed its AC check rather than a
        fallback that fails it (then no fallback is named)."""
        shifted = self._shifted_last_good(snapshot.time)
        if shifted is not None:
            schedule, fallback = shifted, "last_schedule_shifted"
        else:
            schedule, fallback = (
                self.dispatcher.safe_schedule(forecast, snapshot),
                "rule_based_safe_dispatch",
            )
        notes.append(f"fallback: {fallback}")
        if late is not None:
            checked = self._ac_of(forecast, schedule, notes)
            if not checked.get("passed", False):
                notes.append(f"the fallback breaks {checked.get('violation_count', '?')} AC "
                             "limit(s): the late plan, which passed its AC check, is sent")
                return late, None
        return schedule, fallback

    # -- internals -----------------------------------------------------------------------------
    def _ac_of(self, forecast: ForecastBundle, schedule: DispatchSchedule,
               notes: list[str]) -> dict:
        """The AC check of ``schedule`` against the forecast (a summary; says so when it could
        not be made)."""
        try:
            end = schedule.index[-1] + pd.Timedelta(hours=schedule.step_h)
            return self.dispatcher.evaluate(forecast.window(schedule.index[0], end),
                                            schedule).summary()
        except Exception as exc:
            notes.append(f"the AC check of the schedule sent failed: {type(exc).__name__}: {exc}")
            return {"passed": False, "evaluated": False}

    def _ev_site_room_kw(
        self, forecast: ForecastBundle, schedule: DispatchSchedule
    ) -> dict[str, float]:
        """Room at each EV site beyond its planned first-step power, kW: up to its rating where
        an AC power flow of the first step with every site at its rating holds every limit,
        none where it does not (then only the plan's power is known to be safe)."""
        sites = self.model.registry.ev_sites
        planned = schedule.ev_site_p_mw.iloc[0]
        room = {s.id: max(s.p_site_max_kw - 1000.0 * float(planned.get(s.id, 0.0)), 0.0)
                for s in sites}
        if not any(kw > 1e-6 for kw in room.values()):
            return {}
        first = schedule.index[:1]

        def cut(df: pd.DataFrame) -> pd.DataFrame:
            return df.iloc[:1]

        full = pd.DataFrame({s.id: [s.p_site_max_kw / 1000.0] for s in sites}, index=first)
        probe = replace(schedule, index=first, pv_p_mw=cut(schedule.pv_p_mw),
                        pv_q_mvar=cut(schedule.pv_q_mvar), bess_p_mw=cut(schedule.bess_p_mw),
                        bess_q_mvar=cut(schedule.bess_q_mvar),
                        bess_soc_frac=cut(schedule.bess_soc_frac), ev_site_p_mw=full,
                        ev_session_p_kw=cut(schedule.ev_session_p_kw))
        try:
            window = forecast.window(first[0], first[0] + pd.Timedelta(hours=self.step_h))
            ok = self.dispatcher.evaluate(window, probe).passed
        except Exception:  # no check, no room: the plan's power stays the budget
            ok = False
        return room if ok else {}

    def _session_setpoints(
        self, snapshot: GridSnapshot, schedule: DispatchSchedule, room_kw: Mapping[str, float]
    ) -> dict[str, float]:
        """Charging power of each session for the first step, kW while plugged in.

        The schedule holds step averages (a vehicle leaving mid-step gets its energy sooner).
        At each site the vehicles plugged in now are then split as between two steps
        (:func:`split_rest_of_step`, the plan's first-step site power the budget): one that
        cannot wait for the next plan is served first, least laxity first. The plan holds each
        session's power for the whole step, which makes a short stay look dear in site capacity;
        the field re-splits at every arrival and departure, so a vehicle that leaves mid-step
        can have its energy first and the others the power it leaves."""
        out = {}
        first = schedule.index[:1]
        for st in snapshot.ev_sessions:
            sid = st.session.id
            if sid not in schedule.ev_session_p_kw.columns:
                continue
            hours = float(presence_h([st.session], first, self.step_h)[0, 0])
            mean_kw = float(schedule.ev_session_p_kw[sid].iloc[0])
            kw = mean_kw * self.step_h / hours if hours > 1e-9 else 0.0
            out[sid] = min(kw, st.session.max_kw)
        now, step_end = snapshot.time, snapshot.time + pd.Timedelta(hours=self.step_h)
        for site in self.model.registry.ev_sites:
            plugged = [st for st in snapshot.ev_sessions if st.session.site == site.id
                       and st.session.arrival <= now < st.session.departure]
            if not plugged or site.id not in schedule.ev_site_p_mw.columns:
                continue
            planned_site_kw = 1000.0 * float(schedule.ev_site_p_mw[site.id].iloc[0])
            # the vehicles that should not wait may have the room the grid has beyond the plan
            # (checked in AC): the plan's step average is not what they can take
            hurry = self.dispatcher.vehicles_that_should_not_wait(site, plugged, now)
            hurry_kw = float(session_limits_kw(site, [st.session for st in hurry]).sum())
            out.update(split_rest_of_step(site, plugged, now, step_end, planned_site_kw,
                                          room_kw=min(room_kw.get(site.id, 0.0), hurry_kw)))
        return out

    def _set_terminal_targets(self, now: pd.Timestamp) -> None:
        if self.day_plan is None:
            return
        end = now + pd.Timedelta(hours=self.step_h * self.horizon_steps)
        soc = self.day_plan.bess_soc_frac
        at = soc.index[soc.index <= end - pd.Timedelta(hours=self.step_h)]
        if len(at):
            row = soc.loc[at[-1]]
            # a day plan made with a battery's SoC unknown has no target for it
            self.dispatcher.terminal_soc_frac = {
                k: float(v) for k, v in row.items() if np.isfinite(v)
            }

    def _shifted_last_good(self, now: pd.Timestamp) -> DispatchSchedule | None:
        if self.last_good is None:
            return None
        idx = self.last_good.index
        if now < idx[0] or now > idx[-1]:
            return None
        steps = round((now - idx[0]) / pd.Timedelta(hours=self.step_h))
        return self.last_good.shifted(steps) if steps else self.last_good


def _record_sent(
    now: pd.Timestamp, record: DecisionRecord | None, fallback: str | None, ac_check: dict,
    notes: list[str], readings: Mapping[str, SocReading], *, total_s: float,
) -> DecisionRecord:
    """The record of what is sent: the plan's (when there was one) with the fallback used, the
    AC check of what is sent, the batteries' SoC issues and every note."""
    return DecisionRecord(
        time=now.isoformat(),
        status=record.status if record is not None else "failed",
        fallback=fallback,
        objective_cny=record.objective_cny if record is not None else float("nan"),
        terms_cny=record.terms_cny if record is not None else {},
        solve_s=record.solve_s if record is not None else 0.0,
        total_s=total_s,
        relinearisations=record.relinearisations if record is not None else 0,
        ac_check=ac_check,
        ev_shortfall_kwh=record.ev_shortfall_kwh if record is not None else {},
        bess_soc_issues=soc_issues(readings),
        notes=(record.notes if record is not None else ()) + tuple(notes),
        # what bound the plan; a fallback sends something else, which no dual describes
        binding_constraints=record.binding_constraints
        if record is not None and fallback is None else (),
        limits_readded=record.limits_readded if record is not None else 0,
        ev_envelopes_raised=record.ev_envelopes_raised if record is not None else 0,
    )


def first_step_setpoints(
    model: GridModel, schedule: DispatchSchedule
) -> dict[str, dict[str, float]]:
    """The first step of a schedule as device setpoints, each clamped to its point's limits."""
    reg = model.registry
    out: dict[str, dict[str, float]] = {}

    def clamp(device_id: str, point: str, value: float, scale: float = 1.0) -> float:
        """``value`` (in the schedule's unit) times ``scale`` (to the point's unit), clamped;
        bounded before it is scaled, so that no finite value overflows on the way."""
        p = reg[device_id].point(point)
        v = float(value) if np.isfinite(value) else 0.0
        lo = p.min_value if p.min_value is not None else -np.inf
        hi = p.max_value if p.max_value is not None else np.inf
        v = min(max(v, lo / scale), hi / scale) * scale
        return float(min(max(v, lo), hi))  # exactly inside, whatever the scaling rounded

    for pv in reg.pv:
        out[pv.id] = {
            "p_limit_mw": clamp(pv.id, "p_limit_mw", schedule.pv_p_mw[pv.id].iloc[0]),
            "q_set_mvar": clamp(pv.id, "q_set_mvar", schedule.pv_q_mvar[pv.id].iloc[0]),
        }
    for b in reg.bess:
        out[b.id] = {
            "p_set_mw": clamp(b.id, "p_set_mw", schedule.bess_p_mw[b.id].iloc[0]),
            "q_set_mvar": clamp(b.id, "q_set_mvar", schedule.bess_q_mvar[b.id].iloc[0]),
        }
    for ev in reg.ev_sites:
        out[ev.id] = {
            "p_site_limit_kw": clamp(
                ev.id, "p_site_limit_kw", schedule.ev_site_p_mw[ev.id].iloc[0], 1000.0
            ),
        }
    return out
