"""Fault and recovery drills: a scenario of timed events against the simulator, gridctl in the loop.

A drill starts the OPC UA simulator in process (127.0.0.1, a free port, one operator user with a
one-off password) and the controller runtime, with its self-healing (a
:class:`~gridctl.self_healing.FaultResponder` and a
:class:`~gridctl.microgrids.MicrogridSupervisor` per microgrid), as an OPC UA client of it.
The simulator runs in step mode and the drill moves its clock as fast as the runtime keeps
up: after each tick and each injection it waits until the runtime has
answered the simulator's latest publication (its subscription's ``publish_seq``), so the runtime
never misses a state and stamps what it does with the simulated time it saw. Events are
injected over OPC UA (the simulator's methods) at their simulated times. Ticks are fine
(``fine_tick_s``) for ``fine_window_min`` after each event, where switching happens, and coarse
elsewhere, so a drill of half an hour takes a few dozen power flows.

Figures are integrated over the ticks: a load unsupplied at a tick's start is taken off for
the whole tick (the simulator decides each tick at its start). Customers per load come from the
registry (``Load.customers``); energy not supplied is the load the simulator's truth would have
drawn (kWh). The baseline is the same fault without automation: the loads protection left
unsupplied stay off for ``manual_restoration_min`` (dispatcher and crew switching by hand).

The report is judged from the run's record in :mod:`gridctl.commands.drill_report`.

It lives with the command line (the roof) because it starts both the simulator (top floor) and
the controller runtime (second floor); no room below may import the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from forecasts.operator_inputs import OperatorInputs
from gridctl.commands.drill_record import (
    FAULT_KINDS,
    REPAIR_KINDS,
    DrillRun,
    TickTally,
    load_p_mw,
)
from gridctl.commands.drill_report import DrillReport, build_report, write_outputs
from gridctl.commands.drill_scenario import DrillEvent, DrillScenario, check_expectations
from gridctl.commands.process import frozen_after_start_up
from gridctl.field.security import loopback_operator
from gridctl.field_client import FieldClient
from gridctl.microgrids import supervisors_of
from gridctl.runtime import ControllerRuntime, RuntimeConfig, planner_for
from gridctl.self_healing import FaultResponder
from gridctl.study import Study
from network_models.ac_checks import AcLimits
from network_models.model import GridModel

__all__ = [
    "DrillReport",
    "run_drill",
    "write_outputs",
]

_METHOD = {
    "cable_fault": "FaultLine",
    "transformer_loss": "LoseTransformer",
    "substation_loss": "LoseSubstation",
    "comm_loss": "LoseComm",
    "device_trip": "TripDevice",
    "supply_restored": "ClearFault",
    "clear": "ClearFault",
}
_SWITCHING = ("open_switch", "close_switch")  # written by the drill's operator, as a dispatcher
_USER = "drill"
_HORIZON_H = 2.0  # the MPC's window in a drill

log = logging.getLogger("gridctl.commands.drill_runner")


async def run_drill(
    scenario: DrillScenario,
    model: GridModel,
    *,
    db_path: Path | None = None,
    barrier_timeout_s: float = 60.0,
    inputs: OperatorInputs | None = None,
    study: Study | None = None,
) -> DrillReport:
    """Run ``scenario`` on ``model`` against the simulator with the runtime in the loop;
    ``inputs`` (the operator's files) are the simulated day's truth and the controller's
    forecasts, ``study`` sets how the controller plans."""
    from gridctl.field.asyncua_logs import show_asyncua_warnings
    from gridctl.study import load_study

    inputs = inputs or OperatorInputs()
    study = study or load_study()
    show_asyncua_warnings(controller=True)
    wall0 = time.perf_counter()
    password = secrets.token_urlsafe(12)
    server_security, client_security = loopback_operator(_USER, password)
    errors = _ErrorLog()
    with contextlib.ExitStack() as stack:
        # everything built from here to started() lives as long as the drill
        started = stack.enter_context(frozen_after_start_up())
        if db_path is None:
            db_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "drill.sqlite"
        config = _runtime_config(scenario, study, inputs, db_path)
        # the planner builds the MPC's problem in its own process while the simulator is built
        planner = planner_for(model, config)
        stack.callback(planner.close)  # the runtime ends it too; here also if the start fails
        planner.start_soon()
        server = _simulator(model, scenario, inputs, server_security)
        sim = server.simulator
        start = sim.time
        end = start + pd.Timedelta(minutes=scenario.duration_min)
        responder = FaultResponder(model)
        stack.enter_context(errors.capture())
        await server.start()
        runtime = ControllerRuntime(
            model,
            dataclasses.replace(config, endpoint=server.endpoint),
            security=client_security,
            responder=responder,
            microgrids=supervisors_of(model),
            planner=planner,
        )
        started()  # simulator and runtime built: their objects live as long as the drill
        task = asyncio.create_task(runtime.run(), name="drill-runtime")
        loop = _InTheLoop(sim, server, runtime, task, barrier_timeout_s)
        try:
            async with FieldClient(server.endpoint, runtime.contract,
                                   security=client_security) as operator:
                timeline, tally = await _drive(scenario, loop, operator, start, end)
        finally:
            errors.stopping = True
            runtime.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=10.0)
            await server.stop()
    report = build_report(DrillRun(
        drill_scenario=scenario,
        model=model,
        sim=sim,
        responder=responder,
        microgrid_events=tuple(e.to_dict() for s in runtime.microgrids for e in s.timeline),
        timeline=tuple(timeline),
        tally=tally,
        start=start,
        end=end,
        write_errors=runtime.stats.write_errors,
        mpc_decisions=runtime.stats.decisions,
        runtime_errors=tuple(errors.messages),
        wall_s=time.perf_counter() - wall0,
    ))
    found = check_expectations(scenario, report.to_dict())
    return dataclasses.replace(report, expectations=tuple(found))


def _simulator(model: GridModel, scenario: DrillScenario, inputs: OperatorInputs,
               security: Any) -> Any:
    """The simulator's OPC UA server as a drill runs it: in step mode on a free loopback port,
    from the scenario's start, coarse ticks until the drill changes them."""
    from hil_sim.config import SimConfig
    from hil_sim.server import SimServer

    return SimServer(
        model,
        port=0,
        step_mode=True,
        start=scenario.start,
        config=SimConfig(tick_s=scenario.coarse_tick_s, inputs=inputs),
        security=security,
    )


def _runtime_config(
    scenario: DrillScenario, study: Study, inputs: OperatorInputs, db_path: Path
) -> RuntimeConfig:
    """The runtime as a drill runs it: fast ticks, the drill's MPC step, no day-ahead job."""
    from gridctl.commands.inputs import tariff_for

    return RuntimeConfig(
        endpoint="",  # known once the simulator listens
        db_path=db_path,
        horizon_steps=max(2, round(_HORIZON_H * 60 / scenario.mpc_step_minutes)),
        step_minutes=scenario.mpc_step_minutes,
        tick_wall_s=0.002,
        watch_period_ms=2.0,
        # a drill lasts minutes: no day-ahead job (the MPC's window ends at its configured
        # state of charge instead of the day plan's), and the runtime's routine record of
        # the main measurements every 5 simulated minutes, not every minute (a drill is
        # judged on the simulator's own state)
        dayahead_hour=None,
        poll_s=300.0,
        inputs=inputs,
        dispatch=study.dispatch,
        tariff=tariff_for(study, inputs),
        carbon_kg_per_kwh=study.carbon_kg_per_kwh,
    )


class _ErrorLog(logging.Handler):
    """Errors the runtime's scheduled jobs raised (APScheduler logs them), kept for the report
    instead of printed: the drill reports them as findings."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []
        self.stopping = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.stopping:
            return  # a read cut short by the shutdown is not a finding
        exc = record.exc_info[1] if record.exc_info else None
        self.messages.append(f"{type(exc).__name__}: {exc}" if exc else record.getMessage())

    @contextlib.contextmanager
    def capture(self):
        # the scheduler's jobs and the runtime's own background work (control steps, events)
        loggers = [logging.getLogger(n) for n in ("apscheduler.executors.default",
                                                  "gridctl.runtime")]
        propagate = [logger.propagate for logger in loggers]
        for logger in loggers:
            logger.addHandler(self)
            logger.propagate = False
        try:
            yield self
        finally:
            for logger, was in zip(loggers, propagate, strict=True):
                logger.removeHandler(self)
                logger.propagate = was


@dataclass(frozen=True)
class _InTheLoop:
    """The drill's running parts: the simulator, its OPC UA server, the runtime and its task."""

    sim: Any
    server: Any
    runtime: ControllerRuntime
    task: asyncio.Task
    timeout_s: float  # wall time the runtime may take to answer the field

    async def barrier(self, *, first_plan: bool = False) -> None:
        """Wait until the runtime has answered every publication of the simulator so far (and
        with ``first_plan`` has finished its first control step, planned or failed)."""
        runtime = self.runtime
        # the first plan includes the planner's start: its own time limit, and then some
        timeout_s = self.timeout_s + (runtime.planner.timeout_s if first_plan else 0.0)
        deadline = time.monotonic() + timeout_s
        while not (runtime.caught_up(self.server.publish_seq) and (
                not first_plan or runtime.stats.decisions + runtime.stats.steps_failed > 0)):
            if self.task.done():
                self.task.result()  # the runtime failed: raise its error
                raise RuntimeError("the controller runtime stopped during the drill")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the controller runtime did not answer the field within {timeout_s} s of "
                    "wall time"
                )
            await asyncio.sleep(0.001)


