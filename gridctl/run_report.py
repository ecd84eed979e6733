"""The report of a controller run, from its historian: measured against planned.

A historian holds runs (a start of the runtime, a field clock that jumped back: see
``gridctl.historian``); a report is of one run, never a merge of two runs' series.

The energy owed to vehicles at departure is split in two: what a session could not get even
alone (it asked for more than ``max_kw`` × its stay as the controller saw it: unservable on its
own) and what it could have had but did not (short because of the grid or the plan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridctl.errors import UserInputError
from gridctl.historian import Historian, HistorianRun, StoredSession
from gridctl.report import Panel, Series, check_output_path, write_html_report


def describe_run(r: HistorianRun) -> str:
    """One line an operator reads a run by."""
    span = (f"field time {r.first_t.isoformat()} to {r.last_t.isoformat()}"
            if r.first_t is not None and r.last_t is not None else "no field time yet")
    wall = ("wall time unknown" if r.wall_start is None
            else f"started {r.wall_start.isoformat()}")
    return (f"run {r.id} ({r.reason}, {wall}): {span}; {r.rows.get('decisions', 0)} decisions, "
            f"{r.rows.get('measurement_frames', 0)} readings, {r.rows.get('events', 0)} events")


def _reported_run(h: Historian, runs: list[HistorianRun], run: int | None, db: Path) -> int:
    """``run``, or the last run that made control steps."""
    if run is not None:
        if run not in {r.id for r in runs}:
            held = ", ".join(str(r.id) for r in runs) or "none"
            raise UserInputError(f"{run}: no such run; the historian holds runs {held}",
                                 source=str(db), field="--run")
        return run
    stepped = [r.id for r in runs if r.rows.get("decisions") and h.decisions("mpc", run=r.id)]
    if not stepped:
        raise UserInputError("the historian holds no control steps yet", source=str(db))
    return stepped[-1]


def _substation_transformers(model_name: str | None) -> list[str]:
    if not model_name:
        return []
    from network_models import load_model

    return [t.id for t in load_model(model_name).registry.substation_transformers]


@dataclass(frozen=True, kw_only=True)
class RunReport:
    path: Path  # the HTML page written
    kpis: dict[str, Any]  # the figures shown; ``run`` is the run reported
    runs: list[HistorianRun]  # every run the historian holds


def write_run_report(
    db: Path, out: Path, *, run: int | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write the HTML report of one run in ``db`` (by default the last run that made control
    steps); return its path and the KPIs shown."""
    report = report_run(db, out, run=run)
    return report.path, report.kpis


def report_run(db: Path, out: Path, *, run: int | None = None) -> RunReport:
    """:func:`write_run_report`, with the runs the historian holds."""
    check_output_path(out)  # before the historian is read and the figures drawn
    with Historian(db, create=False) as h:
        runs = h.runs()
        chosen = _reported_run(h, runs, run, db)
        table = h.measurement_table(run=chosen)
        decisions = h.decisions("mpc", run=chosen)
        events = h.events(run=chosen)
        sessions = h.sessions(run=chosen)
        model_name = h.meta("model")
    if table.empty or not decisions:
        raise UserInputError(f"run {chosen} holds no control steps yet", source=str(db),
                             field="--run")
    idx, measured_import, planned, hours = _import_series(table, decisions, model_name)
    ev_kpis, unservable = _ev_kpis(sessions, idx[-1])
    kpis = {
        "run": chosen,
        "runs_in_historian": len(runs),
        "steps": len(decisions),
        "from": idx[0].isoformat(),
        "to": idx[-1].isoformat(),
        "fallbacks": sum(1 for d in decisions if d.get("fallback")),
        "reconnects": sum(1 for e in events if e["kind"] == "reconnected"),
        "measured_peak_import_mw": round(float(np.nanmax(measured_import)), 3),
        "measured_energy_import_mwh": round(float(np.nansum(measured_import * hours)), 3),
        **ev_kpis,
        "median_solve_s": round(float(np.median([d.get("solve_s", np.nan) for d in decisions])), 3),
    }
    panels = _panels(table, measured_import, planned)
    notes = [("reported: " if r.id == chosen else "") + describe_run(r) for r in runs]
    notes += [f"unservable on its own: {s.id} at {s.site} {s.connector}: "
              f"{unservable_reason(s)}; delivered {s.energy_delivered_kwh:.1f} kWh"
              for s in unservable[:50]]
    notes += [f"{e['t'] or 'wall ' + str(e['wall_t'])}: {e['kind']}" for e in events][:50]
    path = write_html_report(
        out,
        title=f"gridctl run report: {db.name}, run {chosen}",
        index=idx,
        panels=panels,
        kpis=kpis,
        notes=notes,
    )
    return RunReport(path=path, kpis=kpis, runs=runs)


