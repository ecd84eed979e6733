"""A drill's report: the figures judged from a finished run, and its JSON and HTML files.

Figures are integrated over the ticks (see :mod:`gridctl.commands.drill_runner`); the status
is judged on what is supplied at the end, not on the plans; the baseline is the same fault
without automation, its loads off for the scenario's ``manual_restoration_min``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gridctl.commands.drill_record import FAULT_KINDS, DrillRun, TickTally, load_p_mw
from gridctl.commands.drill_scenario import DrillScenario
from gridctl.self_healing import FaultResponder
from network_models.model import GridModel

__all__ = ["DrillReport", "build_report", "write_outputs"]

# how entries at the same instant are told: cause first, then protection, FLISR, the result
_ORDER = {
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


def build_report(run: DrillRun) -> DrillReport:
    """Judge a finished drill: its figures, the baseline, the faults located and the end state
    (the scenario's expectations are checked by the runner, on this report's dictionary)."""
    tally, sim, responder = run.tally, run.sim, run.responder
    timeline = _ordered_timeline(run)
    customers = {d.id: d.customers for d in sim.loads}
    faults = [pd.Timestamp(e["time"]) for e in timeline if e["kind"] == "fault"]
    repairs = [pd.Timestamp(e["time"]) for e in timeline if e["kind"] == "repair"]
    first_fault = faults[0] if faults else None
    horizon = min([r for r in repairs if first_fault is None or r > first_fault] + [run.end])
    restoration_s, settled = _restoration(tally, first_fault, horizon)
    since = settled if settled is not None else run.start
    located = _fault_locations(run.drill_scenario, responder, run.start)
    off_at_end = tally.samples[-1][1] if tally.samples else frozenset()
    return DrillReport(
        scenario=run.drill_scenario.name,
        description=run.drill_scenario.description,
        model=run.model.name,
        start=run.start,
        end=run.end,
        events=tuple(timeline),
        status=_status(tally.ever, off_at_end),
        customers_interrupted=sum(customers[d] for d in tally.ever),
        customer_minutes_interrupted=round(tally.customer_min, 2),
        energy_not_supplied_kwh=round(tally.ens_kwh, 3),
        restoration_s=restoration_s,
        switch_operations=sum(p.switch_operations for p in responder.plans),
        faults=tuple(located),
        faults_mislocated=sum(1 for f in located if f["located_correctly"] is False),
        reclosed_onto_fault=tuple(responder.reclosures),
        violations_after_restoration=tuple(_violations_after(tally, since, horizon, run.end)),
        violations_before_fault=tuple(tally.violations_before_fault),
        unsupplied_at_end=tuple(sorted(off_at_end)),
        microgrids=tuple(_microgrids(run.model, sim, timeline)),
        plans=tuple(p.to_dict() for p in responder.plans),
        baseline=_baseline(run.drill_scenario, sim, tally, customers, run.start),
        write_errors=run.write_errors,
        mpc_decisions=run.mpc_decisions,
        runtime_errors=run.runtime_errors,
        wall_s=round(run.wall_s, 3),
        drill_wall_s=round(tally.loop_wall_s, 3),
        ticks=tally.ticks,
        series={
            "time": [t for t, _ in tally.samples],
            "customers_off": [sum(customers[d] for d in off) for _, off in tally.samples],
        },
    )


def _ordered_timeline(run: DrillRun) -> list[dict[str, Any]]:
    """The drill's entries, FLISR's and the microgrids', by time and, at one instant, cause
    before effect."""
    timeline = list(run.timeline) + [e.to_dict() for e in run.responder.timeline]
    timeline += run.microgrid_events
    timeline.sort(key=lambda e: (e["time"], _ORDER.get(e["kind"], 9)))
    return timeline


def _restoration(
    tally: TickTally, first_fault: pd.Timestamp | None, horizon: pd.Timestamp
) -> tuple[float | None, pd.Timestamp | None]:
    """Seconds from the first fault until every load it took off was back before ``horizon``
    (the first repair after it, or the end), and the time it settled; ``None`` if never."""
    if first_fault is None:
        return None, None
    backs = [
        t
        for (t, off), (_, prev) in zip(tally.samples[1:], tally.samples[:-1], strict=True)
        if first_fault < t <= horizon and prev - off
    ]
    if not tally.ever:
        return 0.0, first_fault
    if backs and not (tally.samples and tally.samples[-1][1] & tally.ever):
        return (backs[-1] - first_fault).total_seconds(), backs[-1]
    return None, first_fault


def _violations_after(
    tally: TickTally, since: pd.Timestamp, horizon: pd.Timestamp, end: pd.Timestamp
) -> list[dict[str, Any]]:
    """The limits broken from ``since`` (restoration settled) to the horizon, each element and
    kind once, as first seen."""
    violations: dict[tuple[str, str], dict[str, Any]] = {}
    for t, found in tally.violations:
        if since <= t < horizon or (t == horizon == end):
            for v in found:
                violations.setdefault((v["element"], v["kind"]), v | {"time": t.isoformat()})
    return list(violations.values())


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
    scenario: DrillScenario, sim, tally: TickTally, customers: dict[str, int],
    start: pd.Timestamp,
) -> dict[str, Any]:
    """The loads protection left off at each fault stay off for the manual restoration time."""
    fault_times = [
        start + pd.Timedelta(minutes=e.at_min) for e in scenario.events if e.kind in FAULT_KINDS
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
            p = load_p_mw(sim, t + pd.Timedelta(minutes=(k + 0.5) * dt_min))
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
