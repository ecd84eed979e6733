"""The simulator's AC physics against the planner's AC check, for one and the same operating point.

    .venv/bin/python benchmarks/compare_sim_planner.py [--all-buses]

The simulator (hil_sim) runs one tick at noon with the campus PV and the campus BESS given
reactive setpoints (and the other devices left as they are). Its device outputs, loads and EV
site powers of that tick are turned into a one-step forecast bundle and dispatch schedule, and
the planner's AC check (``Dispatcher.evaluate``, the same code path that checks every schedule)
is run on them. Both then solve the same loads and the same device outputs, so their bus
voltages must agree to solver precision.

Printed, per case:
- the element rows where the two power-flow inputs (``TimeSeriesInjections``) differ;
- per bus, the planner's and the simulator's |V| and the difference, and beside them the
  planner's |V| with the BESS reactive sign its ``injections`` used to have (``st_q = +q``, the
  cause of the finding) and the simulator's difference from that (buses where either
  difference exceeds 1e-6 pu, and the campus buses; ``--all-buses`` prints all of them).

Cases: reactive power from PV_CAMPUS only, from BESS_CAMPUS only, and both at once (one
injecting, the other absorbing, both ways round). A last section checks the pandapower sign
convention of ``storage.q_mvar`` with pandapower's own ``runpp``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import fields, replace

import numpy as np
import pandapower as pp
import pandas as pd

from controllers.dispatch import Dispatcher
from controllers.schedule import DispatchSchedule
from forecasts.bundle import ForecastBundle
from hil_sim.config import SimConfig
from hil_sim.simulator import Simulator
from network_models import load_model
from network_models.powerflow import TimeSeriesInjections

START = "2026-07-15 12:00"  # noon: campus PV producing, loads up
CAMPUS_BUSES = ("CAMPUS_10kV", "CAMPUS_LV", "RMU_L5_6")

# (label, PV_CAMPUS q_set_mvar, BESS_CAMPUS q_set_mvar, BESS_CAMPUS p_set_mw)
CASES = (
    ("PV_CAMPUS q only (absorbs 0.3 Mvar)", -0.3, 0.0, 0.5),
    ("BESS_CAMPUS q only (injects 0.6 Mvar)", 0.0, 0.6, 0.5),
    ("PV injects 0.3, BESS absorbs 0.6 Mvar", 0.3, -0.6, -0.5),
    ("PV absorbs 0.3, BESS injects 0.6 Mvar", -0.3, 0.6, 0.5),
)


def simulate(model, pv_q: float, bess_q: float, bess_p: float):
    """One tick of the simulator with the campus setpoints: (sim, its injections, its result)."""
    sim = Simulator(model, start=START, config=SimConfig(heartbeat_timeout_s=7200.0))
    captured: dict[str, object] = {}
    solve = sim.grid.solve

    def spy(injections: TimeSeriesInjections):
        result = solve(injections)
        captured["injections"], captured["result"] = injections, result
        return result

    sim.grid.solve = spy  # type: ignore[method-assign]  # this instance only
    for dev in (*model.registry.pv, *model.registry.bess, *model.registry.ev_sites):
        # a heartbeat for every controllable device so that none falls back to its default
        if dev.id == "PV_CAMPUS":
            sim.write((dev.id, "q_set_mvar"), pv_q)
        elif dev.id == "BESS_CAMPUS":
            sim.write((dev.id, "p_set_mw"), bess_p)
            sim.write((dev.id, "q_set_mvar"), bess_q)
        elif dev.id in sim.pv:
            sim.write((dev.id, "q_set_mvar"), 0.0)
        elif dev.id in sim.bess:
            sim.write((dev.id, "p_set_mw"), 0.0)
        else:
            sim.write((dev.id, "p_site_limit_kw"), float(dev.p_site_max_kw))
    sim.step(5)  # setpoints apply at the next prepare; ramps settle
    assert sim.status.converged
    return sim, captured["injections"], captured["result"]


def planner_inputs(sim: Simulator):
    """The simulator's present tick as a one-step forecast bundle and dispatch schedule."""
    model = sim.model
    reg = model.registry
    idx = pd.DatetimeIndex([sim.time])
    one = lambda values, cols: pd.DataFrame([list(values)], index=idx, columns=cols)  # noqa: E731
    load_ids = [d.id for d in reg.loads]
    pv_ids = [d.id for d in reg.pv]
    bess_ids = [d.id for d in reg.bess]
    site_ids = [d.id for d in reg.ev_sites]
    series = lambda v: pd.Series([v], index=idx)  # noqa: E731
    bundle = ForecastBundle(
        index=idx,
        step_h=0.25,
        pv_p_mw=one([sim.pv[i].p_avail_mw for i in pv_ids], pv_ids),
        load_p_mw=one(sim._load_p, load_ids),
        load_q_mvar=one(sim._load_q, load_ids),
        price_cny_per_kwh=series(0.6),
        export_price_cny_per_kwh=None,
        demand_charge_cny_per_kw_month=None,
        carbon_kg_per_kwh=series(0.58),
        temperature_c=series(30.0),
        ev_sessions=(),
        issued_at=None,
    )
    ev_mw = [sim._ev_mean_kw(sim.ev[i]).sum() / 1000.0 for i in site_ids]
    schedule = DispatchSchedule(
        index=idx,
        step_h=0.25,
        pv_p_mw=one([sim.pv[i].p_mw for i in pv_ids], pv_ids),
        pv_q_mvar=one([sim.pv[i].q_mvar for i in pv_ids], pv_ids),
        bess_p_mw=one([sim.bess[i].p_mw for i in bess_ids], bess_ids),
        bess_q_mvar=one([sim.bess[i].q_mvar for i in bess_ids], bess_ids),
        bess_soc_frac=one([sim.bess[i].soc_frac for i in bess_ids], bess_ids),
        ev_site_p_mw=one(ev_mw, site_ids),
        ev_session_p_kw=pd.DataFrame(index=idx),
    )
    return bundle, schedule


