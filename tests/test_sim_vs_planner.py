"""Spec: the simulator's AC physics and the planner's AC check are one and the same power flow.

For the same device outputs (registry signs: PV and BESS ``p_mw``/``q_mvar`` injected) and the
same loads, the bus voltages of the simulator's tick (``hil_sim.simulator.Simulator._solve``) and
of the planner's check of a schedule (``controllers.dispatch.Dispatcher.evaluate``) agree to
within 1e-4 pu, also when PV and BESS inject or absorb reactive power.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from controllers.dispatch import Dispatcher
from controllers.schedule import DispatchSchedule
from forecasts.bundle import ForecastBundle
from hil_sim.config import SimConfig
from hil_sim.simulator import Simulator

TOLERANCE_PU = 1e-4


@pytest.fixture(scope="module")
def dispatcher(jiuke) -> Dispatcher:
    return Dispatcher(jiuke, steps=1)


def _sim_tick(model, setpoints: dict[tuple[str, str], float]) -> Simulator:
    sim = Simulator(model, start="2026-07-15 12:00", config=SimConfig(heartbeat_timeout_s=7200.0))
    for key, value in setpoints.items():
        sim.write(key, value)
    sim.step(5)  # setpoints apply at the next prepare; ramps settle
    assert sim.status.converged
    return sim


def _as_plan(sim: Simulator) -> tuple[ForecastBundle, DispatchSchedule]:
    """The simulator's present tick as a one-step forecast and schedule (its real outputs)."""
    reg = sim.model.registry
    idx = pd.DatetimeIndex([sim.time])

    def one(values, cols) -> pd.DataFrame:
        return pd.DataFrame([list(values)], index=idx, columns=cols)

    loads, pv, bess, sites = (
        [d.id for d in reg.loads],
        [d.id for d in reg.pv],
        [d.id for d in reg.bess],
        [d.id for d in reg.ev_sites],
    )
    bundle = ForecastBundle(
        index=idx,
        step_h=0.25,
        pv_p_mw=one([sim.pv[i].p_avail_mw for i in pv], pv),
        load_p_mw=one(sim._load_p, loads),
        load_q_mvar=one(sim._load_q, loads),
        price_cny_per_kwh=pd.Series([0.6], index=idx),
        export_price_cny_per_kwh=None,
        demand_charge_cny_per_kw_month=None,
        carbon_kg_per_kwh=pd.Series([0.58], index=idx),
        temperature_c=pd.Series([30.0], index=idx),
        ev_sessions=(),
        issued_at=None,
    )
    schedule = DispatchSchedule(
        index=idx,
        step_h=0.25,
        pv_p_mw=one([sim.pv[i].p_mw for i in pv], pv),
        pv_q_mvar=one([sim.pv[i].q_mvar for i in pv], pv),
        bess_p_mw=one([sim.bess[i].p_mw for i in bess], bess),
        bess_q_mvar=one([sim.bess[i].q_mvar for i in bess], bess),
        bess_soc_frac=one([sim.bess[i].soc_frac for i in bess], bess),
        ev_site_p_mw=one([sim._ev_mean_kw(sim.ev[i]).sum() / 1000.0 for i in sites], sites),
        ev_session_p_kw=pd.DataFrame(index=idx),
    )
    return bundle, schedule


@pytest.mark.parametrize(
    "setpoints",
    [
        pytest.param(
            {
                ("PV_CAMPUS", "q_set_mvar"): -0.3,
                ("BESS_CAMPUS", "p_set_mw"): 0.5,
                ("BESS_CAMPUS", "q_set_mvar"): 0.6,
            },
            id="campus-pv-absorbs-bess-injects",
        ),
        pytest.param(
            {
                ("PV_CAMPUS", "q_set_mvar"): 0.3,
                ("BESS_CAMPUS", "p_set_mw"): -0.5,
                ("BESS_CAMPUS", "q_set_mvar"): -0.6,
                ("BESS_1", "q_set_mvar"): 0.8,
            },
            id="campus-pv-injects-bess-absorbs-feeder-bess-injects",
        ),
    ],
)
def test_simulator_and_planner_ac_check_give_the_same_bus_voltages(jiuke, dispatcher, setpoints):
    sim = _sim_tick(jiuke, setpoints)
    reactive = {i: u.q_mvar for i, u in (*sim.pv.items(), *sim.bess.items())}
    assert reactive["BESS_CAMPUS"] == pytest.approx(setpoints[("BESS_CAMPUS", "q_set_mvar")])
    assert reactive["PV_CAMPUS"] == pytest.approx(setpoints[("PV_CAMPUS", "q_set_mvar")])

    bundle, schedule = _as_plan(sim)
    planned = dispatcher.evaluate(bundle, schedule).result
    v_plan = dict(zip(planned.bus_index.tolist(), planned.vm_pu[0], strict=True))
    view = sim.network_view()
    names = list(jiuke.net.bus.name)
    diffs = {
        name: view["bus_vm_pu"][k] - v_plan[int(row)]
        for k, (row, name) in enumerate(zip(jiuke.net.bus.index, names, strict=True))
        if np.isfinite(v_plan[int(row)])
    }
    assert len(diffs) == len(names)  # grid-connected: every bus is energised in both
    worst = max(diffs, key=lambda n: abs(diffs[n]))
    assert abs(diffs[worst]) < TOLERANCE_PU, (
        f"simulator - planner |V| at {worst} = {diffs[worst]:+.5f} pu "
        f"(CAMPUS_LV {diffs['CAMPUS_LV']:+.5f} pu)"
    )
