"""The controller runtime: OPC UA field I/O, the MPC every step, a heartbeat, and the historian.

One asyncio event loop holds the asyncua client and an APScheduler ``AsyncIOScheduler``.

Events come by subscription (:class:`~gridctl.field_watch.FieldWatch`, report by exception):
protection points (trips, switch positions, fault indicators, transformers) and every EV
connector's session. They are answered as they arrive, whatever the scheduled jobs are doing:

- a new trip or lost transformer: FLISR (:class:`~gridctl.self_healing.FaultResponder`) plans
  and its switching is written in order;
- a vehicle plugs in or leaves between control steps: its site's power is split again for the
  rest of the step (:func:`~controllers.ev_setpoints.resplit_site`), so a vehicle with
  little slack starts charging at once instead of at the next step;
- a microgrid loses or regains its upstream supply: its supervisor
  (:class:`~gridctl.microgrids.MicrogridSupervisor`) sheds, restores and reconnects.

Each is a responder under one protocol (:mod:`gridctl.responders`).

EV sites that FLISR or a supervisor curtailed stay at 0 kW through later control steps until
whoever curtailed them releases them.

Against the simulator the subscription also carries its clock and publication counter, so
every batch is the field as of one simulated instant (``field_seq`` tells a drill which
publication the runtime has answered). A short wall-clock job looks at that clock (the wall
clock against a real field) each ``tick_wall_s``; due work, in simulated or real time:

- every ``step_minutes``: read every measurement (one batched read), build the snapshot, run the
  MPC in its own process (:class:`~gridctl.planner.PlannerProcess`: the plan is made on another
  core while events are answered here, and a plan past ``plan_timeout_s`` ends the worker and
  fails that step only), write every setpoint (one batched write), and record it all in the
  historian;
- every ``poll_s``: record the main measurements;
- every ``integrity_wall_s`` of wall time: read the watched points once as an integrity check
  behind the subscription (a value it missed is answered like an event); wall time, because
  it checks the communication, not the process;
- every ``heartbeat_s``: write the last setpoints again, so devices do not fall back;
- on a lost connection: reconnect with exponential backoff, record the gap
  (:mod:`gridctl.runtime_connection`).

The setpoints are the MPC's decision as it is (:mod:`controllers.ev_setpoints` makes the EV
connectors' and sites'); the forecasts come from an injected source
(:mod:`gridctl.runtime_forecast`), the day-ahead plans from :mod:`gridctl.runtime_dayahead`
(each in a process of its own, as the MPC's steps are),
the EV sessions from the chargers' points through :mod:`gridctl.runtime_ev`, and every write
goes through :mod:`gridctl.runtime_writes`. This module keeps the tick and the control step.
It is some 500 lines, above the house's ~400, for a stated reason: the life cycle (resume, run,
stop), the tick's due work and the control step share the due times and the last decision, and
splitting them further would pass that state around; about fifty lines are this docstring and
a few dozen the names its tests and drills reach the parts by.

On start the runtime resumes from the historian: the last setpoints are sent again at once, and
the EV sessions it knew keep their arrival times and the energy delivered to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from controllers.ev_setpoints import held_site_setpoints
from controllers.mpc import MpcDecision
from controllers.schedule import DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.truth_and_forecasts import TruthAndForecasts
from gridctl.field import ev_points
from gridctl.field.contract import FieldContract, PointKey
from gridctl.field_client import FieldClient, PointReading
from gridctl.field_watch import FieldWatch
from gridctl.historian import Historian, HistorianSettings, StoredSession
from gridctl.microgrids import MicrogridSupervisor
from gridctl.planner import PlannerProcess
from gridctl.planner_dayahead import DayAheadProcess
from gridctl.responders import EvResplit, FlisrResponder, MicrogridResponder, Responder
from gridctl.runtime_clock import field_time, jumped, resumed_back
from gridctl.runtime_config import RuntimeConfig, RuntimeStats, planner_for
from gridctl.runtime_connection import FieldConnection
from gridctl.runtime_dayahead import DayAheadPlans
from gridctl.runtime_ev import EvSessionReader, good_values, occupancy
from gridctl.runtime_events import FieldEvents
from gridctl.runtime_forecast import ForecastSource, ModelForecasts
from gridctl.runtime_snapshot import number, polled_points, snapshot_of
from gridctl.runtime_writes import FieldWriter
from gridctl.self_healing import FaultResponder
from network_models import BUILTIN_MODELS
from network_models.model import GridModel
from network_models.registry import DeviceKind, EvChargingSite

__all__ = ["ControllerRuntime", "RuntimeConfig", "RuntimeStats", "planner_for"]

log = logging.getLogger("gridctl.runtime")
# a tick that is still running when the next is due is skipped on purpose; not worth a warning
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)

_MAINTAIN_EVERY = pd.Timedelta(hours=1)
_SETPOINT_DEVICES = frozenset({DeviceKind.BESS, DeviceKind.PV, DeviceKind.EV_SITE})


class ControllerRuntime:
    """Runs the control loop against one OPC UA endpoint (see the module docstring)."""

    def __init__(
        self,
        model: GridModel,
        config: RuntimeConfig,
        *,
        security: Any = None,
        planner: PlannerProcess | None = None,
        responder: FaultResponder | None = None,
        microgrids: Sequence[MicrogridSupervisor] = (),
        historian_settings: HistorianSettings | None = None,
        forecasts: ForecastSource | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.contract = FieldContract.from_model(model)
        self.historian = Historian(config.db_path, settings=historian_settings)
        builtin = model.name in BUILTIN_MODELS
        self.historian.set_meta("model", model.name if builtin else model.source)
        # the MPC plans in a process of its own (see gridctl.planner); started by run()
        # (a caller may start one early and hand it over); the runtime ends it when it stops
        self.planner = planner or planner_for(model, config)
        self.forecasts = forecasts or ModelForecasts(model, config, self.historian)
        # each day-ahead plan in a process of its own, apart from the MPC's (see gridctl.planner)
        self.dayahead_process = DayAheadProcess(model, timeout_s=config.dayahead_timeout_s,
                                                config=config.dispatch)
        self._last_good: DispatchSchedule | None = None  # a fresh planner's fallback
        self.stats = RuntimeStats()
        self.responder = responder
        self.microgrids = tuple(microgrids)
        self.sessions = EvSessionReader(self.historian)
        self.writer = FieldWriter(self._field, self.historian, self.stats)
        self.dayahead = DayAheadPlans(config, self.historian, lambda day: self._day_ahead(day))
        self._flisr = FlisrResponder(responder, self.historian) if responder else None
        self._ev = EvResplit(model, pd.Timedelta(minutes=config.step_minutes), self.sessions,
                             self.historian, self.stats, lambda: self._decision,
                             self.writer.held)
        supervisors = tuple(MicrogridResponder(m) for m in self.microgrids)
        # the islands first: their answer is quick, FLISR's takes an AC study
        responders: tuple[Responder, ...] = (
            *supervisors, *((self._flisr,) if self._flisr else ()))
        self._session_end_points = tuple(ev_points.site_keys(
            model.registry.of_type(EvChargingSite), ev_points.ENDED_POINTS))
        self._watch_points = tuple(dict.fromkeys([
            *(responder.points if responder else ()), *self._ev.points,
            *self._session_end_points, *(k for m in self.microgrids for k in m.points)]))
        self.connection = FieldConnection(
            config, self.contract, security=security, watch_points=self._watch_points,
            historian=self.historian, stats=self.stats, follow=lambda w: self.events.follow(w),
            on_session=self._new_session, field_time=lambda: self.now)
        self.events = FieldEvents(
            timezone=model.site.timezone, connection=self.connection, sessions=self.sessions,
            supervisors=supervisors, responders=responders, ev=self._ev,
            session_end_points=self._session_end_points, writer=self.writer,
            historian=self.historian, stats=self.stats)
        # field time of the last tick that did its due work (a lockstep driver waits on it)
        self.ticked_at: pd.Timestamp | None = None
        self._next_step: pd.Timestamp | None = None
        self._next_heartbeat: pd.Timestamp | None = None
        self._stop = asyncio.Event()
        self._next_poll: pd.Timestamp | None = None
        self._resend_due = True  # the last setpoints go out at once: at start, on a reconnect
        self._resumed_at: pd.Timestamp | None = None  # the historian's last field time
        self._next_maintain: pd.Timestamp | None = None  # historian retention, hourly
        self._next_integrity = time.monotonic() + config.integrity_wall_s
        self._poll_points = polled_points(self.contract, model)
        self._decision: MpcDecision | None = None  # the last one, for splits between steps
        self._stepping: asyncio.Task[None] | None = None  # the control step being made
        self._until: pd.Timestamp | None = None
        self._run_for: pd.Timedelta | None = None
        self.now: pd.Timestamp | None = None
        self._resume()

    # -- the parts, as the loop and its tests see them -----------------------------------------
    @property
    def field_seq(self) -> int | None:
        """The last simulator publication fully answered."""
        return self.events.field_seq

    @property
    def client(self) -> FieldClient | None:
        return self.connection.client

    @property
    def watch(self) -> FieldWatch | None:
        return self.connection.watch

    @property
    def _last_setpoints(self) -> dict[PointKey, Any]:
        return self.writer.last_setpoints

    @property
    def _day_plan(self) -> DispatchSchedule | None:
        return self.dayahead.plan

    @property
    def _day_plans(self) -> dict[dt.date, DispatchSchedule]:
        return self.dayahead.plans

    @property
    def _planning(self) -> set[dt.date]:
        return self.dayahead.planning

    async def _plan_day(self, day: dt.date, issued: pd.Timestamp) -> None:
        await self.dayahead.plan_day(day, issued)

    def _day_ahead_due(self, now: pd.Timestamp) -> None:
        self.dayahead.due(now)

    def _day_ahead(self, day: dt.date):
        """The day planned on its forecast (the controller never sees the simulator's truth), in
        the day-ahead process (called in a thread)."""
        return self.dayahead_process.plan(day, self.forecasts.day_forecast(day))

    def _truth_and_forecasts(self, day: dt.date, n_days: int, step: str) -> TruthAndForecasts:
        """The default forecast source's scenario of the days (what a replay compares with)."""
        assert isinstance(self.forecasts, ModelForecasts)
        return self.forecasts.truth_and_forecasts(day, n_days, step)

    def _field(self) -> FieldClient:
        return self.connection.field()

    # -- life cycle ----------------------------------------------------------------------------
    def _resume(self) -> None:
        self.sessions.resume(self.historian.sessions())
        if self._flisr is not None:
            self._flisr.resume()
        self.writer.resume()
        # the setpoints as last written and accepted (connectors and site limits among them),
        # not a schedule's first row: sent again at once, then with every heartbeat
        setpoints = {p.key for p in self.contract.setpoints()
                     if self.model.registry[p.key[0]].kind in _SETPOINT_DEVICES}
        for key, value in self.historian.last_written().items():
            if key in setpoints:
                device, point = key
                # the setpoints resent at start keep a curtailed site curtailed
                held = device in self.writer.curtailed and point.endswith("_kw")
                self._last_setpoints[key] = 0.0 if held else value
        self._resumed_at = self.historian.last_field_time()
        if self._last_setpoints or self.sessions.arrivals:
            self.historian.record_event(  # no field time yet: the historian stamps wall time
                None, "resumed", setpoints=len(self._last_setpoints),
                sessions=len(self.sessions.arrivals))

    def _new_session(self) -> None:
        # a new session: nothing of its publications answered, no tick done at its time yet
        self.events.field_seq = None
        self.ticked_at = None
        self._resend_due = True

    async def run(
        self,
        *,
        until: pd.Timestamp | None = None,
        run_for: pd.Timedelta | None = None,
        max_wall_s: float | None = None,
    ) -> RuntimeStats:
        """Run the scheduler until the clock reaches ``until`` (or ``max_wall_s`` passes)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._until = until
        self._run_for = run_for  # counted from the first clock reading
        self.planner.start_soon()  # it builds its problem while the runtime connects
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.config.tick_wall_s,
            max_instances=1,
            coalesce=True,
            id="tick",
            next_run_time=dt.datetime.now(dt.UTC),
        )
        scheduler.start()
        try:
            if max_wall_s is None:
                await self._stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=max_wall_s)
        finally:
            scheduler.shutdown(wait=False)
            # a control step or day-ahead plan still running is abandoned: its task is
            # cancelled first (so an ended plan is not recorded as a failed day), then the
            # day-ahead process is ended (its thread sees the process end and returns)
            running = [*self.dayahead.tasks, *([self._stepping] if self._stepping else [])]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self.dayahead_process.close()
            self.planner.close(final=True)  # a tick still under way plans no more
            await self.connection.disconnect()
            self.historian.close()
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def caught_up(
        self, publish_seq: int, *, ticked_at: pd.Timestamp | None = None, idle: bool = False
    ) -> bool:
        """Whether the runtime has answered every simulator publication up to ``publish_seq``,
        with ``ticked_at`` also done the due work of a tick at that field time (heartbeat,
        polls), and with ``idle`` no control step is being made: what a driver of the
        simulator's clock (a drill, a lockstep run) waits for before it steps again."""
        if self.field_seq is None or self.field_seq < publish_seq:
            return False
        if ticked_at is not None and (self.ticked_at is None or self.ticked_at < ticked_at):
            return False
        return not (idle and self._stepping is not None)

    # -- the tick: connection, clock, due work -------------------------------------------------
    async def _tick(self) -> None:
        if self._stop.is_set():
            return
        if not self.connection.connected and not await self.connection.connect():
            return
        try:
            now = self._clock()
            if now is None:
                return  # the subscription has not delivered the field's first image yet
            self._follow_jumps(now)
            self.now = now
            if self._until is None and self._run_for is not None:
                self._until = now + self._run_for
            if self._until is not None and now >= self._until:
                self.stop()
                return
            if self.stats.decisions + self.stats.steps_failed > 0:
                # after the first control step: a restarted runtime decides first (the day
                # plan's seconds of work would hold the interpreter while it starts)
                self.dayahead.due(now)
            if self._next_heartbeat is None:  # from the start, not only after a first plan
                self._next_heartbeat = now + pd.Timedelta(seconds=self.config.heartbeat_s)
                self._next_poll = now + pd.Timedelta(seconds=self.config.poll_s)
            if time.monotonic() >= self._next_integrity:
                self._next_integrity = time.monotonic() + self.config.integrity_wall_s
                await self.events.check_integrity(now)
            if self._next_step is None:
                self._next_step = now.floor(f"{self.config.step_minutes}min")
            if self._resend_due:
                # every setpoint as last written, at once: the devices (or a restarted
                # simulator) may hold others or none
                self._resend_due = False
                if self._last_setpoints:
                    async with self.writer.lock:
                        await self.writer.write(now, self._last_setpoints, reason="resend")
            if now >= self._next_step and self._stepping is None and not self._stop.is_set():
                step = pd.Timedelta(minutes=self.config.step_minutes)
                # behind (a long plan, a gap in the connection): plan the step we are in now
                step_start = max(self._next_step, now.floor(step))
                if step_start > self._next_step:
                    self.historian.record_event(
                        now, "steps_skipped", steps=int((step_start - self._next_step) / step)
                    )
                self._next_step = step_start + step
                # in the background: heartbeats and polls go on while the plan is made
                self._stepping = asyncio.get_running_loop().create_task(
                    self._run_step(step_start), name=f"control-step {step_start}"
                )
            # each due job on its own: a tick that polls must not starve the heartbeat (in
            # lockstep a tick may run once per field time)
            if self._next_poll is not None and now >= self._next_poll:
                self._next_poll = now + pd.Timedelta(seconds=self.config.poll_s)
                await self._poll(now)
            if self._next_heartbeat is not None and now >= self._next_heartbeat:
                self._next_heartbeat = now + pd.Timedelta(seconds=self.config.heartbeat_s)
                async with self.writer.lock:
                    await self.writer.write(now, self._last_setpoints, reason="heartbeat")
                self.stats.heartbeats += 1
            if self._next_maintain is None:
                self._next_maintain = now + _MAINTAIN_EVERY
            elif now >= self._next_maintain:
                self._next_maintain = now + _MAINTAIN_EVERY
                self.historian.maintain(now)  # bounded work: a few ms, ~0.1 s catching up
            self.ticked_at = now
        except Exception as exc:
            if not await self.connection.lost_if_connection(exc):
                raise

    def _follow_jumps(self, now: pd.Timestamp) -> None:
        """A field clock that jumped (:mod:`gridctl.runtime_clock`): every due job is due now,
        from the new time."""
        last = self.now
        if last is None:
            resumed, self._resumed_at = self._resumed_at, None
            resumed_back(self.historian, resumed, now)
            return
        jump = jumped(self.historian, last, now, clock_jump_s=self.config.clock_jump_s)
        if jump is None:
            return
        # retention runs on field time: trust a new clock only once it has run an hour
        self._next_maintain = now + _MAINTAIN_EVERY
        self._next_step = now.floor(f"{self.config.step_minutes}min")
        self._next_heartbeat = now
        self._next_poll = now
        self._resend_due = True
        if self._run_for is not None and self._until is not None:
            self._until = self._until + jump  # the run still covers run_for of field time
        if jump < pd.Timedelta(0):
            self.ticked_at = None
            # sessions "arrived" in the time left behind did not arrive yet
            self.sessions.forget_after(now)

    async def _run_step(self, step_start: pd.Timestamp) -> None:
        try:
            await self._control_step(step_start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.steps_failed += 1
            if not await self.connection.lost_if_connection(exc):
                log.exception("control step %s failed", step_start)
                self.historian.record_event(
                    step_start, "control_step_failed", error=f"{type(exc).__name__}: {exc}"
                )
        else:
            now = self.now or step_start
            self._next_heartbeat = now + pd.Timedelta(seconds=self.config.heartbeat_s)
            self._next_poll = now + pd.Timedelta(seconds=self.config.poll_s)
        finally:
            self._stepping = None


    def _clock(self) -> pd.Timestamp | None:
        """The field's time: the simulator's, as its subscription last told it, or the wall's."""
        return field_time(self.watch, self.model.site.timezone,
                          follow_simulator=self.config.follow_simulator_clock,
                          answered=self.field_seq is not None)

    # -- one control step ------------------------------------------------------------------------
    async def _control_step(self, step_start: pd.Timestamp) -> None:
        t0 = time.perf_counter()
        readings = await self._field().read()
        snapshot, stored = self._snapshot(step_start, readings)
        self.historian.record_measurements(
            step_start,
            {
                r.key: number(r.value)
                for r in readings
                if number(r.value) is not None or not r.good
            },
            {r.key: r.status_name for r in readings if not r.good},
        )
        self.historian.upsert_sessions(step_start, stored)
        # building a day's scenario (pvlib, sessions) takes a while: off the event loop
        forecast = await asyncio.to_thread(self.forecasts.step_forecast, step_start)
        # shed customers draw nothing and held sites charge nothing until released: plan so
        disconnected = [
            r.device_id for r in readings if r.point == "connected" and r.good and not r.value
        ]
        forecast = forecast.without(loads=disconnected, sites=self.writer.held())
        decision = await self.planner.step(snapshot, forecast, self._day_plan, self._last_good,
                                           plugged_in=occupancy(good_values(readings),
                                                                self.model))
        if decision.record.fallback is None:
            self._last_good = decision.schedule
        self._decision = decision
        async with self.writer.lock:
            # under the lock: a curtailment made while the plan was being made holds
            values = self._setpoint_values(decision)
            self.writer.last_setpoints = values  # first: a heartbeat from now on sends these
            await self.writer.write(step_start, values, reason="mpc")
        now = self._clock()
        if now is not None:
            await self.events.after_step(now, step_start, readings,
                                         late_after_s=self.config.late_after_s)
        self.historian.record_schedule(step_start, "mpc", decision.schedule.setpoint_table())
        record = decision.record.to_dict()
        record["planned_import_mw"] = decision.planned_import_mw
        self.historian.record_decision(step_start, "mpc", record)
        self.stats.decisions += 1
        self.stats.fallbacks += decision.record.fallback is not None
        self.stats.step_wall_s.append(time.perf_counter() - t0)

    async def _poll(self, now: pd.Timestamp) -> None:
        """Record the grid's main measurements between control steps (one batched read), and
        let the microgrid supervisors look again (a reconnection delay runs out with nothing
        changing, and a real field reports by exception)."""
        await self.events.supervise(now)
        readings = await self._field().read(self._poll_points)
        self.historian.record_measurements(
            now,
            {r.key: number(r.value) for r in readings if number(r.value) is not None},
            {r.key: r.status_name for r in readings if not r.good},
        )

    def _snapshot(
        self, now: pd.Timestamp, readings: list[PointReading]
    ) -> tuple[GridSnapshot, list[StoredSession]]:
        # the readings were taken a little after the step began (the field does not wait):
        # each vehicle can charge only from then on, so the plan must not count the time before
        latest = now + pd.Timedelta(minutes=self.config.step_minutes) - pd.Timedelta(minutes=1)
        clock = self._clock()
        if clock is not None:  # a device clock running ahead must not shorten the plan's stays
            latest = min(latest, max(clock, now))
        return snapshot_of(self.model, now, readings, sessions=self.sessions,
                           held=self.writer.held(), latest=latest)

    def _setpoint_values(self, decision: MpcDecision) -> dict[PointKey, Any]:
        """The decision's setpoints as they are, but a site curtailed by self-healing or a
        microgrid supervisor stays at 0 kW (the plan does not lift it)."""
        values: dict[PointKey, Any] = {}
        for device, points in decision.setpoints.items():
            for point, v in points.items():
                values[(device, point)] = float(v)
        held = self.writer.held()
        for site in self.model.registry.of_type(EvChargingSite):
            if site.id in held:
                values.update(held_site_setpoints(site))
        return values