def injection_differences(net, planner: TimeSeriesInjections, sim: TimeSeriesInjections):
    """(field, element name, planner value, simulator value) where the inputs differ."""
    out = []
    for f in fields(TimeSeriesInjections):
        a, b = getattr(planner, f.name), getattr(sim, f.name)
        if a is None or b is None:
            continue
        table = net[f.name.split("_", 1)[0]]
        for k in np.flatnonzero(np.abs(np.asarray(a)[0] - np.asarray(b)[0]) > 1e-9):
            out.append((f.name, str(table.name.iloc[k]), float(a[0, k]), float(b[0, k])))
    return out


def storage_q_sign_check(model) -> tuple[float, float, float]:
    """pandapower runpp: |V| at the campus BESS bus with storage q_mvar = +0.6, with a load of
    q_mvar = +0.6 (consumed) at that bus instead, and with an sgen of q_mvar = +0.6 (generated)."""
    bus = model.bus_index("CAMPUS_10kV")
    out = []
    for table in ("storage", "load", "sgen"):
        net = copy.deepcopy(model.net)
        if table == "storage":
            net.storage.loc[net.storage.bus == bus, "q_mvar"] = 0.6
        elif table == "load":
            pp.create_load(net, bus, p_mw=0.0, q_mvar=0.6)
        else:
            pp.create_sgen(net, bus, p_mw=0.0, q_mvar=0.6)
        pp.runpp(net)
        out.append(float(net.res_bus.vm_pu.at[bus]))
    return tuple(out)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all-buses", action="store_true", help="print every bus")
    args = parser.parse_args(argv)
    model = load_model("jiuke_oasis")
    dispatcher = Dispatcher(model, steps=1)
    net = dispatcher.net
    names = [str(n) for n in net.bus.name]
    worst_overall = 0.0
    for label, pv_q, bess_q, bess_p in CASES:
        sim, sim_inj, sim_res = simulate(model, pv_q, bess_q, bess_p)
        bundle, schedule = planner_inputs(sim)
        plan_inj = dispatcher.injections(bundle, schedule)
        ac = dispatcher.evaluate(bundle, schedule)
        v_plan = ac.result.vm_pu[0]
        sim_pos = {int(b): k for k, b in enumerate(sim_res.bus_index)}
        v_sim = np.array([sim_res.vm_pu[0, sim_pos[int(b)]] for b in ac.result.bus_index])
        diff = v_sim - v_plan
        # the planner's check as it was: BESS q passed to pandapower storage unnegated (every
        # other storage row is idle, so negating the whole column flips only the batteries)
        q_old = -plan_inj.storage_q_mvar
        v_old = dispatcher.power_flow.run(replace(plan_inj, storage_q_mvar=q_old)).vm_pu[0]
        diff_old = v_sim - v_old
        worst = float(np.nanmax(np.abs(diff)))
        worst_overall = max(worst_overall, worst)
        print(f"\n=== {label} (BESS_CAMPUS p_set {bess_p:+.1f} MW) at {sim.time} ===")
        pv, bess = sim.pv["PV_CAMPUS"], sim.bess["BESS_CAMPUS"]
        print(
            f"device outputs: PV_CAMPUS p={pv.p_mw:.3f} MW q={pv.q_mvar:+.3f} Mvar; "
            f"BESS_CAMPUS p={bess.p_mw:+.3f} MW q={bess.q_mvar:+.3f} Mvar "
            "(registry: injection positive)"
        )
        diffs = injection_differences(net, plan_inj, sim_inj)
        print(
            "power-flow inputs that differ "
            "(pandapower convention: load/storage consume, sgen generates):"
        )
        for name, element, a, b in diffs:
            print(f"  {name:15s} {element:14s} planner {a:+.4f}  simulator {b:+.4f}")
        if not diffs:
            print("  none")
        print(
            f"  {'bus':18s} {'planner':>9s} {'simulator':>9s} {'sim-plan':>9s}   "
            f"{'plan(old q sign)':>16s} {'sim-plan(old)':>13s}"
        )
        for k, name in enumerate(names):
            shown = max(abs(diff[k]), abs(diff_old[k])) > 1e-6 or name in CAMPUS_BUSES
            if args.all_buses or shown:
                print(
                    f"  {name:18s} {v_plan[k]:9.5f} {v_sim[k]:9.5f} {diff[k]:+9.5f}   "
                    f"{v_old[k]:16.5f} {diff_old[k]:+13.5f}"
                )
        print(
            f"max |sim - plan| over {len(names)} buses: {worst:.2e} pu "
            f"(with the old BESS q sign: {float(np.nanmax(np.abs(diff_old))):.2e} pu)"
        )
    v_st, v_ld, v_sg = storage_q_sign_check(model)
    print("\n=== pandapower runpp, |V| at CAMPUS_10kV with +0.6 Mvar in q_mvar of ===")
    print(f"  storage {v_st:.5f}   load {v_ld:.5f}   sgen {v_sg:.5f}")
    print(
        "  storage q_mvar is consumed, as a load's"
        if abs(v_st - v_ld) < 1e-9
        else "  storage q_mvar is NOT like a load's"
    )
    print(f"\nworst |sim - plan| over all cases: {worst_overall:.2e} pu (invariant: < 1e-4)")
    return 0 if worst_overall < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