def _import_series(
    table: pd.DataFrame, decisions: list[dict[str, Any]], model_name: str | None
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray]:
    """The run's field times, its measured grid import (the substation transformers, MW), the
    import its control steps planned (held until the next step, MW) and each reading's hours."""
    idx = pd.DatetimeIndex(table.index)
    trafo_cols = [f"{t}.p_mw" for t in _substation_transformers(model_name)]
    trafo_cols = [c for c in trafo_cols if c in table.columns]
    measured_import = table[trafo_cols].sum(axis=1).to_numpy() if trafo_cols else np.zeros(len(idx))
    planned = pd.Series(
        {pd.Timestamp(d["t"]): d.get("planned_import_mw", np.nan) for d in decisions}
    )
    planned.index = pd.to_datetime(planned.index, utc=True).tz_convert(idx.tz)
    planned = planned[~planned.index.duplicated(keep="last")].sort_index()
    planned = planned.reindex(idx, method="ffill").to_numpy(dtype=float)
    hours = np.diff(idx.asi8) / 3.6e12
    hours = np.append(hours, np.median(hours) if len(hours) else 0.25)
    return idx, measured_import, planned, hours


def _ev_kpis(
    sessions: Sequence[StoredSession], last_t: pd.Timestamp
) -> tuple[dict[str, Any], list[StoredSession]]:
    """The EV figures of a run (kWh) and the sessions that asked for more than their stay
    allowed."""
    # the charger's own end-of-session report; a session seen only in control steps (the
    # controller was down when it left) is counted apart, its last reading up to a step old
    ended = [s for s in sessions if s.ended is not None]
    unreported = [s for s in sessions if s.ended is None and s.departure <= last_t]
    owed = sum(max(0.0, s.energy_kwh - s.energy_delivered_kwh) for s in ended)
    unservable = [s for s in ended if unservable_kwh(s) > 0]
    return {
        "ev_sessions_seen": len(sessions),
        "ev_sessions_ended": len(ended),
        "ev_energy_owed_at_departure_kwh": round(owed, 2),
        "ev_sessions_short_over_0_5_kwh": sum(
            s.energy_kwh - s.energy_delivered_kwh > 0.5 for s in ended
        ),
        # of what was owed: what no plan could have given (asked for more than the stay allows)
        "ev_sessions_unservable_on_their_own": len(unservable),
        "ev_energy_unservable_on_their_own_kwh": round(sum(unservable_kwh(s) for s in ended), 2),
        # and what the grid or the plan left short of what the session could have had
        "ev_energy_short_by_grid_or_plan_kwh": round(
            sum(short_by_grid_or_plan_kwh(s) for s in ended), 2),
        "ev_sessions_short_by_grid_or_plan_over_0_5_kwh": sum(
            short_by_grid_or_plan_kwh(s) > 0.5 for s in ended),
        "ev_sessions_left_unreported": len(unreported),
        # from the last reading of each (up to a step before it left): an upper bound
        "ev_energy_owed_unreported_kwh": round(
            sum(max(0.0, s.energy_kwh - s.energy_delivered_kwh) for s in unreported), 2
        ),
    }, unservable


def _panels(table: pd.DataFrame, measured_import: np.ndarray, planned: np.ndarray) -> list[Panel]:
    """The report's panels: import measured against planned, state of charge, EV charging and
    the voltage band at the meters."""
    soc_cols = [c for c in table.columns if c.endswith(".soc_frac")]
    ev_cols = [c for c in table.columns if c.endswith(".p_charge_kw") and c.count(".") == 1]
    v_cols = [c for c in table.columns if c.endswith(".v_pu")]
    return [
        Panel(
            title="Grid import: measured (substation transformers) and planned",
            ylabel="MW",
            series=[
                Series(label="measured", values=measured_import),
                Series(label="planned", values=planned, style="--"),
            ],
        ),
        Panel(
            title="BESS state of charge (measured)",
            ylabel="fraction",
            series=[Series(label=c.split(".")[0], values=table[c].to_numpy()) for c in soc_cols],
        ),
        Panel(
            title="EV charging (measured)",
            ylabel="kW",
            series=[Series(label="all sites", values=table[ev_cols].sum(axis=1).to_numpy())],
        ),
        Panel(
            title="Voltage at meters (measured)",
            ylabel="pu",
            series=[
                Series(label="lowest", values=table[v_cols].min(axis=1).to_numpy()),
                Series(label="highest", values=table[v_cols].max(axis=1).to_numpy()),
            ],
            hlines=[(0.93, "0.93 pu"), (1.07, "1.07 pu")],
        ),
    ]


def max_deliverable_kwh(s: StoredSession) -> float:
    """The most a session could take in its stay as the controller saw it: max_kw × stay, kWh."""
    return s.max_kw * max((s.departure - s.arrival).total_seconds(), 0.0) / 3600.0


def unservable_kwh(s: StoredSession) -> float:
    """What it asked for beyond what its stay allows at its power, kWh (0 if servable alone)."""
    gap = s.energy_kwh - max_deliverable_kwh(s)
    return gap if gap > 1e-6 else 0.0


def short_by_grid_or_plan_kwh(s: StoredSession) -> float:
    """What it could have had and did not get, kWh: of what it asked, at most max_kw × stay."""
    servable = min(s.energy_kwh, max_deliverable_kwh(s))
    return max(0.0, servable - s.energy_delivered_kwh)


def unservable_reason(s: StoredSession) -> str:
    hours = (s.departure - s.arrival).total_seconds() / 3600.0
    return (f"needs {s.energy_kwh:.1f} kWh, at most {max_deliverable_kwh(s):.1f} kWh "
            f"in its {round(hours, 2):g} h stay at {s.max_kw:g} kW")
