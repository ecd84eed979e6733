"""Day-ahead dispatch: forecast a day, plan it, check it in AC, and compare with no control."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from controllers.config import DispatchConfig
from controllers.dispatch import Dispatcher, PlanResult
from controllers.ev_charging import SessionState
from controllers.schedule import AcCheck, DecisionRecord, DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle, build
from network_models.model import GridModel


@dataclass(frozen=True, kw_only=True, eq=False)
class DayAheadResult:
    date: dt.date
    bundle: ForecastBundle
    plan: PlanResult
    baseline: DispatchSchedule
    baseline_ac: AcCheck
    kpis: dict[str, Any]
    baseline_kpis: dict[str, Any]
    wall_s: float


def sessions_at_start(bundle: ForecastBundle) -> tuple[SessionState, ...]:
    """Sessions of the day, those already plugged in at its start with part of their energy
    delivered: assumption, in proportion to the part of their stay already past."""
    start = bundle.start
    out = []
    for s in bundle.ev_sessions:
        delivered = 0.0
        if s.arrival < start < s.departure:
            past = (start - s.arrival) / (s.departure - s.arrival)
            delivered = s.energy_kwh * float(past)
        out.append(SessionState(session=s, energy_delivered_kwh=delivered))
    return tuple(out)


def schedule_kpis(
    bundle: ForecastBundle,
    schedule: DispatchSchedule,
    ac: AcCheck,
    states: tuple[SessionState, ...],
    *,
    solve_s: float = 0.0,
) -> dict[str, Any]:
    """The operator's figures of one schedule, from its AC power flow."""
    h = bundle.step_h
    imp = np.asarray(ac.import_mw, dtype=float)
    price = bundle.price_cny_per_kwh.to_numpy()
    export_price = (
        bundle.export_price_cny_per_kwh.to_numpy()
        if bundle.export_price_cny_per_kwh is not None
        else np.zeros_like(price)
    )
    cost = float(np.sum(np.where(imp > 0, price, export_price) * imp * h * 1000.0))
    carbon = bundle.carbon_kg_per_kwh.to_numpy()
    avail = bundle.pv_p_mw.reindex(columns=schedule.pv_p_mw.columns, fill_value=0.0).to_numpy()
    curtailed = float(np.clip(avail - schedule.pv_p_mw.to_numpy(), 0, None).sum() * h)
    end = bundle.end
    delivered = schedule.ev_session_p_kw.sum(axis=0) * h
    requested = shortfall = 0.0
    sessions = 0
    for s in states:
        if s.session.departure <= bundle.start or s.session.arrival >= end:
            continue
        sessions += 1
        owed = s.energy_owed_kwh
        requested += owed
        if s.session.departure <= end:
            shortfall += max(0.0, owed - float(delivered.get(s.session.id, 0.0)))
    return {
        "cost_cny": round(cost, 2),
        "energy_import_mwh": round(float(np.clip(imp, 0, None).sum() * h), 4),
        "peak_import_mw": round(float(imp.max()), 4),
        "co2_t": round(float(np.sum(np.clip(imp, 0, None) * carbon) * h), 4),
        "pv_curtailed_mwh": round(curtailed, 4),
        "ev_sessions": sessions,
        "ev_energy_requested_mwh": round(requested / 1000.0, 4),
        "ev_energy_shortfall_mwh": round(shortfall / 1000.0, 6),
        "losses_mwh": round(float(np.nansum(ac.losses_mw) * h), 4),
        "v_min_pu": round(ac.v_min_pu, 5),
        "v_max_pu": round(ac.v_max_pu, 5),
        "max_line_loading_pct": round(ac.max_line_loading_pct, 3),
        "max_trafo_loading_pct": round(ac.max_trafo_loading_pct, 3),
        "ac_validated": ac.passed,
        "ac_violations": len(ac.violations),
        "solve_s": round(solve_s, 4),
    }


