"""Day-ahead dispatch: forecast a day, plan it, check it in AC, and compare with no control.

The horizon is one or more local days of the model's site (``days``, at most :data:`MAX_DAYS`),
planned as one problem: 96 quarter-hours a day (an hour fewer or more where the clocks change),
the batteries' terminal target at the end of the last day. EV figures keep apart what a session
could not get even alone (``unservable``: it asked for more than its stay allows at its power)
from what the plan or the grid left it short of.
"""

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
from controllers.ev_charging import SessionState, servable_owed_kwh
from controllers.schedule import AcCheck, DecisionRecord, DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle, build
from forecasts.timegrid import local_days
from network_models.model import GridModel

MAX_DAYS = 7  # a week: what one day-ahead problem is built and solved for in minutes
BINDING_LOADING_FRAC = 0.99  # a loading at 99 % of the limit the plan holds it to has bound
BINDING_VOLTAGE_PU = 0.002  # a voltage this close to its planned bound has bound


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
    delivered: assumption, in proportion to the part of their stay already past (of what they
    can get: an unservable session charged at its maximum until then)."""
    start = bundle.start
    out = []
    for s in bundle.ev_sessions:
        delivered = 0.0
        if s.arrival < start < s.departure:
            past = (start - s.arrival) / (s.departure - s.arrival)
            delivered = s.servable_kwh * float(past)
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
    ev = ev_session_figures(bundle, states, schedule)
    inside = [r for r in ev if r["departs_inside"]]
    return {
        "cost_cny": round(cost, 2),
        "energy_import_mwh": round(float(np.clip(imp, 0, None).sum() * h), 4),
        "peak_import_mw": round(float(imp.max()), 4),
        "co2_t": round(float(np.sum(np.clip(imp, 0, None) * carbon) * h), 4),
        "pv_curtailed_mwh": round(curtailed, 4),
        "ev_sessions": len(ev),
        "ev_energy_requested_mwh": round(sum(r["energy_owed_kwh"] for r in ev) / 1000.0, 4),
        # owed at departure inside the horizon: unservable on its own + short by grid or plan
        "ev_energy_shortfall_mwh": round(sum(r["shortfall_kwh"] for r in inside) / 1000.0, 6),
        "ev_sessions_unservable": sum(r["unservable_kwh"] > 0 for r in ev),
        "ev_energy_unservable_mwh": round(sum(r["unservable_kwh"] for r in inside) / 1000.0, 6),
        "ev_energy_short_by_grid_or_plan_mwh": round(
            sum(r["short_by_grid_or_plan_kwh"] for r in inside) / 1000.0, 6),
        "losses_mwh": round(float(np.nansum(ac.losses_mw) * h), 4),
        **ac.extremes(),
        "ac_validated": ac.passed,
        "ac_violations": len(ac.violations),
        "solve_s": round(solve_s, 4),
    }


def run_dayahead(
    model: GridModel,
    date: dt.date,
    *,
    seed: int = 0,
    weather: str | None = None,
    config: DispatchConfig | None = None,
    bundle: ForecastBundle | None = None,
    bess_soc_frac: Mapping[str, float] | None = None,
    days: int = 1,
) -> DayAheadResult:
    """Forecast ``days`` local days from ``date`` (96 × 15 min each), plan them as one problem,
    validate the plan and compute the unmanaged baseline.

    ``bess_soc_frac``: each battery's SoC at the day's start as measured (NaN when unknown, see
    ``bess_soc``); by default each battery's configured initial SoC. ``weather`` None: the grid's
    own PV profiles where it has them, else the clear scenario (see ``forecasts.build``)."""
    t0 = time.perf_counter()
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: expected a whole number from 1 to {MAX_DAYS}, got {days!r}")
    if bundle is None:
        start, horizon = local_days(date, days, model.site.timezone)
        bundle = build(model, start, horizon, "15min", seed=seed, weather=weather)
    config = _peak_weight_for_horizon(config or DispatchConfig(), bundle)
    # one plan of one window: screened by what its devices can reach from its forecast
    dispatcher = Dispatcher(model, steps=len(bundle.index), step_h=bundle.step_h, config=config,
                            screen_each_window=True)
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
    schedule = dispatcher.safe_schedule(bundle, snapshot)
    ac = dispatcher.evaluate(bundle, schedule)
    why = (f"the optimiser gave no plan ({failed.record.status}): fallback "
           "rule_based_safe_dispatch (PV uncurtailed, batteries idle, EVs just in time within "
           "half their site's limit), checked in AC")
    record = replace(failed.record, fallback="rule_based_safe_dispatch", ac_check=ac.summary(),
                     notes=(*failed.record.notes, why))
    return replace(failed, schedule=schedule, ac=ac, record=record)


def _peak_weight_for_horizon(config: DispatchConfig, bundle: ForecastBundle) -> DispatchConfig:
    """The peak weight is a day's share of the monthly demand charge: a horizon of several days
    carries that many shares (one weight for a week let the plan trade a 5 MW higher peak for
    a little arbitrage)."""
    days = len(bundle.index) * bundle.step_h / 24.0
    if days <= 1.0 + 1e-9:
        return config
    w = config.weights
    return replace(config, weights=replace(w, peak_cny_per_mw=w.peak_cny_per_mw * days))


def ev_session_figures(
    bundle: ForecastBundle, states: tuple[SessionState, ...], schedule: DispatchSchedule
) -> list[dict[str, Any]]:
    """Per session plugged in during the horizon: owed at its start, delivered, and what it is
    short of at departure, split into unservable on its own and short by the grid or the plan
    (kWh; a session leaving after the horizon is short of nothing yet)."""
    delivered = schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
    rows = []
    for st in states:
        s = st.session
        if s.departure <= bundle.start or s.arrival >= bundle.end:
            continue
        got = float(delivered.get(s.id, 0.0))
        owed = st.energy_owed_kwh
        servable = float(servable_owed_kwh(None, [st], bundle.index, bundle.step_h)[0])
        inside = s.departure <= bundle.end
        rows.append({
            "session": st,
            "departs_inside": inside,
            "energy_owed_kwh": owed,
            "energy_servable_kwh": servable,
            "energy_delivered_kwh": got,
            "shortfall_kwh": max(0.0, owed - got) if inside else 0.0,
            "unservable_kwh": s.unservable_kwh,
            "short_by_grid_or_plan_kwh": max(0.0, servable - got) if inside else 0.0,
        })
    return rows


def session_table(
    bundle: ForecastBundle, states: tuple[SessionState, ...], schedule: DispatchSchedule
) -> pd.DataFrame:
    """One row per session: requested, owed, servable, delivered and short energy (kWh), the
    shortfall split into unservable on its own and short by the grid or the plan, and why."""
    rows = []
    for r in ev_session_figures(bundle, states, schedule):
        s = r["session"].session
        rows.append(
            {
                "session_id": s.id,
                "charger": s.site,
                "connector": s.connector,
                "arrival": s.arrival.isoformat(),
                "departure": s.departure.isoformat(),
                "max_kw": s.max_kw,
                "energy_requested_kwh": round(s.energy_kwh, 3),
                "energy_owed_kwh": round(r["energy_owed_kwh"], 3),
                "energy_servable_kwh": round(r["energy_servable_kwh"], 3),
                "energy_delivered_kwh": round(r["energy_delivered_kwh"], 3),
                "shortfall_kwh": round(r["shortfall_kwh"], 3),
                "unservable_kwh": round(r["unservable_kwh"], 3),
                "short_by_grid_or_plan_kwh": round(r["short_by_grid_or_plan_kwh"], 3),
                "unservable_why": s.unservable_reason() or "",
            }
        )
    return pd.DataFrame(rows)


def unservable_sessions(
    bundle: ForecastBundle, states: tuple[SessionState, ...], schedule: DispatchSchedule
) -> list[dict[str, Any]]:
    """The sessions that cannot be served in full even alone, for the decision record: what
    each asked for, the most it can get, what it was planned, what it is short and why."""
    out = []
    for r in ev_session_figures(bundle, states, schedule):
        s = r["session"].session
        if r["unservable_kwh"] <= 0:
            continue
        out.append({
            "session_id": s.id,
            "charger": s.site,
            "connector": s.connector,
            "energy_requested_kwh": round(s.energy_kwh, 3),
            "energy_max_kwh": round(s.max_deliverable_kwh, 3),
            "energy_planned_kwh": round(r["energy_delivered_kwh"], 3),
            "unservable_kwh": round(r["unservable_kwh"], 3),
            "short_by_grid_or_plan_kwh": round(r["short_by_grid_or_plan_kwh"], 3),
            "why": s.unservable_reason(),
        })
    return out


def limits_reached(
    model: GridModel, result: DayAheadResult, config: DispatchConfig | None = None
) -> list[dict[str, Any]]:
    """The limits the planned AC flow reaches (the optimiser's binding rows, with their shadow
    prices, are the decision record's ``binding_constraints``): every line and transformer
    loaded to at least :data:`BINDING_LOADING_FRAC` of the limit the plan holds it to (the AC
    limit less the loading margin), every bus within :data:`BINDING_VOLTAGE_PU` of its planned
    voltage bound (the band less the voltage margin); each with its kind, limits, worst value
    and the steps and local times (step starts) where it bound, worst first (by closeness to
    its limit)."""
    config = config or DispatchConfig()
    res, index = result.plan.ac.result, result.bundle.index
    net = model.net
    loading_pct = 100.0 * (config.max_loading_frac - config.loading_margin_frac)
    v_low = config.v_min_pu + config.voltage_margin_pu
    v_high = config.v_max_pu - config.voltage_margin_pu
    tables = [
        ("line", net.line.name.reindex(res.line_index), res.line_loading_pct, "loading_pct",
         100.0 * config.max_loading_frac, loading_pct, BINDING_LOADING_FRAC * loading_pct, 1),
        ("trafo", net.trafo.name.reindex(res.trafo_index), res.trafo_loading_pct,
         "loading_pct", 100.0 * config.max_loading_frac, loading_pct,
         BINDING_LOADING_FRAC * loading_pct, 1),
        ("bus_voltage_high", net.bus.name.reindex(res.bus_index), res.vm_pu, "v_pu",
         config.v_max_pu, v_high, v_high - BINDING_VOLTAGE_PU, 1),
        ("bus_voltage_low", net.bus.name.reindex(res.bus_index), res.vm_pu, "v_pu",
         config.v_min_pu, v_low, v_low + BINDING_VOLTAGE_PU, -1),
    ]
    out = []
    for kind, names, values, unit, limit, planned, threshold, sign in tables:
        values = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            hit = sign * values >= sign * threshold
        for col in np.flatnonzero(hit.any(axis=0)):
            steps = np.flatnonzero(hit[:, col])
            column = values[steps, col]
            worst = float(column.max() if sign > 0 else column.min())
            out.append({
                "element": str(names.iloc[col]),
                "kind": kind,
                "unit": unit,
                "limit": round(limit, 4),
                "planned_limit": round(planned, 4),
                "worst_value": round(worst, 4),
                "worst_frac_of_planned_limit": round(worst / planned, 4),
                "worst_time": index[steps[int(np.argmax(sign * column))]].isoformat(),
                "steps": [int(k) for k in steps],
                "times": [index[k].isoformat() for k in steps],
            })
    # closest to (or beyond) its planned limit first, voltages and loadings alike
    out.sort(key=lambda b: -(b["worst_value"] / b["planned_limit"]) ** (
        -1 if b["kind"] == "bus_voltage_low" else 1))
    return out


def violated_elements(result: DayAheadResult) -> list[dict[str, Any]]:
    """The baseline's (no control) AC violations by element: kind, worst value, limit, how many
    steps and the first and worst local times, worst first."""
    index = result.bundle.index
    by_element: dict[tuple[str, str], list[Any]] = {}
    for v in result.baseline_ac.violations:
        by_element.setdefault((v.kind, v.element), []).append(v)
    out = []
    for (kind, element), found in by_element.items():
        low = kind == "voltage_low"
        worst = min(found, key=lambda v: v.value) if low else max(found, key=lambda v: v.value)
        out.append({
            "element": element, "kind": kind, "limit": worst.limit,
            "worst_value": round(float(worst.value), 4), "steps": len(found),
            "first_time": index[found[0].step].isoformat(),
            "worst_time": index[worst.step].isoformat(),
        })
    def excess(r: dict[str, Any]) -> float:  # a step that did not converge first
        if not np.isfinite(r["worst_value"] / r["limit"]):
            return float("inf")
        return (r["worst_value"] / r["limit"]) ** (-1 if r["kind"] == "voltage_low" else 1)

    out.sort(key=lambda r: -excess(r))
    return out