async def _drive(
    scenario: DrillScenario, loop: _InTheLoop, operator: FieldClient,
    start: pd.Timestamp, end: pd.Timestamp,
) -> tuple[list[dict[str, Any]], TickTally]:
    """Move the simulator's clock from ``start`` to ``end``, injecting the scenario's events at
    their times: fine ticks after each event, coarse elsewhere; the drill's timeline and tally."""
    from hil_sim.drill_client import DrillClient

    sim, server = loop.sim, loop.server
    drill = DrillClient(operator)  # faults and repairs: the simulator's methods, as an operator
    events = [(start + pd.Timedelta(minutes=e.at_min), e) for e in scenario.events]
    timeline: list[dict[str, Any]] = []
    tally = TickTally()
    seen_events = sim.event_count
    fine_until = start
    # the drill starts from the grid as gridctl runs it: connected and its first plan written
    await loop.barrier(first_plan=True)
    wall0 = time.perf_counter()
    tally.base_unsupplied = frozenset(sim.status.unsupplied_loads)
    tally.violations_before_fault = _violations(sim)
    while sim.time < end:
        now = sim.time
        while events and events[0][0] <= now:
            _, event = events.pop(0)
            timeline.append(await _inject(event, now, operator, drill))
            fine_until = now + pd.Timedelta(minutes=scenario.fine_window_min)
        await loop.barrier()
        seen_events = _field_events(sim, seen_events, timeline)
        tick_s = scenario.fine_tick_s if now < fine_until else scenario.coarse_tick_s
        if events:
            tick_s = min(tick_s, (events[0][0] - now).total_seconds())
        tick_s = min(tick_s, (end - now).total_seconds())
        _sample(sim, tally, now, tick_s, timeline)
        sim.config = dataclasses.replace(sim.config, tick_s=tick_s)
        await server.step(1)
        tally.ticks += 1
    await loop.barrier()
    _field_events(sim, seen_events, timeline)
    _sample(sim, tally, sim.time, 0.0, timeline)
    tally.loop_wall_s = time.perf_counter() - wall0
    return timeline, tally


