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
- on a lost connection: reconnect with exponential backoff, record the gap.

On start the runtime resumes from the historian: the last setpoints are sent again at once, and
the EV sessions it knew keep their arrival times and the energy delivered to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from controllers.config import DEFAULT_HORIZON_STEPS, DEFAULT_STEP_MINUTES, DispatchConfig
from controllers.ev_charging import SessionState
from controllers.ev_setpoints import (
    Occupancy,
    PluggedIn,
    SiteConnectors,
    held_site_setpoints,
    resplit_site,
)
from controllers.mpc import MpcDecision
from controllers.schedule import DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.ev import EvSession
from forecasts.operator_inputs import OperatorInputs
from forecasts.scenario import Scenario
from forecasts.tariffs import Tariff
from gridctl.field import ev_points
from gridctl.field.contract import FieldContract
from gridctl.field_client import FieldClient, PointReading, WriteResult
from gridctl.field_watch import FieldUpdate, FieldWatch
from gridctl.historian import Historian, HistorianSettings, StoredSession
from gridctl.microgrids import MicrogridSupervisor
from gridctl.planner import PlannerProcess
from gridctl.self_healing import FaultResponder, SwitchCommand
from network_models import BUILTIN_MODELS
from network_models.model import GridModel
from network_models.registry import Bess, DeviceKind, EvChargingSite, SwitchDevice

log = logging.getLogger("gridctl.runtime")
# a tick that is still running when the next is due is skipped on purpose; not worth a warning
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)

PointKey = tuple[str, str]
_MAINTAIN_EVERY = pd.Timedelta(hours=1)
_SETPOINT_DEVICES = frozenset({DeviceKind.BESS, DeviceKind.PV, DeviceKind.EV_SITE})


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    endpoint: str
    db_path: Path
    horizon_steps: int = DEFAULT_HORIZON_STEPS
    step_minutes: int = DEFAULT_STEP_MINUTES
    tick_wall_s: float = 0.05
    heartbeat_s: float = 120.0  # simulated seconds against the simulator; below its timeout
    follow_simulator_clock: bool = True
    forecast_seed: int = 0
    max_backoff_s: float = 5.0
    timeout_s: float = 4.0
    dayahead_hour: int | None = 12  # plan the next day at this hour; None: no day-ahead job
    dayahead_retry_wall_s: float = 900.0  # a day-ahead that failed or fell back: tried again
    poll_s: float = 60.0  # record meters, transformers, batteries, PV and EV sites this often
    watch_period_ms: float = 50.0  # publishing interval of the event subscription (wall ms)
    integrity_wall_s: float = 60.0  # read the watched points behind the subscription this often
    late_after_s: float = 60.0  # a plan landing this much field time after its readings is late
    plan_timeout_s: float = 120.0  # wall time a step's plan may take before the planner is ended
    # the field's clock moving back at all (beyond a second), or ahead by more than this
    # between two ticks, is a jump: due work is rescheduled from the new time and recorded
    clock_jump_s: float = 900.0
    # the operator's data and study: forecasts from their files, plans with their settings
    inputs: OperatorInputs = field(default_factory=OperatorInputs)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    tariff: Tariff | None = None  # None: gridctl's (or a given bundle's prices)
    carbon_kg_per_kwh: float | None = None

    def __post_init__(self) -> None:
        # the MPC plans on the control step's grid, and forecasts come on grids that divide a day
        if not (isinstance(self.step_minutes, int) and 1 <= self.step_minutes <= 60
                and 1440 % self.step_minutes == 0):
            raise ValueError(f"step_minutes {self.step_minutes!r}: expected whole minutes from "
                             "1 to 60 that divide a day evenly (5, 15, 30, 60, ...)")
        if not (isinstance(self.horizon_steps, int) and self.horizon_steps >= 2):
            raise ValueError(f"horizon_steps {self.horizon_steps!r}: expected at least 2 steps")


def planner_for(model: GridModel, config: RuntimeConfig) -> PlannerProcess:
    """The runtime's planner: the MPC over the configured horizon, on the control step, within
    the configured time; a caller that wants it started early builds it here and hands it over."""
    return PlannerProcess(model, horizon_steps=config.horizon_steps,
                          step_h=config.step_minutes / 60.0, timeout_s=config.plan_timeout_s,
                          config=config.dispatch)


