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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from forecasts.operator_inputs import OperatorInputs
from gridctl.commands.drill_scenario import DrillScenario, check_expectations
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
_FAULTS = ("cable_fault", "transformer_loss", "substation_loss", "device_trip")
_REPAIRS = ("supply_restored", "clear")
_USER = "drill"
_HORIZON_H = 2.0  # the MPC's window in a drill

log = logging.getLogger("gridctl.commands.drill_runner")


@dataclass(frozen=True, kw_only=True)
class DrillReport:
    """What a drill found; ``to_dict`` is the JSON report (times ISO 8601, simulated)."""

    scenario: str
    description: str
    model: str
    start: pd.Timestamp
    end: pd.Timestamp
    events: tuple[dict[str, Any], ...]
    # from what is supplied at the end, not from the plans: restored | partially_restored |
    # not_restored | no_interruption
    status: str
    customers_interrupted: int
    customer_minutes_interrupted: float
    energy_not_supplied_kwh: float
    restoration_s: float | None
    switch_operations: int
    # each cable fault injected: its line and time, the first location FLISR made of it
    faults: tuple[dict[str, Any], ...]
    faults_mislocated: int
    reclosed_onto_fault: tuple[dict[str, Any], ...]  # FLISR closes that met a fault
    violations_after_restoration: tuple[dict[str, Any], ...]
    violations_before_fault: tuple[dict[str, Any], ...]
    unsupplied_at_end: tuple[str, ...]
    microgrids: tuple[dict[str, Any], ...]
    plans: tuple[dict[str, Any], ...]
    baseline: dict[str, Any]
    write_errors: int
    mpc_decisions: int  # control steps the MPC planned during the drill (fallbacks included)
    runtime_errors: tuple[str, ...]
    wall_s: float  # start-up of simulator and runtime included
    drill_wall_s: float  # from the runtime's first plan (connected, first step done) to the end
    ticks: int
    series: dict[str, list[Any]] = field(default_factory=dict)
    # the scenario file's ``expect``, each with the figure found: {figure, expected, actual, met}
    expectations: tuple[dict[str, Any], ...] = ()

    @property
    def expectations_met(self) -> bool:
        return all(e["met"] for e in self.expectations)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data.pop("series")
        data["expectations_met"] = self.expectations_met
        return data


# --- running a drill ------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Running sums over the ticks."""

    base_unsupplied: frozenset[str] = frozenset()
    ever: set[str] = field(default_factory=set)
    customer_min: float = 0.0
    ens_kwh: float = 0.0
    samples: list[tuple[pd.Timestamp, frozenset[str]]] = field(default_factory=list)
    violations: list[tuple[pd.Timestamp, list[dict[str, Any]]]] = field(default_factory=list)
    loop_wall_s: float = 0.0  # from the runtime's first plan to the drill's end


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
    from gridctl.commands.inputs import tariff_for
    from gridctl.study import load_study

    inputs = inputs or OperatorInputs()
    study = study or load_study()
    from gridctl.field.asyncua_logs import show_asyncua_warnings
    from hil_sim.config import SimConfig
    from hil_sim.server import SimServer

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
        config = RuntimeConfig(
            endpoint="",  # known once the simulator listens (below)
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
        # the planner builds the MPC's problem in its own process while the simulator is built
        planner = planner_for(model, config)
        stack.callback(planner.close)  # the runtime ends it too; here also if the start fails
        planner.start_soon()
        server = SimServer(
            model,
            port=0,
            step_mode=True,
            start=scenario.start,
            config=SimConfig(tick_s=scenario.coarse_tick_s, inputs=inputs),
            security=server_security,
        )
        sim = server.simulator
        start = sim.time
        end = start + pd.Timedelta(minutes=scenario.duration_min)
        responder = FaultResponder(model)
        supervisors = supervisors_of(model)
        stack.enter_context(errors.capture())
        await server.start()
        runtime = ControllerRuntime(
            model,
            dataclasses.replace(config, endpoint=server.endpoint),
            security=client_security,
            responder=responder,
            microgrids=supervisors,
            planner=planner,
        )
        started()  # simulator and runtime built: their objects live as long as the drill
        task = asyncio.create_task(runtime.run(), name="drill-runtime")
        try:
            async with FieldClient(server.endpoint, runtime.contract,
                                   security=client_security) as operator:
                timeline, tally, ticks, before = await _drive(
                    scenario, sim, server, operator, runtime, task, start, end, barrier_timeout_s
                )
        finally:
            errors.stopping = True
            runtime.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout=10.0)
            await server.stop()
    report = _report(
        scenario,
        model,
        sim,
        responder,
        runtime,
        timeline,
        tally,
        before,
        start,
        end,
        ticks,
        time.perf_counter() - wall0,
        errors.messages,
    )
    found = check_expectations(scenario, report.to_dict())
    return dataclasses.replace(report, expectations=tuple(found))


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