def run_dayahead(
    model: GridModel,
    date: dt.date,
    *,
    seed: int = 0,
    weather: str = "clear",
    config: DispatchConfig | None = None,
    bundle: ForecastBundle | None = None,
    bess_soc_frac: Mapping[str, float] | None = None,
) -> DayAheadResult:
    """Forecast ``date`` (96 × 15 min), plan it, validate it and compute the unmanaged baseline.

    ``bess_soc_frac``: each battery's SoC at the day's start as measured (NaN when unknown, see
    ``bess_soc``); by default each battery's configured initial SoC."""
    t0 = time.perf_counter()
    if bundle is None:
        bundle = build(model, date, "24h", "15min", seed=seed, weather=weather)
    dispatcher = Dispatcher(model, steps=len(bundle.index), step_h=bundle.step_h, config=config)
    states = sessions_at_start(bundle)
    snapshot = GridSnapshot.initial(model, bundle.start, states)
    if bess_soc_frac is not None:
        snapshot = replace(snapshot, bess_soc_frac=dict(bess_soc_frac))
    plan = dispatcher.plan(bundle, snapshot)  # starts from the uncontrolled baseline
    if plan.solution is None or not plan.solution.ok:
        plan = _fall_back(dispatcher, bundle, snapshot, plan)
    baseline, baseline_ac = plan.baseline, plan.baseline_ac
    kpis = schedule_kpis(bundle, plan.schedule, plan.ac, states, solve_s=plan.record.solve_s)
    kpis["plan"] = plan_kind(plan.record)
    kpis["solver_status"] = plan.record.status
    base_kpis = schedule_kpis(bundle, baseline, baseline_ac, states)
    base_kpis.pop("solve_s")
    return DayAheadResult(
        date=date,
        bundle=bundle,
        plan=plan,
        baseline=baseline,
        baseline_ac=baseline_ac,
        kpis=kpis,
        baseline_kpis=base_kpis,
        wall_s=time.perf_counter() - t0,
    )


def plan_kind(record: DecisionRecord) -> str:
    """What a schedule is, in one phrase: "optimal" or "fallback: <which>"."""
    return "optimal" if record.fallback is None else f"fallback: {record.fallback}"


def plan_verdict(kpis: Mapping[str, Any]) -> str:
    """The first line of a day-ahead's outputs: what the schedule written is."""
    kind = str(kpis.get("plan", "optimal"))
    checked = "AC validated" if kpis.get("ac_validated") else (
        f"NOT VALIDATED: {kpis.get('ac_violations', '?')} AC violation(s)")
    if kind == "optimal":
        return f"optimal, {checked}"
    return (f"FALLBACK {kind.removeprefix('fallback: ')} (the optimiser: "
            f"{kpis.get('solver_status', '?')}), {checked}")


def _fall_back(
    dispatcher: Dispatcher, bundle: ForecastBundle, snapshot: GridSnapshot, failed: PlanResult
) -> PlanResult:
    """The optimiser failed or was cut short: the day gets the rule-based safe dispatch (as the
    MPC's last fallback), checked in AC itself; the record says so and why. Before, the
    uncontrolled baseline the solve had started from was kept as if it were the plan."""
    schedule = dispatcher.safe_dispatch(bundle, snapshot)
    ac = dispatcher.evaluate(bundle, schedule)
    why = (f"the optimiser gave no plan ({failed.record.status}): fallback "
           "rule_based_safe_dispatch (PV uncurtailed, batteries idle, EVs just in time within "
           "half their site's limit), checked in AC")
    record = replace(failed.record, fallback="rule_based_safe_dispatch", ac_check=ac.summary(),
                     notes=(*failed.record.notes, why))
    return replace(failed, schedule=schedule, ac=ac, record=record)


def session_table(
    bundle: ForecastBundle, states: tuple[SessionState, ...], schedule: DispatchSchedule
) -> pd.DataFrame:
    """One row per session: requested, delivered and owed energy (kWh)."""
    delivered = schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
    rows = []
    for s in states:
        got = float(delivered.get(s.session.id, 0.0))
        rows.append(
            {
                "session_id": s.session.id,
                "charger": s.session.charger,
                "connector": s.session.connector,
                "arrival": s.session.arrival.isoformat(),
                "departure": s.session.departure.isoformat(),
                "energy_owed_kwh": round(s.energy_owed_kwh, 3),
                "energy_delivered_kwh": round(got, 3),
                "shortfall_kwh": round(max(0.0, s.energy_owed_kwh - got), 3)
                if s.session.departure <= bundle.end
                else 0.0,
            }
        )
    return pd.DataFrame(rows)
