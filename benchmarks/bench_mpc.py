"""Closed-loop MPC on the Jiuke model: a day replayed against the truth, AC physics every step.

    python benchmarks/bench_mpc.py [--model jiuke_oasis] [--date 2026-07-15] [--steps 96]
                                   [--horizon 32] [--seed 1]

The MPC decides every 15 min from forecasts issued at that moment (forecasts package error
model), the truth plays out: PV at most what the sun gives, loads as they are, EV sessions as
they arrive. Printed: cost and KPIs of closed-loop MPC, of the perfect-foresight optimum (the
day planned on the truth) and of uncontrolled operation; the per-step timing distribution:
parameter update + re-solve (and the solver's own share), the whole decision, and the same step
built afresh (a new problem compiled and solved) measured beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="jiuke_oasis")
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--steps", type=int, default=96)
    ap.add_argument("--horizon", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="list sessions left owed")
    args = ap.parse_args()

    from controllers.dayahead import run_dayahead, sessions_at_start
    from controllers.dispatch_problem import DispatchProblem
    from controllers.ev_charging import SessionState
    from controllers.mpc import RecedingHorizonController
    from controllers.snapshot import GridSnapshot
    from forecasts.truth_and_forecasts import TruthAndForecasts
    from network_models import load_model
    from network_models.powerflow import run_time_series

    day = dt.date.fromisoformat(args.date)
    model = load_model(args.model)
    scenario = TruthAndForecasts.build(model, day, "48h", seed=args.seed)
    truth = scenario.truth
    reg = model.registry
    h = truth.step_h

    # perfect foresight: the day planned on the truth itself
    t0 = time.perf_counter()
    perfect = run_dayahead(
        model, day, bundle=truth.window(truth.start, truth.start + dt.timedelta(hours=24))
    )
    pf_s = time.perf_counter() - t0
    # the day-ahead plan on the forecast issued at midnight gives the MPC its SoC targets
    day_plan = run_dayahead(model, day, bundle=scenario.forecast_at(truth.start, "24h"))

    mpc = RecedingHorizonController(
        model, horizon_steps=args.horizon, day_plan=day_plan.plan.schedule
    )
    soc = {b.id: b.soc_init_frac for b in reg.bess}
    states0 = {s.session.id: s for s in sessions_at_start(day_plan.bundle)}
    delivered = {sid: st.energy_delivered_kwh for sid, st in states0.items()}
    sessions = {s.id: s for s in truth.ev_sessions}
    imports, update_solve, solver_only, totals, fallbacks = [], [], [], [], 0
    applied_pv, applied_bess, applied_ev = [], [], []
    dispatcher = mpc.dispatcher
    for k in range(args.steps):
        now = truth.index[k]
        # the controller sees every vehicle that plugs in during the step it decides
        step_end = now + dt.timedelta(hours=h)
        present = tuple(
            SessionState(session=s, energy_delivered_kwh=delivered.get(s.id, 0.0))
            for s in truth.ev_sessions
            if s.arrival < step_end and s.departure > now
        )
        snap = GridSnapshot(time=now, bess_soc_frac=soc, ev_sessions=present)
        forecast = scenario.forecast_at(now, f"{args.horizon * h + 1}h")
        dec = mpc.step(snap, forecast)
        prob = mpc.dispatcher.problem
        update_solve.append(prob.last_set_inputs_s + prob.last_solve_wall_s)
        solver_only.append(prob.last_solver_s)
        totals.append(dec.record.total_s)
        fallbacks += dec.record.fallback is not None
        # the truth plays the step out
        avail = truth.pv_p_mw.loc[now]
        pv = {p.id: min(dec.setpoints[p.id]["p_limit_mw"], float(avail[p.id])) for p in reg.pv}
        bess = {}
        for b in reg.bess:
            p = dec.setpoints[b.id]["p_set_mw"]
            e = soc[b.id] * b.e_mwh
            if p >= 0:
                p = min(p, max(0.0, (e - b.soc_min_frac * b.e_mwh)) * b.eta_discharge / h)
                e -= p / b.eta_discharge * h
            else:
                p = -min(-p, max(0.0, (b.soc_max_frac * b.e_mwh - e)) / b.eta_charge / h)
                e -= p * b.eta_charge * h
            bess[b.id] = p
            soc[b.id] = e / b.e_mwh
        ev_site = {s.id: 0.0 for s in reg.ev_sites}
        for st in present:
            s = st.session
            plugged_h = (min(step_end, s.departure) - max(now, s.arrival)).total_seconds() / 3600
            kw = min(dec.session_p_kw.get(s.id, 0.0), s.max_kw)
            kwh = min(kw * plugged_h, max(0.0, s.energy_kwh - delivered.get(s.id, 0.0)))
            delivered[s.id] = delivered.get(s.id, 0.0) + kwh
            ev_site[s.site] += kwh / h / 1000.0  # step average for the network
        applied_pv.append(pv)
        applied_bess.append(bess)
        applied_ev.append(ev_site)
    # AC physics of the applied day against the truth
    loads = truth.load_p_mw.iloc[: args.steps]
    from network_models.powerflow import device_injections

    n = args.steps
    load_ids = [d.id for d in reg.loads]
    res = run_time_series(dispatcher.net, device_injections(
        dispatcher.net, reg, steps=n,
        load_p_mw=loads[load_ids], load_q_mvar=truth.load_q_mvar[load_ids].iloc[:n],
        ev_site_p_mw=pd.DataFrame(applied_ev), pv_p_mw=pd.DataFrame(applied_pv),
        bess_p_mw=pd.DataFrame(applied_bess)))
    imports = res.ext_grid_p_mw.sum(axis=1)
    price = truth.price_cny_per_kwh.to_numpy()[:n]
    mpc_cost = float(np.sum(price * imports * h * 1000.0))
    owed_at_departure = sum(
        max(0.0, s.energy_kwh - delivered.get(s.id, 0.0))
        for s in sessions.values()
        if truth.start < s.departure <= truth.index[n - 1] + dt.timedelta(hours=h)
        and s.arrival < truth.index[n - 1]
    )
    pf, base = perfect.kpis, perfect.baseline_kpis
    if args.verbose:
        for s in sessions.values():
            owed = s.energy_kwh - delivered.get(s.id, 0.0)
            if (
                owed > 0.5
                and truth.start < s.departure <= truth.index[n - 1] + dt.timedelta(hours=h)
                and s.arrival < truth.index[n - 1]
            ):
                print("owed", s.id, s.site, s.arrival, s.departure, s.energy_kwh, round(owed, 2))

    # the same step built afresh, beside it
    fresh = []
    for _ in range(3):
        t1 = time.perf_counter()
        p2 = DispatchProblem(
            model,
            dispatcher.lin,
            steps=args.horizon,
            step_h=h,
            config=mpc.config,
            limits=dispatcher.limits,
        )
        p2.set_inputs(mpc.dispatcher.problem.last_inputs)
        p2.solve()
        fresh.append(time.perf_counter() - t1)

    def dist(xs: list[float]) -> str:
        xs = sorted(xs)
        return (
            f"median {statistics.median(xs) * 1000:.0f} ms, p90 "
            f"{xs[int(0.9 * (len(xs) - 1))] * 1000:.0f} ms, max {xs[-1] * 1000:.0f} ms"
        )

    outside = [u - s for u, s in zip(update_solve, solver_only, strict=True)]
    print(
        f"model {args.model}, {day}, {n} MPC steps, horizon {args.horizon} x 15 min, "
        f"{len(truth.ev_sessions)} sessions in the truth"
    )
    print(
        f"closed-loop MPC cost   {mpc_cost:12.0f} CNY, peak {imports.max():.2f} MW, "
        f"v {np.nanmin(res.vm_pu):.4f}-{np.nanmax(res.vm_pu):.4f} pu, max line "
        f"{np.nanmax(res.line_loading_pct):.1f} %, trafo {np.nanmax(res.trafo_loading_pct):.1f} %,"
        f" EV owed at departure {owed_at_departure:.1f} kWh, fallbacks {fallbacks}"
    )
    print(
        f"perfect foresight      {pf['cost_cny']:12.0f} CNY, peak {pf['peak_import_mw']:.2f} MW"
        f" (planned in {pf_s:.1f} s)"
    )
    print(
        f"uncontrolled           {base['cost_cny']:12.0f} CNY, peak {base['peak_import_mw']:.2f} MW"
    )
    print(
        f"MPC vs perfect foresight: {100 * (mpc_cost / pf['cost_cny'] - 1):+.2f} %; "
        f"vs uncontrolled: {100 * (mpc_cost / base['cost_cny'] - 1):+.2f} %"
    )
    print(f"parameter update + re-solve: {dist(update_solve)}")
    print(f"  solver alone:              {dist(solver_only)}")
    print(f"  outside the solver:        {dist(outside)}")
    print(f"whole MPC decision (incl. AC checks, session split): {dist(totals)}")
    print(f"same step built afresh (new problem, compile, solve): {dist(fresh)}")


if __name__ == "__main__":
    main()