async def _drive(scenario, sim, server, operator, runtime, task, start, end, timeout_s):
    from hil_sim.drill_client import DrillClient

    drill = DrillClient(operator)  # faults and repairs: the simulator's methods, as an operator
    events = [(start + pd.Timedelta(minutes=e.at_min), e) for e in scenario.events]
    timeline: list[dict[str, Any]] = []
    tally = _Tally()
    seen_events = sim.event_count
    fine_until = start
    ticks = 0
    # the drill starts from the grid as gridctl runs it: connected and its first plan written
    # the first plan includes the planner's start: its own time limit, and then some
    await _barrier(runtime, server, task, timeout_s + runtime.planner.timeout_s,
                   first_plan=True)
    wall0 = time.perf_counter()
    tally.base_unsupplied = frozenset(sim.status.unsupplied_loads)
    before = _violations(sim)
    while sim.time < end:
        now = sim.time
        while events and events[0][0] <= now:
            _, event = events.pop(0)
            if event.kind in _SWITCHING:
                closed = event.kind == "close_switch"
                [result] = await operator.write({(event.target, "close_cmd"): closed})
                text = f"{'close' if closed else 'open'} by the dispatcher: {result.status_name}"
                kind = "dispatcher"
            else:
                text = await drill.call(_METHOD[event.kind], event.target)
                kind = ("fault" if event.kind in _FAULTS
                        else "repair" if event.kind in _REPAIRS else event.kind)
            timeline.append(_entry(now, kind, f"{event.kind} {event.target}: {text}",
                                   event.target))
            fine_until = now + pd.Timedelta(minutes=scenario.fine_window_min)
        await _barrier(runtime, server, task, timeout_s)
        seen_events = _field_events(sim, seen_events, timeline)
        tick_s = scenario.fine_tick_s if now < fine_until else scenario.coarse_tick_s
        if events:
            tick_s = min(tick_s, (events[0][0] - now).total_seconds())
        tick_s = min(tick_s, (end - now).total_seconds())
        _sample(sim, tally, now, tick_s, timeline)
        sim.config = dataclasses.replace(sim.config, tick_s=tick_s)
        await server.step(1)
        ticks += 1
    await _barrier(runtime, server, task, timeout_s)
    _field_events(sim, seen_events, timeline)
    _sample(sim, tally, sim.time, 0.0, timeline)
    tally.loop_wall_s = time.perf_counter() - wall0
    return timeline, tally, ticks, before


async def _barrier(runtime: ControllerRuntime, server, task: asyncio.Task, timeout_s: float,
                   *, first_plan: bool = False) -> None:
    """Wait until the runtime has answered every publication of the simulator so far (and with
    ``first_plan`` has finished its first control step, planned or failed)."""
    deadline = time.monotonic() + timeout_s
    while not (runtime.caught_up(server.publish_seq) and (
            not first_plan or runtime.stats.decisions + runtime.stats.steps_failed > 0)):
        if task.done():
            task.result()  # the runtime failed: raise its error
            raise RuntimeError("the controller runtime stopped during the drill")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the controller runtime did not answer the field within {timeout_s} s of wall "
                "time"
            )
        await asyncio.sleep(0.001)


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
    sim, tally: _Tally, now: pd.Timestamp, tick_s: float, timeline: list[dict[str, Any]]
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
    p_mw = _load_p_mw(sim, now + pd.Timedelta(seconds=tick_s / 2))
    tally.ens_kwh += sum(p_mw[d] for d in off) * tick_s / 3600.0 * 1000.0


def _load_p_mw(sim, t: pd.Timestamp) -> dict[str, float]:
    sample = sim.truth.at(t)
    return {d.id: max(float(p), 0.0) for d, p in zip(sim.loads, sample.load_p_mw, strict=True)}


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


# --- the report ----------------------------------------------------------------------------------