@dataclass
class RuntimeStats:
    decisions: int = 0
    fallbacks: int = 0
    steps_failed: int = 0  # control steps with no decision (planner failed, field gone, ...)
    reconnects: int = 0
    write_errors: int = 0
    heartbeats: int = 0
    ev_resplits: int = 0  # sites whose power was split again between steps (plug-in, leave)
    ev_above_plan_kw_max: float = 0.0  # the most a re-split put a site above its plan
    missed_by_subscription: int = 0  # values the integrity read had to correct
    step_wall_s: list[float] = field(default_factory=list)


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
    ) -> None:
        self.model = model
        self.config = config
        self.contract = FieldContract.from_model(model)
        self.security = security
        self.historian = Historian(config.db_path, settings=historian_settings)
        builtin = model.name in BUILTIN_MODELS
        self.historian.set_meta("model", model.name if builtin else model.source)
        # the MPC plans in a process of its own (see gridctl.planner); started by run()
        # (a caller may start one early and hand it over); the runtime ends it when it stops
        self.planner = planner or planner_for(model, config)
        self._day_plan: DispatchSchedule | None = None  # what the MPC's windows end on
        self._last_good: DispatchSchedule | None = None  # a fresh planner's fallback
        self.stats = RuntimeStats()
        self.responder = responder
        self.microgrids = tuple(microgrids)
        self._curtailed: dict[str, str] = {}  # EV site -> who holds it at 0 kW
        self._last_handled: tuple[Any, ...] = (frozenset(), (), ())
        self.client: FieldClient | None = None
        self.watch: FieldWatch | None = None
        self._follower: asyncio.Task[None] | None = None
        self.field_seq: int | None = None  # last simulator publication fully answered
        # field time of the last tick that did its due work (a lockstep driver waits on it)
        self.ticked_at: pd.Timestamp | None = None
        self._connected = False
        self._disconnecting = False
        self._lost_at: float | None = None
        self._next_attempt = 0.0
        self._backoff = 0.25
        self._next_step: pd.Timestamp | None = None
        self._next_heartbeat: pd.Timestamp | None = None
        self._last_setpoints: dict[PointKey, Any] = {}
        self._arrivals: dict[str, pd.Timestamp] = {}
        self._scenarios: dict[dt.date, Scenario] = {}
        self._modelled_days: set[dt.date] = set()  # days the operator's files did not cover
        self._stop = asyncio.Event()
        self._next_poll: pd.Timestamp | None = None
        self._resend_due = True  # the last setpoints go out at once: at start, on a reconnect
        self._connect_refused = ""  # the reason the field last refused a connection, once told
        self._resumed_at: pd.Timestamp | None = None  # the historian's last field time
        self._next_maintain: pd.Timestamp | None = None  # historian retention, hourly
        self._duplicates_seen: set[tuple[str, ...]] = set()  # session ids given twice, told
        self._next_integrity = time.monotonic() + config.integrity_wall_s
        self._poll_points = _polled_points(self.contract, model)
        sites = model.registry.of_type(EvChargingSite)
        self._session_points = ev_points.session_id_keys(sites)
        self._session_end_points = tuple(ev_points.site_keys(sites, ev_points.ENDED_POINTS))
        self._watch_points = tuple(
            dict.fromkeys(
                [
                    *(responder.points if responder else ()),
                    *self._session_points,
                    *self._session_end_points,
                    *(k for m in self.microgrids for k in m.points),
                ]
            )
        )
        self._decision: MpcDecision | None = None  # the last one, for splits between steps
        self._stepping: asyncio.Task[None] | None = None  # the control step being made
        # one writer at a time: a switching sequence is not interleaved with setpoint batches
        self._write_lock = asyncio.Lock()
        self._day_plans: dict[dt.date, Any] = {}
        self._day_retry: dict[dt.date, float] = {}  # a day that failed: not again before (wall)
        self._planning: set[dt.date] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._until: pd.Timestamp | None = None
        self._run_for: pd.Timedelta | None = None
        self.now: pd.Timestamp | None = None
        self._resume()

    # -- life cycle ----------------------------------------------------------------------------
    def _resume(self) -> None:
        for s in self.historian.sessions():
            self._arrivals[s.id] = s.arrival
        handled = self.historian.events("flisr_handled")
        if handled and self.responder is not None:
            self.responder.resume(handled[-1]["trips"], handled[-1].get("shed", ()),
                                  handled[-1].get("isolated", ()))
        for event in self.historian.events("curtailed"):
            if event["by"]:
                self._curtailed[event["site"]] = event["by"]
            else:
                self._curtailed.pop(event["site"], None)
        # the setpoints as last written and accepted (connectors and site limits among them),
        # not a schedule's first row: sent again at once, then with every heartbeat
        setpoints = {p.key for p in self.contract.setpoints()
                     if self.model.registry[p.key[0]].kind in _SETPOINT_DEVICES}
        for key, value in self.historian.last_written().items():
            if key in setpoints:
                device, point = key
                # the setpoints resent at start keep a curtailed site curtailed
                held = device in self._curtailed and point.endswith("_kw")
                self._last_setpoints[key] = 0.0 if held else value
        self._resumed_at = self.historian.last_field_time()
        if self._last_setpoints or self._arrivals:
            self.historian.record_event(  # no field time yet: the historian stamps wall time
                None, "resumed", setpoints=len(self._last_setpoints),
                sessions=len(self._arrivals))

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
            # a control step or day-ahead plan still running is abandoned
            running = [*self._tasks, *([self._stepping] if self._stepping else [])]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self.planner.close(final=True)  # a tick still under way plans no more
            await self._disconnect()
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
        if not self._connected and not await self._connect():
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
                self._day_ahead_due(now)
            if self._next_heartbeat is None:  # from the start, not only after a first plan
                self._next_heartbeat = now + pd.Timedelta(seconds=self.config.heartbeat_s)
                self._next_poll = now + pd.Timedelta(seconds=self.config.poll_s)
            if time.monotonic() >= self._next_integrity:
                self._next_integrity = time.monotonic() + self.config.integrity_wall_s
                await self._check_integrity(now)
            if self._next_step is None:
                self._next_step = now.floor(f"{self.config.step_minutes}min")
            if self._resend_due:
                # every setpoint as last written, at once: the devices (or a restarted
                # simulator) may hold others or none
                self._resend_due = False
                if self._last_setpoints:
                    async with self._write_lock:
                        await self._write(now, self._last_setpoints, reason="resend")
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
                async with self._write_lock:
                    await self._write(now, self._last_setpoints, reason="heartbeat")
                self.stats.heartbeats += 1
            if self._next_maintain is None:
                self._next_maintain = now + _MAINTAIN_EVERY
            elif now >= self._next_maintain:
                self._next_maintain = now + _MAINTAIN_EVERY
                self.historian.maintain(now)  # bounded work: a few ms, ~0.1 s catching up
            self.ticked_at = now
        except Exception as exc:
            if not await self._lost_if_connection(exc):
                raise

    def _follow_jumps(self, now: pd.Timestamp) -> None:
        """A field clock that jumped (a simulator restarted at another time, a device clock
        set): every due job is due now, from the new time, and the jump is recorded; a jump
        back begins a new run of the historian (its records would mix with the earlier ones).
        The first reading after a start is compared with the historian's last record."""
        last = self.now
        if last is None:
            resumed, self._resumed_at = self._resumed_at, None
            if resumed is not None and now < resumed - pd.Timedelta(seconds=1):
                self.historian.begin_run("clock_jumped_back", before=resumed.isoformat(),
                                         after=now.isoformat())
                self.historian.record_event(now, "clock_jumped", direction="back",
                                            before=resumed.isoformat(), after=now.isoformat(),
                                            by_s=(now - resumed).total_seconds())
            return
        jump = now - last
        if -pd.Timedelta(seconds=1) <= jump <= pd.Timedelta(seconds=self.config.clock_jump_s):
            return
        direction = "back" if jump < pd.Timedelta(0) else "ahead"
        log.warning("the field's clock jumped %s by %s (%s -> %s): due work rescheduled",
                    direction, abs(jump), last, now)
        if direction == "back":
            self.historian.begin_run("clock_jumped_back", before=last.isoformat(),
                                     after=now.isoformat())
        # retention runs on field time: trust a new clock only once it has run an hour
        self._next_maintain = now + _MAINTAIN_EVERY
        self.historian.record_event(now, "clock_jumped", direction=direction,
                                    before=last.isoformat(), after=now.isoformat(),
                                    by_s=jump.total_seconds())
        self._next_step = now.floor(f"{self.config.step_minutes}min")
        self._next_heartbeat = now
        self._next_poll = now
        self._resend_due = True
        if self._run_for is not None and self._until is not None:
            self._until = self._until + jump  # the run still covers run_for of field time
        if direction == "back":
            self.ticked_at = None
            # sessions "arrived" in the time left behind did not arrive yet
            self._arrivals = {sid: t for sid, t in self._arrivals.items() if t <= now}

    async def _run_step(self, step_start: pd.Timestamp) -> None:
        try:
            await self._control_step(step_start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.steps_failed += 1
            if not await self._lost_if_connection(exc):
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

    def _day_ahead_due(self, now: pd.Timestamp) -> None:
        """Start the day-ahead plan of today (at start-up) and of tomorrow (at the configured
        hour) in the background; the MPC follows the plans' battery SoC as window targets."""
        hour = self.config.dayahead_hour
        if hour is None:
            return
        wanted = [now.date()]
        if now.hour >= hour:
            wanted.append((now + pd.Timedelta(days=1)).date())
        for day in wanted:
            retry_at = self._day_retry.get(day, 0.0)
            if (day not in self._day_plans and day not in self._planning
                    and time.monotonic() >= retry_at):
                self._planning.add(day)
                task = asyncio.get_running_loop().create_task(self._plan_day(day, now))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _plan_day(self, day, issued: pd.Timestamp) -> None:
        try:
            result = await asyncio.to_thread(self._day_ahead, day)
        except asyncio.CancelledError:
            raise  # stopped while planning: the plan is abandoned, nothing is recorded
        except Exception as exc:
            self._day_retry[day] = time.monotonic() + self.config.dayahead_retry_wall_s
            self.historian.record_event(
                issued, "dayahead_failed", day=str(day), error=f"{type(exc).__name__}: {exc}"
            )
            return
        finally:
            self._planning.discard(day)
        fallback = result.plan.record.fallback
        if fallback is None:
            self._day_plans[day] = result.plan.schedule
            soc = pd.concat([p.bess_soc_frac for _, p in sorted(self._day_plans.items())])
            self._day_plan = replace(result.plan.schedule, bess_soc_frac=soc)
        else:
            # a fallback is no plan to steer by: the MPC's windows end at their configured
            # state of charge for that day instead, and the operator is told
            self._day_retry[day] = time.monotonic() + self.config.dayahead_retry_wall_s
            log.warning("day-ahead plan of %s is a fallback (%s, the optimiser: %s): not "
                        "followed", day, fallback, result.plan.record.status)
            self.historian.record_event(issued, "dayahead_fallback", day=str(day),
                                        fallback=fallback, status=result.plan.record.status)
        self.historian.record_schedule(issued, "dayahead", result.plan.schedule.setpoint_table())
        record = result.plan.record.to_dict()
        record["kpis"] = result.kpis
        record["day"] = str(day)
        self.historian.record_decision(issued, "dayahead", record)

    def _day_ahead(self, day: dt.date):
        """The day planned on its forecast (the controller never sees the simulator's truth)."""
        from controllers.dayahead import run_dayahead

        scenario = self._scenario(day, 1, "15min")
        forecast = scenario.forecast_at(scenario.truth.start, "24h")
        return run_dayahead(self.model, day, bundle=forecast, config=self.config.dispatch)

    def _scenario(self, day: dt.date, n_days: int, step: str) -> Scenario:
        """The days' truth from the operator's files and gridctl's models, forecast from it; a
        day the operator's files do not cover is modelled, and said so once."""
        c = self.config
        truth, modelled = c.inputs.days(self.model, day, n_days, step, seed=c.forecast_seed,
                                        tariff=c.tariff, carbon_kg_per_kwh=c.carbon_kg_per_kwh)
        if c.inputs.given():
            for d in modelled:
                if d not in self._modelled_days:
                    self._modelled_days.add(d)
                    log.warning("the operator's files hold no data for %s: forecasts of that "
                                "day come from gridctl's own models", d)
                    self.historian.record_event(truth.start, "forecast_modelled", day=str(d),
                                                inputs=c.inputs.given())
        return Scenario(truth=truth, seed=c.forecast_seed)

    async def _connect(self) -> bool:
        wall = time.monotonic()
        if wall < self._next_attempt or self._disconnecting:
            return False
        client = FieldClient(
            self.config.endpoint,
            self.contract,
            security=self.security,
            timeout_s=self.config.timeout_s,
        )
        try:
            await client.connect()
        except Exception as exc:  # refused, timed out, not yet up: try again later
            self._next_attempt = wall + self._backoff
            self._backoff = min(self._backoff * 2, self.config.max_backoff_s)
            # a refusal (security, user, password) needs the operator: said at once, once per
            # reason; a field that is not up yet is tried again quietly
            reason = str(exc)
            refused = "refused the connection" in reason
            if refused and reason != self._connect_refused:
                log.warning("connect to %s refused: %s; trying again every %.0f s",
                            self.config.endpoint, reason, self.config.max_backoff_s)
                self.historian.record_event(None, "connect_refused", endpoint=self.config.endpoint,
                                            reason=reason)
            else:
                log.info("connect to %s failed (%s); next try in %.1f s", self.config.endpoint,
                         reason, self._backoff)
            self._connect_refused = reason if refused else ""
            return False
        try:
            self.watch = await FieldWatch.start(
                client,
                self._watch_points,
                simulator=self.config.follow_simulator_clock,
                period_ms=self.config.watch_period_ms,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            self._next_attempt = wall + self._backoff
            self._backoff = min(self._backoff * 2, self.config.max_backoff_s)
            log.info("subscription on %s failed (%s)", self.config.endpoint, exc)
            return False
        self.client = client
        self._connected = True
        self._backoff = 0.25
        # a new session: nothing of its publications answered, no tick done at its time yet
        self.field_seq = None
        self.ticked_at = None
        self._resend_due = True
        self._follower = asyncio.get_running_loop().create_task(
            self._follow_field(self.watch), name="field-events"
        )
        # the new session's field time is not known until its first image: wall time only
        if self._lost_at is not None:
            gap = wall - self._lost_at
            self.stats.reconnects += 1
            self.historian.record_event(
                None, "reconnected", endpoint=self.config.endpoint, gap_wall_s=round(gap, 3)
            )
            self._lost_at = None
        else:
            self.historian.record_event(None, "connected", endpoint=self.config.endpoint)
        return True

    async def _lost(self, exc: BaseException) -> None:
        if not self._connected:
            return  # the event task and the tick both noticed: record it once
        log.warning("connection lost: %s", exc)
        self._connected = False
        self._lost_at = time.monotonic()
        self._next_attempt = self._lost_at + self._backoff
        self.historian.record_event(  # the field time last seen
            self.now, "connection_lost", error=f"{type(exc).__name__}: {exc}")
        await self._disconnect()

    async def _lost_if_connection(self, exc: BaseException) -> bool:
        """Treat ``exc`` as a lost connection if it is one; False for any other error."""
        # a socket's own errors are ConnectionError; a file error (OSError) is not the field's
        if isinstance(exc, ConnectionError | TimeoutError) or _is_connection_error(exc):
            await self._lost(exc)
            return True
        return False

    async def _disconnect(self) -> None:
        self._disconnecting = True
        try:
            await self._close_session()
        finally:
            self._disconnecting = False

    async def _close_session(self) -> None:
        # take what belongs to this session first: a new one must not be closed with it
        follower, self._follower = self._follower, None
        watch, self.watch = self.watch, None
        client, self.client = self.client, None
        if follower is not None and follower is not asyncio.current_task():
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
        if watch is not None:
            await watch.close()
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), timeout=2.0)
        self._connected = False

    def _field(self) -> FieldClient:
        """The connected client; ``ConnectionError`` when the session was lost meanwhile."""
        if self.client is None:
            raise ConnectionError("not connected to the field")
        return self.client

    def _clock(self) -> pd.Timestamp | None:
        """The field's time: the simulator's, as its subscription last told it, or the wall's."""
        tz = self.model.site.timezone
        if self.config.follow_simulator_clock:
            if self.watch is None or self.watch.time is None or self.field_seq is None:
                return None
            return pd.Timestamp(self.watch.time).tz_convert(tz)
        return pd.Timestamp.now(tz=tz)

    # -- events from the subscription ------------------------------------------------------------
    async def _follow_field(self, watch: FieldWatch) -> None:
        """Answer the field's events as they come (see the module docstring)."""
        while True:
            try:
                update = await watch.next()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the subscription is gone: so is the session
                await self._lost(exc)
                return
            try:
                await self._on_update(update)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if await self._lost_if_connection(exc):
                    return
                # one event that could not be answered must not stop the answering of the next
                log.exception("answering the field's events at %s failed", update.time)
                self.historian.record_event(
                    pd.Timestamp(update.time).tz_convert(self.model.site.timezone),
                    "event_handling_failed",
                    error=f"{type(exc).__name__}: {exc}",
                )
                self.field_seq = update.publish_seq if update.publish_seq is not None else 0

    async def _on_update(self, update: FieldUpdate) -> None:
        tz = self.model.site.timezone
        now = pd.Timestamp(update.time).tz_convert(tz)
        changed_sites = set()
        for device, point in update.keys_of(self._session_points):
            changed_sites.add(device)
            sid = update.changed[(device, point)].value
            if sid:  # plugged in now (or known since the first image)
                self._arrivals.setdefault(str(sid), now)
        self._record_session_ends(now, update)
        # the islands first: their answer is quick, FLISR's takes an AC study
        for supervisor in self.microgrids:
            if update.first or update.keys_of(supervisor.points):
                await self._supervise(supervisor, now)
        if self.responder is not None and (update.first or update.keys_of(self.responder.points)):
            await self._respond_to_faults(now)
        if changed_sites and not update.first:
            await self._resplit_sites(now, sorted(changed_sites))
        self.field_seq = update.publish_seq if update.publish_seq is not None else 0

    def _record_session_ends(self, now: pd.Timestamp, update: FieldUpdate) -> None:
        """Record the charger's report of each session that ended (its final energy)."""
        assert self.watch is not None
        # either point may come first; the historian keeps the first complete pair as final
        connectors = {(d, p.split(".", 1)[0]) for d, p in update.keys_of(self._session_end_points)}
        for device, c in sorted(connectors):
            keys = ev_points.connector_keys(device, c, ev_points.ENDED_POINTS)
            ended = ev_points.decode_connector(device, c, {k: self.watch.value(k) for k in keys})
            if ended.last_session_id and ended.last_session_energy_kwh is not None:
                self.historian.record_session_end(now, ended.last_session_id,
                                                  ended.last_session_energy_kwh)

    async def _write_sequence(
        self, now: pd.Timestamp, commands: Sequence[SwitchCommand], *, reason: str, holder: str,
        guard: FaultResponder | None = None,
    ) -> str:
        """Write ``commands`` one after another, in their order, and stop at the first the field
        refuses (the next step may rely on it: never close a tie onto an isolation that did not
        happen). With ``guard``, the protection points are read again before every close and
        the guard may refuse it (never close onto a fault). An indicator reset the field
        refuses is recorded and does not stop the sequence. An EV site shed by ``holder`` is
        held at 0 kW before its write goes out, so no other write in between can lift it.
        Returns "done", "refused" (by the field) or "unsafe" (by the guard)."""
        async with self._write_lock:
            for k, command in enumerate(commands):
                if guard is not None and command.action == "close":
                    values = {r.key: r.value for r in await self._field().read(guard.points)
                              if r.good}
                    why = await asyncio.to_thread(guard.close_refusal, now, command, values,
                                                  commands[:k])
                    if why is not None:
                        self._aborted(now, reason, commands[k:], refused=command,
                                      status="refused by FLISR's check", why=why)
                        return "unsafe"
                if command.point == "p_site_limit_kw":
                    self._curtail(now, command.device, holder if command.action == "shed" else "")
                    self._keep_in_heartbeat(command.device, float(command.value))
                results = await self._write(now, {command.key: command.value}, reason=reason)
                if results and not results[0].good:
                    if command.action == "reset":
                        continue  # a stale indication is a risk the guard covers; go on
                    self._aborted(now, reason, commands[k:], refused=command,
                                  status=results[0].status_name)
                    return "refused"
                if guard is not None:
                    guard.confirm(now, command)
        return "done"

    def _aborted(self, now: pd.Timestamp, reason: str, rest: Sequence[SwitchCommand], *,
                 refused: SwitchCommand, status: str, why: str = "") -> None:
        self.historian.record_event(
            now, f"{reason}_aborted", refused=f"{refused.device}.{refused.point}",
            status=status, why=why, not_sent=[f"{c.action} {c.device}" for c in rest[1:]],
        )
        log.error("%s: %s.%s refused (%s%s), %d command(s) not sent", reason, refused.device,
                  refused.point, status, f": {why}" if why else "", len(rest) - 1)

    async def _respond_to_faults(self, now: pd.Timestamp) -> None:
        # self-healing first: a trip is answered before (and whatever) the MPC decides
        assert self.watch is not None and self.responder is not None
        for _attempt in range(3):  # a close the guard refused: plan again from what is now
            values = self.watch.values(self.responder.points)
            # restoration planning runs AC studies: off the event loop, so heartbeats keep going
            response = await asyncio.to_thread(self.responder.respond, now, values)
            try:
                end = await self._write_sequence(now, response.commands, reason="flisr",
                                                 holder="flisr", guard=self.responder)
            except Exception:
                # cut off (connection lost): answer the trip again from the next image
                self.responder.forget(response.trips)
                raise
            self._record_flisr(now, response)
            if end != "unsafe":
                return  # done, or the field refused a command: planning again changes nothing
            self.responder.forget(response.trips)

    def _record_flisr(self, now: pd.Timestamp, response) -> None:
        if response.plan is not None:
            self.historian.record_decision(now, "flisr", response.plan.to_dict())
        answered = (self.responder.handled, self.responder.shed, self.responder.isolated)
        if response.plan is not None or answered != self._last_handled:
            # what a restarted runtime must not plan for again, what it must still bring back,
            # and what it must not close onto
            self._last_handled = answered
            self.historian.record_event(
                now, "flisr_handled", trips=sorted(answered[0]), shed=list(answered[1]),
                isolated=[f.to_dict() for f in answered[2]],
            )
        for entry in response.timeline:
            self.historian.record_event(
                now, "flisr_step", step=entry.kind, text=entry.text, device=entry.device
            )

    async def _supervise(self, supervisor: MicrogridSupervisor, now: pd.Timestamp) -> None:
        assert self.watch is not None
        commands, entries = supervisor.respond(now, self.watch.values(supervisor.points))
        # in order: shed before the breaker closes, and so on
        await self._write_sequence(
            now, commands, reason="microgrid", holder=f"microgrid {supervisor.spec.name}"
        )
        for entry in entries:
            self.historian.record_event(
                now, "microgrid_step", step=entry.kind, text=entry.text, device=entry.device
            )

    def _curtail(self, now: pd.Timestamp, site_id: str, by: str) -> None:
        """Hold an EV site at 0 kW for ``by`` (empty: release it), surviving a restart."""
        if by:
            self._curtailed[site_id] = by
        else:
            self._curtailed.pop(site_id, None)
        self.historian.record_event(now, "curtailed", site=site_id, by=by)

    def _keep_in_heartbeat(self, site_id: str, limit_kw: float) -> None:
        """The heartbeat re-sends the last setpoints: a curtailment must be among them."""
        if (site_id, "p_site_limit_kw") in self._last_setpoints or limit_kw == 0.0:
            self._last_setpoints[(site_id, "p_site_limit_kw")] = limit_kw

    def _held_at_zero(self) -> set[str]:
        """EV sites held at 0 kW now, by FLISR or a microgrid supervisor: every curtailment
        goes through ``_write_sequence``, which records it here (and in the historian)."""
        return set(self._curtailed)

    async def _resplit_sites(self, now: pd.Timestamp, site_ids: list[str]) -> None:
        """Split the power of sites where a vehicle plugged in or left, for the rest of the step."""
        decision = self._decision
        step = pd.Timedelta(minutes=self.config.step_minutes)
        if decision is None or not decision.time <= now < decision.time + step:
            return  # no plan for this step (yet): the devices follow their defaults
        if self.client is None:
            return
        reg = self.model.registry
        held = self._held_at_zero()
        sites = [reg[i] for i in site_ids if i not in held]
        if not sites:
            return
        readings = await self._field().read(ev_points.site_keys(sites))
        states, stored = self._ev_sessions(now, _good_values(readings), sites)
        self.historian.upsert_sessions(now, stored)  # a short stay may end before the next step
        async with self._write_lock:
            # a site curtailed while the energies were read stays curtailed
            held = self._held_at_zero()
            sites = [site for site in sites if site.id not in held]
            await self._write_split(now, decision, sites, states, readings)

    async def _write_split(
        self,
        now: pd.Timestamp,
        decision: MpcDecision,
        sites: Sequence[EvChargingSite],
        states: Sequence[SessionState],
        readings: list[PointReading],
    ) -> None:
        step = pd.Timedelta(minutes=self.config.step_minutes)
        planned_site_kw = decision.schedule.ev_site_p_mw.iloc[0] * 1000.0
        read = _good_values(readings)
        values: dict[PointKey, Any] = {}
        for site in sites:
            planned = float(planned_site_kw.get(site.id, 0.0))
            site_values, split = resplit_site(
                site, states, _plugged_in(read, site), now, decision.time + step, planned,
                room_kw=float(decision.ev_site_room_kw.get(site.id, 0.0)),
            )
            values.update(site_values)
            given = sum(split.values())
            # beyond the AC-checked plan only for a vehicle that would otherwise miss its
            # departure, within the site's rating: recorded, so an operator sees how often
            above = max(given - planned, 0.0)
            self.stats.ev_above_plan_kw_max = max(self.stats.ev_above_plan_kw_max, above)
            self.historian.record_event(
                now, "ev_resplit", site=site.id, sessions=len(split),
                p_kw=round(given, 1), planned_kw=round(planned, 1), above_plan_kw=round(above, 1),
            )
        self.stats.ev_resplits += len(sites)
        await self._write(now, values, reason="ev_resplit")
        self._last_setpoints.update(values)

    # -- one control step ------------------------------------------------------------------------
    async def _control_step(self, step_start: pd.Timestamp) -> None:
        t0 = time.perf_counter()
        readings = await self._field().read()
        snapshot, stored = self._snapshot(step_start, readings)
        self.historian.record_measurements(
            step_start,
            {
                r.key: _number(r.value)
                for r in readings
                if _number(r.value) is not None or not r.good
            },
            {r.key: r.status_name for r in readings if not r.good},
        )
        self.historian.upsert_sessions(step_start, stored)
        # building a day's scenario (pvlib, sessions) takes a while: off the event loop
        forecast = await asyncio.to_thread(self._forecast, step_start)
        # shed customers draw nothing and held sites charge nothing until released: plan so
        disconnected = [
            r.device_id for r in readings if r.point == "connected" and r.good and not r.value
        ]
        forecast = forecast.without(loads=disconnected, sites=self._held_at_zero())
        decision = await self.planner.step(snapshot, forecast, self._day_plan, self._last_good,
                                           plugged_in=_occupancy(_good_values(readings),
                                                                 self.model))
        if decision.record.fallback is None:
            self._last_good = decision.schedule
        self._decision = decision
        async with self._write_lock:
            # under the lock: a curtailment made while the plan was being made holds
            values = self._setpoint_values(decision)
            self._last_setpoints = values  # first: a heartbeat from now on sends these
            await self._write(step_start, values, reason="mpc")
        # a vehicle that plugged in or left while the plan was being made: split its site again;
        # a plan that lands late (the field ran on while it was made, as in fast simulation)
        # is split again at every site, from the energies as they are now
        now = self._clock()
        if now is not None:
            late = now - _measured_at(readings, step_start) >= pd.Timedelta(
                seconds=self.config.late_after_s
            )
            sites = (
                [s.id for s in self.model.registry.of_type(EvChargingSite)]
                if late
                else self._sites_changed_since(readings)
            )
            if sites:
                await self._resplit_sites(now, sites)
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
        for supervisor in self.microgrids:
            await self._supervise(supervisor, now)
        readings = await self._field().read(self._poll_points)
        self.historian.record_measurements(
            now,
            {r.key: _number(r.value) for r in readings if _number(r.value) is not None},
            {r.key: r.status_name for r in readings if not r.good},
        )

    async def _check_integrity(self, now: pd.Timestamp) -> None:
        """Read the watched points once, behind the subscription (one batched read)."""
        if self.watch is None:
            return
        since = self.watch.generations()
        missed = self.watch.reconcile(await self._field().read(self._watch_points), since)
        if missed:
            self.stats.missed_by_subscription += missed
            self.historian.record_event(now, "subscription_missed", values=missed)

    def _sites_changed_since(self, readings: list[PointReading]) -> list[str]:
        """Sites whose connectors' sessions differ now (subscription) from ``readings``."""
        if self.watch is None:
            return []
        by_key = {r.key: r.value for r in readings}
        return sorted({key[0] for key in self._session_points
                       if (by_key.get(key) or "") != (self.watch.value(key) or "")})

    def _snapshot(
        self, now: pd.Timestamp, readings: list[PointReading]
    ) -> tuple[GridSnapshot, list[StoredSession]]:
        by_key = {r.key: r for r in readings}
        reg = self.model.registry

        def value(device: str, point: str, default: Any = None) -> Any:
            r = by_key.get((device, point))
            return r.value if r is not None and r.good else default

        # as measured: NaN when not read or Bad, never clamped (the controller decides what an
        # out-of-band or impossible reading means: controllers.bess_soc)
        soc = {}
        for b in reg.of_type(Bess):
            v = value(b.id, "soc_frac")
            soc[b.id] = float(v) if _number(v) is not None and not isinstance(v, bool) else (
                float("nan"))
        held = self._held_at_zero()
        sites = [site for site in reg.of_type(EvChargingSite) if site.id not in held]
        # the readings were taken a little after the step began (the field does not wait):
        # each vehicle can charge only from then on, so the plan must not count the time before
        latest = now + pd.Timedelta(minutes=self.config.step_minutes) - pd.Timedelta(minutes=1)
        clock = self._clock()
        if clock is not None:  # a device clock running ahead must not shorten the plan's stays
            latest = min(latest, max(clock, now))
        measured_at = min(_measured_at(readings, now), latest)
        states, stored = self._ev_sessions(now, _good_values(readings), sites,
                                           measured_at=measured_at)
        switches = {}
        for sw in reg.of_type(SwitchDevice):
            v = value(sw.id, "closed")
            if v is not None and bool(v) != sw.normally_closed:
                switches[sw.id] = bool(v)
        snap = GridSnapshot(
            time=now, bess_soc_frac=soc, ev_sessions=tuple(states), switch_closed=switches
        )
        return snap, stored

    def _ev_sessions(
        self,
        now: pd.Timestamp,
        values: Mapping[PointKey, Any],
        sites: Sequence[EvChargingSite],
        *,
        measured_at: pd.Timestamp | None = None,
    ) -> tuple[list[SessionState], list[StoredSession]]:
        """The plugged-in sessions of ``sites`` as read (``values``: good readings), with the
        energy delivered so far; for planning, a session is present from ``measured_at`` on
        (when its energy was read)."""
        states, stored = [], []
        where: dict[str, str] = {}  # session id -> the connector that holds it
        for site in sites:
            for c in site.connector_ids():
                report = ev_points.decode_connector(site.id, c, values)
                if not report.connected:
                    continue
                sid = report.session_id or f"{site.id}/{c}/unknown"
                if sid in where:
                    # two vehicles reported under one id (a charger's bug, a replayed id):
                    # merged they would share one energy; the second is left out, and said so
                    self._duplicate_session(now, sid, where[sid], f"{site.id}/{c}")
                    continue
                where[sid] = f"{site.id}/{c}"
                requested = report.energy_requested_kwh
                delivered = report.energy_delivered_kwh
                arrival = self._arrivals.setdefault(sid, now)
                # no departure announced: assume the site's typical stay
                departure = (
                    report.departure.tz_convert(now.tz)
                    if report.departure is not None
                    else now + pd.Timedelta(hours=1)
                )
                departure = max(
                    departure,
                    now + pd.Timedelta(minutes=1),
                    max(arrival, measured_at or arrival) + pd.Timedelta(minutes=1),
                )
                vehicle_kw = report.vehicle_max_kw
                max_kw = (
                    min(vehicle_kw, site.p_connector_kw) if vehicle_kw > 0 else site.p_connector_kw
                )
                session = EvSession(
                    id=sid,
                    site=site.id,
                    connector=c,
                    arrival=max(arrival, measured_at) if measured_at is not None else arrival,
                    departure=departure,
                    energy_kwh=max(requested, delivered),
                    max_kw=max_kw,
                )
                states.append(SessionState(session=session, energy_delivered_kwh=delivered))
                stored.append(
                    StoredSession(
                        id=sid,
                        site=site.id,
                        connector=c,
                        arrival=arrival,
                        departure=departure,
                        energy_kwh=requested,
                        max_kw=max_kw,
                        energy_delivered_kwh=delivered,
                    )
                )
        return states, stored

    def _duplicate_session(self, now: pd.Timestamp, sid: str, first: str, again: str) -> None:
        """Record (once per pair of connectors) a session id the field gave twice."""
        key = (sid, first, again)
        if key in self._duplicates_seen:
            return
        self._duplicates_seen.add(key)
        log.warning("session id %r reported at %s and %s: the second is not planned", sid,
                    first, again)
        self.historian.record_event(now, "duplicate_session", session_id=sid, kept=first,
                                    refused=again)

    def _forecast(self, now: pd.Timestamp):
        day = now.date()
        if day not in self._scenarios:
            self._scenarios = {
                # the MPC plans on the control step
                day: self._scenario(day, 2, f"{self.config.step_minutes}min")
            }
        hours = self.config.horizon_steps * self.config.step_minutes / 60.0 + 1.0
        return self._scenarios[day].forecast_at(now, f"{hours}h")

    def _setpoint_values(self, decision: MpcDecision) -> dict[PointKey, Any]:
        """The decision's setpoints as they are, but a site curtailed by self-healing or a
        microgrid supervisor stays at 0 kW (the plan does not lift it)."""
        values: dict[PointKey, Any] = {}
        for device, points in decision.setpoints.items():
            for point, v in points.items():
                values[(device, point)] = float(v)
        held = self._held_at_zero()
        for site in self.model.registry.of_type(EvChargingSite):
            if site.id in held:
                values.update(held_site_setpoints(site))
        return values

    async def _write(
        self, now: pd.Timestamp, values: Mapping[PointKey, Any], *, reason: str
    ) -> list[WriteResult]:
        if not values:
            return []
        results = await self._field().write(values)
        bad = [r for r in results if not r.good]
        self.stats.write_errors += len(bad)
        # every batch counted; a heartbeat's points stored only where refused
        self.historian.record_commands(
            now, [(r.device_id, r.point, values[r.key], r.status_name) for r in results],
            reason=reason)
        if bad:
            self.historian.record_event(
                now,
                "write_refused",
                reason=reason,
                points=[f"{r.device_id}.{r.point}" for r in bad][:20],
            )
        return results