async def _inject(
    event: DrillEvent, now: pd.Timestamp, operator: FieldClient, drill: Any
) -> dict[str, Any]:
    """Inject one event over OPC UA (a dispatcher's switching, or a simulator method) and say
    what the field answered, as a timeline entry."""
    if event.kind in _SWITCHING:
        closed = event.kind == "close_switch"
        [result] = await operator.write({(event.target, "close_cmd"): closed})
        text = f"{'close' if closed else 'open'} by the dispatcher: {result.status_name}"
        kind = "dispatcher"
    else:
        text = await drill.call(_METHOD[event.kind], event.target)
        kind = ("fault" if event.kind in FAULT_KINDS
                else "repair" if event.kind in REPAIR_KINDS else event.kind)
    return _entry(now, kind, f"{event.kind} {event.target}: {text}", event.target)


def _entry(t: pd.Timestamp, kind: str, text: str, device: str | None = None) -> dict[str, Any]:
    return {"time": t.isoformat(), "kind": kind, "text": text, "device": device}


_FIELD_KINDS = (
    ("reset on restoration", "indicator"),  # the field's own record of an indicator's reset
    (" reset", "indicator"),
    ("protection cleared", "protection"),
    ("loss of mains", "protection"),
    ("tripped", "protection"),
    ("islanded", "islanding"),
    ("island collapsed", "islanding"),
    ("back on the grid", "islanding"),
    ("disconnected by command", "load_off"),
    ("reconnected by command", "load_on"),
    ("by command", "switching"),
    ("supply of", "protection"),
)