def _report(
    scenario,
    model,
    sim,
    responder,
    runtime,
    timeline,
    tally,
    before,
    start,
    end,
    ticks,
    wall_s,
    errors,
) -> DrillReport:
    timeline = timeline + [e.to_dict() for e in responder.timeline]
    timeline += [e.to_dict() for s in runtime.microgrids for e in s.timeline]
    order = {
        "fault": 0,
        "repair": 0,
        "dispatcher": 0,
        "comm_loss": 0,
        "device_trip": 0,
        "protection": 1,
        "islanding": 2,
        "supply_lost": 3,
        "reclosed_onto_fault": 4,
        "isolation_lifted": 4,
        "detection": 4,
        "isolation": 5,
        "indicator_reset": 6,
        "indicator": 7,
        "restoration_step": 6,
        "shed": 6,
        "reconnection": 6,
        "switching": 7,
        "load_off": 7,
        "load_on": 7,
        "supply_back": 8,
    }
    timeline.sort(key=lambda e: (e["time"], order.get(e["kind"], 9)))
    customers = {d.id: d.customers for d in sim.loads}
    faults = [pd.Timestamp(e["time"]) for e in timeline if e["kind"] == "fault"]
    repairs = [pd.Timestamp(e["time"]) for e in timeline if e["kind"] == "repair"]
    first_fault = faults[0] if faults else None
    horizon = min([r for r in repairs if first_fault is None or r > first_fault] + [end])
    restoration_s, settled = None, first_fault
    if first_fault is not None:
        backs = [
            t
            for (t, off), (_, prev) in zip(tally.samples[1:], tally.samples[:-1], strict=True)
            if first_fault < t <= horizon and prev - off
        ]
        if not tally.ever:
            restoration_s = 0.0
        elif backs and not (tally.samples and tally.samples[-1][1] & tally.ever):
            settled = backs[-1]
            restoration_s = (settled - first_fault).total_seconds()
    violations: dict[tuple[str, str], dict[str, Any]] = {}
    since = settled if settled is not None else start
    for t, found in tally.violations:
        if since <= t < horizon or (t == horizon == end):
            for v in found:  # each element once, as first seen
                violations.setdefault((v["element"], v["kind"]), v | {"time": t.isoformat()})
    baseline = _baseline(scenario, sim, tally, customers, start)
    off_at_end = tally.samples[-1][1] if tally.samples else frozenset()
    faults = _fault_locations(scenario, responder, start)
    return DrillReport(
        scenario=scenario.name,
        description=scenario.description,
        model=model.name,
        start=start,
        end=end,
        events=tuple(timeline),
        status=_status(tally.ever, off_at_end),
        customers_interrupted=sum(customers[d] for d in tally.ever),
        customer_minutes_interrupted=round(tally.customer_min, 2),
        energy_not_supplied_kwh=round(tally.ens_kwh, 3),
        restoration_s=restoration_s,
        switch_operations=sum(p.switch_operations for p in responder.plans),
        faults=tuple(faults),
        faults_mislocated=sum(1 for f in faults if f["located_correctly"] is False),
        reclosed_onto_fault=tuple(responder.reclosures),
        violations_after_restoration=tuple(violations.values()),
        violations_before_fault=tuple(before),
        unsupplied_at_end=tuple(sorted(tally.samples[-1][1])) if tally.samples else (),
        microgrids=tuple(_microgrids(model, sim, timeline)),
        plans=tuple(p.to_dict() for p in responder.plans),
        baseline=baseline,
        write_errors=runtime.stats.write_errors,
        mpc_decisions=runtime.stats.decisions,
        runtime_errors=tuple(errors),
        wall_s=round(wall_s, 3),
        drill_wall_s=round(tally.loop_wall_s, 3),
        ticks=ticks,
        series={
            "time": [t for t, _ in tally.samples],
            "customers_off": [sum(customers[d] for d in off) for _, off in tally.samples],
        },
    )


def _status(ever: set[str], off_at_end: frozenset[str]) -> str:
    """What the drill restored, judged on the field at the end."""
    if not ever:
        return "no_interruption"
    still = off_at_end & ever
    if not still:
        return "restored"
    return "partially_restored" if still != ever else "not_restored"


def _fault_locations(
    scenario: DrillScenario, responder: FaultResponder, start: pd.Timestamp
) -> list[dict[str, Any]]:
    """Each cable fault with the first plan made at or after it: did it find the cable?"""
    planned = list(zip(responder.plan_times, responder.plans, strict=True))
    out = []
    for event in scenario.events:
        if event.kind != "cable_fault":
            continue
        at = start + pd.Timedelta(minutes=event.at_min)
        plan = next((p for t, p in planned if t >= at), None)
        lines = list(plan.location.lines) if plan is not None else []
        out.append({
            "line": event.target, "at": at.isoformat(), "located_lines": lines,
            "located_correctly": (event.target in lines) if plan is not None else None,
        })
    return out