def _good_values(readings: Iterable[PointReading]) -> dict[PointKey, Any]:
    """The values of the good readings, by point (what the EV codec decodes)."""
    return {r.key: r.value for r in readings if r.good}


def _plugged_in(values: Mapping[PointKey, Any], site: EvChargingSite) -> SiteConnectors:
    """Connector → the vehicle its charger reports (session id, announced departure), or None
    where no vehicle is."""
    out: dict[str, PluggedIn | None] = {}
    for c in site.connector_ids():
        report = ev_points.decode_connector(site.id, c, values)
        out[c] = PluggedIn(report.session_id, report.departure) if report.session_id else None
    return out


def _occupancy(values: Mapping[PointKey, Any], model: GridModel) -> Occupancy:
    """Every EV site's connectors and who is plugged in at each (``values``: good readings)."""
    return {site.id: _plugged_in(values, site) for site in model.registry.of_type(EvChargingSite)}


def _polled_points(contract: FieldContract, model: GridModel) -> list[PointKey]:
    """Meters, substation transformers, batteries, PV and EV site totals: what the report plots."""
    from network_models.registry import Meter, PvSystem, SubstationTransformer

    reg = model.registry
    keep = {d.id for d in reg.of_type(Meter)} | {d.id for d in reg.of_type(SubstationTransformer)}
    keep |= {d.id for d in reg.of_type(Bess)} | {d.id for d in reg.of_type(PvSystem)}
    sites = {d.id for d in reg.of_type(EvChargingSite)}
    out = []
    for p in contract.measurements():
        device, point = p.key
        if device in keep or (device in sites and point == "p_charge_kw"):
            out.append(p.key)
    return out


_DELIVERED = ".energy_delivered_kwh"  # every connector's energy counter (gridctl.field.ev_points)


def _measured_at(readings: Sequence[PointReading], step_start: pd.Timestamp) -> pd.Timestamp:
    """When the EV readings were taken: their latest source time (the simulator stamps its
    simulated time, a real charger its own), within the step that begins at ``step_start``."""
    stamps = [
        r.source_time
        for r in readings
        if r.source_time is not None and r.point.endswith(_DELIVERED)
    ]
    if not stamps:
        return step_start
    latest = pd.Timestamp(max(stamps))
    latest = latest.tz_localize("UTC") if latest.tzinfo is None else latest
    return max(step_start, latest.tz_convert(step_start.tz))


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    return None


def _is_connection_error(exc: BaseException) -> bool:
    from asyncua import ua

    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in (
            ua.StatusCodes.BadSessionClosed,
            ua.StatusCodes.BadSessionIdInvalid,
            ua.StatusCodes.BadConnectionClosed,
            ua.StatusCodes.BadTimeout,
            ua.StatusCodes.BadSecureChannelClosed,
            ua.StatusCodes.BadNotConnected,
        )
    name = type(exc).__name__
    return "Connection" in name or "Closed" in name or "Timeout" in name
