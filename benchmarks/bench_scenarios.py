"""Day-ahead and MPC steps on the growth scenarios, beside the base Jiuke model.

    python benchmarks/bench_scenarios.py [--scenarios jiuke_2025,jiuke_2030] [--date 2026-07-15]
                                         [--at 18:00] [--mpc-steps 4] [--horizon 16] [--seed 0]

For the base model and each scenario: the model's size (connectors, PV, sessions of the day),
the time to load it, the day-ahead (forecast, plan, AC check of plan and baseline; synthetic
forecasts) with its wall time, solve time and re-linearisations, what no control breaks and what
the plan binds; then MPC steps from ``--at`` (the evening peak, where jiuke_2030's limits bind):
the first one (controller built: linearisation, screen, problem compiled) and the re-solves
after it (median), each AC-checked. The anchor: the base day-ahead, 1.7 s in
PERFORMANCE_NOTES.md; the MPC's re-solve on base Jiuke, bench_mpc.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import warnings

warnings.filterwarnings("ignore")


def _present(bundle, plan, now, step_h):
    """Sessions plugged in during the step from ``now``, with what the day-ahead plan gave
    them before it (plus what they had at the day's start)."""
    from controllers.dayahead import sessions_at_start
    from controllers.ev_charging import SessionState

    k = bundle.index.get_loc(now)
    given = plan.schedule.ev_session_p_kw.iloc[:k].sum(axis=0) * step_h
    start = {s.session.id: s.energy_delivered_kwh for s in sessions_at_start(bundle)}
    end = now + dt.timedelta(hours=step_h)
    return tuple(
        SessionState(session=s, energy_delivered_kwh=min(
            s.energy_kwh, start.get(s.id, 0.0) + float(given.get(s.id, 0.0))))
        for s in bundle.ev_sessions if s.arrival < end and s.departure > now
    )


def bench(name: str | None, args) -> None:
    from controllers.dayahead import limits_reached, run_dayahead
    from controllers.mpc import RecedingHorizonController
    from controllers.snapshot import GridSnapshot
    from network_models import load_model
    from network_models.growth_scenario_file import device_totals

    t0 = time.perf_counter()
    model = load_model("jiuke_oasis", growth_scenario=name)
    load_s = time.perf_counter() - t0
    totals = device_totals(model)
    day = dt.date.fromisoformat(args.date)
    result = run_dayahead(model, day, seed=args.seed)
    k, b = result.kpis, result.baseline_kpis
    binding = limits_reached(model, result)
    connectors = sum(v for key, v in totals.items() if key.startswith("connectors_"))
    print(f"\n== {name or 'jiuke_oasis (base)'}: {connectors:.0f} connectors, "
          f"{totals['pv_kwp'] / 1000:.2f} MWp PV, {totals['bess_mwh']:.0f} MWh BESS, "
          f"{k['ev_sessions']} sessions; model loaded in {load_s:.2f} s")
    print(f"day-ahead: {result.wall_s:.2f} s wall (solve {k['solve_s']:.2f} s, "
          f"{result.plan.record.relinearisations} re-linearisations), {k['plan']}, "
          f"AC violations {k['ac_violations']}; max trafo {k['max_trafo_loading_pct']:.1f} %, "
          f"line {k['max_line_loading_pct']:.1f} %, v {k['v_min_pu']:.3f}-{k['v_max_pu']:.3f}")
    print(f"  no control: AC violations {b['ac_violations']}, max trafo "
          f"{b['max_trafo_loading_pct']:.1f} %, line {b['max_line_loading_pct']:.1f} %; "
          f"cost {b['cost_cny']:.0f} -> plan {k['cost_cny']:.0f} CNY, peak "
          f"{b['peak_import_mw']:.2f} -> {k['peak_import_mw']:.2f} MW")
    print("  binding: " + (", ".join(
        f"{c['element']} {c['worst_value']:.1f}/{c['planned_limit']:.0f} "
        f"at {c['worst_time'][11:16]}"
        for c in binding[:6]) or "none"))
    print(f"  EV short by grid or plan {k['ev_energy_short_by_grid_or_plan_mwh'] * 1000:.1f} kWh,"
          f" unservable {k['ev_energy_unservable_mwh'] * 1000:.1f} kWh")

    # MPC steps from the evening peak, the day-ahead plan as the day's SoC targets
    bundle, step_h = result.bundle, result.bundle.step_h
    hh, mm = (int(x) for x in args.at.split(":"))
    first = bundle.index[(hh * 60 + mm) // 15]
    t1 = time.perf_counter()
    mpc = RecedingHorizonController(model, horizon_steps=args.horizon,
                                    day_plan=result.plan.schedule)
    build_s = time.perf_counter() - t1
    walls, solves, passed = [], [], []
    soc = dict(zip(result.plan.schedule.bess_soc_frac.columns,
                   result.plan.schedule.bess_soc_frac.loc[first], strict=True))
    for i in range(args.mpc_steps):
        now = first + dt.timedelta(hours=i * step_h)
        snap = GridSnapshot(time=now, bess_soc_frac=soc,
                            ev_sessions=_present(bundle, result.plan, now, step_h))
        forecast = bundle.window(now, now + dt.timedelta(hours=args.horizon * step_h))
        t2 = time.perf_counter()
        dec = mpc.step(snap, forecast)
        walls.append(time.perf_counter() - t2)
        solves.append(dec.record.solve_s)
        passed.append(bool(dec.record.ac_check.get("passed")) and dec.record.fallback is None)
        if not passed[-1] and args.verbose:
            print(f"  step {now:%H:%M}: fallback {dec.record.fallback}, status "
                  f"{dec.record.status}, AC {dec.record.ac_check.get('violation_count')} "
                  f"violation(s), notes {list(dec.record.notes)}")
    later = walls[1:] or walls
    print(f"MPC ({args.horizon} x 15 min from {args.at}): controller built in {build_s:.2f} s, "
          f"first step {walls[0]:.2f} s, then median {statistics.median(later):.2f} s "
          f"(solver {statistics.median(solves[1:] or solves):.2f} s); {sum(passed)}/"
          f"{len(passed)} steps optimal and AC validated")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", default="jiuke_2025,jiuke_2030")
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--at", default="18:00")
    ap.add_argument("--mpc-steps", type=int, default=4)
    ap.add_argument("--horizon", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="say why a step was not optimal")
    args = ap.parse_args()
    print(f"date {args.date}, seed {args.seed}; anchor: base day-ahead 1.7 s "
          "(PERFORMANCE_NOTES.md)")
    for name in [None, *[s for s in args.scenarios.split(",") if s]]:
        bench(name, args)


if __name__ == "__main__":
    main()