def _baseline(
    scenario: DrillScenario, sim, tally: _Tally, customers: dict[str, int], start: pd.Timestamp
) -> dict[str, Any]:
    """The loads protection left off at each fault stay off for the manual restoration time."""
    fault_times = [
        start + pd.Timedelta(minutes=e.at_min) for e in scenario.events if e.kind in _FAULTS
    ]
    by_time = dict(tally.samples)
    off_by_fault: list[tuple[pd.Timestamp, frozenset[str]]] = []
    counted: set[str] = set()
    for t in fault_times:
        off = by_time.get(t, frozenset()) - counted
        counted |= off
        off_by_fault.append((t, off))
    minutes = scenario.manual_restoration_min
    ens = 0.0
    for t, off in off_by_fault:
        steps = max(math.ceil(minutes / 5.0), 1)
        dt_min = minutes / steps
        for k in range(steps):
            p = _load_p_mw(sim, t + pd.Timedelta(minutes=(k + 0.5) * dt_min))
            ens += sum(p[d] for d in off) * dt_min / 60.0 * 1000.0
    interrupted = sum(customers[d] for d in counted)
    return {
        "manual_restoration_min": minutes,
        "customers_interrupted": interrupted,
        "customer_minutes_interrupted": round(interrupted * minutes, 2),
        "energy_not_supplied_kwh": round(ens, 3),
        "restoration_s": minutes * 60.0 if counted else 0.0,
    }


def _microgrids(model: GridModel, sim, timeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    from controllers.islanding import MicrogridSpec, hold_time_h

    out = []
    for grid in model.microgrids:
        spec = MicrogridSpec.of(model, grid.name)
        islanded = [
            e["time"]
            for e in timeline
            if e["kind"] == "islanding" and grid.name in e["text"] and "islanded" in e["text"]
        ]
        back = [
            e["time"]
            for e in timeline
            if e["kind"] == "islanding" and e["text"] == f"{grid.name} back on the grid"
            and islanded and e["time"] > islanded[0]
        ]
        loads = [s.device for s in spec.loads if s.kind == "load"]
        unsupplied = set(sim.status.unsupplied_loads)
        soc = float(sim.reading(spec.bess.id, "soc_frac"))
        load_mw = sum(float(sim.reading(d, "p_mw")) for d in loads)
        pv_mw = sum(float(sim.reading(d, "p_mw")) for d in spec.pv)
        live = sim.grid.island_live(
            next(i for i in sim.grid.islands if i.microgrid.name == grid.name)
        )
        out.append(
            {
                "name": grid.name,
                "islanded": bool(islanded),
                "islanded_at": islanded[0] if islanded else None,
                "reconnected": bool(back),
                "reconnected_at": back[0] if back else None,
                "islanded_at_end": bool(live),
                "loads_supplied_at_end": [d for d in loads if d not in unsupplied],
                "bess_soc_frac_at_end": round(soc, 4),
                "hold_time_h_at_end": (
                    round(hold_time_h(spec.bess, soc, load_mw, pv_mw), 2) if live else None
                ),
            }
        )
    return out


# --- outputs -------------------------------------------------------------------------------------


def write_outputs(report: DrillReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<scenario>.json`` and ``<scenario>.html`` into ``out_dir`` (each atomically)."""
    import numpy as np

    from gridctl.commands.outputs import dumps_json
    from gridctl.report import Panel, Series, write_html_report

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{report.scenario}.json"
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(dumps_json(report.to_dict(), indent=1), encoding="utf-8")
    tmp.replace(json_path)
    figures = (
        "customers_interrupted",
        "customer_minutes_interrupted",
        "energy_not_supplied_kwh",
        "restoration_s",
    )
    kpis = {k: getattr(report, k) for k in figures}
    kpis["switch_operations"] = report.switch_operations
    kpis["violations_after_restoration"] = len(report.violations_after_restoration)
    times = pd.DatetimeIndex(report.series["time"])
    panels = [
        Panel(
            title="Customers without supply",
            ylabel="customers",
            series=[
                Series(
                    label="with gridctl",
                    style="-",
                    values=np.asarray(report.series["customers_off"], float),
                )
            ],
        )
    ]
    notes = [report.description.strip()] + [
        f"{e['time'][11:19]}  {e['kind']}: {e['text']}" for e in report.events
    ]
    notes += [f"runtime error: {m}" for m in report.runtime_errors]
    notes += [f"expected {e['figure']} {e['expected']}: {e['actual']} "
              f"{'met' if e['met'] else 'NOT MET'}" for e in report.expectations]
    html_path = write_html_report(
        out_dir / f"{report.scenario}.html",
        title=f"Drill {report.scenario} ({report.model})",
        index=times,
        panels=panels,
        kpis=kpis,
        baseline_kpis=report.baseline,
        record={"plans": list(report.plans), "microgrids": list(report.microgrids)},
        notes=notes,
    )
    return json_path, html_path