def _field_events(sim, seen: int, timeline: list[dict[str, Any]]) -> int:
    new = sim.event_count - seen
    for t, text in list(sim.events)[-new:] if new > 0 else []:
        kind = next((k for key, k in _FIELD_KINDS if key in text), None)
        if kind is not None:
            timeline.append(_entry(t, kind, text))
    return sim.event_count


def _sample(
    sim, tally: TickTally, now: pd.Timestamp, tick_s: float, timeline: list[dict[str, Any]]
) -> None:
    off = frozenset(sim.status.unsupplied_loads) - tally.base_unsupplied
    previous = tally.samples[-1][1] if tally.samples else frozenset()
    if off - previous:
        timeline.append(
            _entry(now, "supply_lost", "unsupplied: " + ", ".join(sorted(off - previous)))
        )
    if previous - off:
        timeline.append(
            _entry(now, "supply_back", "supplied again: " + ", ".join(sorted(previous - off)))
        )
    tally.samples.append((now, off))
    tally.violations.append((now, _violations(sim)))
    tally.ever |= off
    if not off or tick_s <= 0:
        return
    customers = {d.id: d.customers for d in sim.loads}
    tally.customer_min += sum(customers[d] for d in off) * tick_s / 60.0
    p_mw = load_p_mw(sim, now + pd.Timedelta(seconds=tick_s / 2))
    tally.ens_kwh += sum(p_mw[d] for d in off) * tick_s / 3600.0 * 1000.0


def _violations(sim, limits: AcLimits | None = None) -> list[dict[str, Any]]:
    limits = limits or AcLimits()
    view = sim.network_view()
    found = []
    for name, v in zip(view["bus_names"], view["bus_vm_pu"], strict=True):
        if v > 0 and not math.isnan(v) and not limits.v_min_pu <= v <= limits.v_max_pu:
            found.append({"element": name, "kind": "voltage_pu", "value": round(v, 4)})
    for key, limit in (
        ("line", limits.max_line_loading_pct),
        ("trafo", limits.max_trafo_loading_pct),
    ):
        for name, x in zip(view[f"{key}_names"], view[f"{key}_loading_pct"], strict=True):
            if not math.isnan(x) and x > limit:
                found.append({"element": name, "kind": f"{key}_loading_pct", "value": round(x, 1)})
    return found
