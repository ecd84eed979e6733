"""Day-ahead dispatch and MPC: what a validated schedule must satisfy, and what it must beat."""

from __future__ import annotations

import copy
import datetime as dt
import math
import warnings
from dataclasses import replace

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controllers.config import DispatchConfig
from controllers.dayahead import run_dayahead, sessions_at_start
from controllers.ev_charging import SessionState
from controllers.mpc import RecedingHorizonController, first_step_setpoints
from controllers.snapshot import GridSnapshot
from forecasts.bundle import build
from forecasts.ev import EvSession
from network_models import load_model

DAY = dt.date(2026, 7, 15)


@pytest.fixture(scope="module")
def dayahead(jiuke):
    return run_dayahead(jiuke, DAY, seed=0)


def test_jiuke_day_is_validated_in_ac_serves_every_ev_and_beats_uncontrolled(dayahead):
    k, b = dayahead.kpis, dayahead.baseline_kpis
    assert k["ev_sessions"] >= 500
    assert k["ac_validated"] and k["ac_violations"] == 0
    assert k["v_min_pu"] >= 0.93 and k["v_max_pu"] <= 1.07
    assert k["max_line_loading_pct"] <= 100 and k["max_trafo_loading_pct"] <= 100
    assert k["ev_energy_shortfall_mwh"] == 0
    assert k["cost_cny"] < b["cost_cny"]
    assert k["peak_import_mw"] < b["peak_import_mw"]


def test_grid_import_balances_loads_ev_pv_bess_and_losses_at_every_step(dayahead, jiuke):
    bundle, sched, ac = dayahead.bundle, dayahead.plan.schedule, dayahead.plan.ac
    loads = bundle.load_p_mw[[d.id for d in jiuke.registry.loads]].sum(axis=1).to_numpy()
    ev = sched.ev_site_p_mw.sum(axis=1).to_numpy()
    pv = sched.pv_p_mw.sum(axis=1).to_numpy()
    bess = sched.bess_p_mw.sum(axis=1).to_numpy()
    res = ac.result
    # storage and transformer no-load losses are in losses_mw; nothing else enters or leaves
    balance = loads + ev - pv - bess + res.losses_mw - ac.import_mw
    assert np.abs(balance).max() < 1e-6


def test_power_balances_at_every_bus_in_ac_power_flow_of_a_planned_step(dayahead, jiuke):
    sched, bundle = dayahead.plan.schedule, dayahead.bundle
    step = 52  # 13:00, PV high, critical peak
    net = jiuke.copy_net()
    for d in jiuke.registry.loads:
        net.load.at[d.element.index, "p_mw"] = bundle.load_p_mw[d.id].iloc[step]
        net.load.at[d.element.index, "q_mvar"] = bundle.load_q_mvar[d.id].iloc[step]
    for d in jiuke.registry.ev_sites:
        net.load.at[d.element.index, "p_mw"] = sched.ev_site_p_mw[d.id].iloc[step]
    for d in jiuke.registry.pv:
        net.sgen.at[d.element.index, "p_mw"] = sched.pv_p_mw[d.id].iloc[step]
        net.sgen.at[d.element.index, "q_mvar"] = sched.pv_q_mvar[d.id].iloc[step]
    for d in jiuke.registry.bess:
        net.storage.at[d.element.index, "p_mw"] = -sched.bess_p_mw[d.id].iloc[step]
        net.storage.at[d.element.index, "q_mvar"] = -sched.bess_q_mvar[d.id].iloc[step]
    pp.runpp(net)
    # injections at each bus equal the flows leaving it through lines and transformers
    flow_out = pd.Series(0.0, index=net.bus.index)
    np.add.at(flow_out.values, net.bus.index.get_indexer(net.line.from_bus), net.res_line.p_from_mw)
    np.add.at(flow_out.values, net.bus.index.get_indexer(net.line.to_bus), net.res_line.p_to_mw)
    np.add.at(flow_out.values, net.bus.index.get_indexer(net.trafo.hv_bus), net.res_trafo.p_hv_mw)
    np.add.at(flow_out.values, net.bus.index.get_indexer(net.trafo.lv_bus), net.res_trafo.p_lv_mw)
    injection = -net.res_bus.p_mw  # pandapower: res_bus.p_mw is consumption
    assert np.abs((injection - flow_out).to_numpy()).max() < 1e-6
    assert abs(net.res_ext_grid.p_mw.sum() - dayahead.plan.ac.import_mw[step]) < 1e-5


def test_bess_soc_stays_in_bounds_and_follows_its_dynamics(dayahead, jiuke):
    sched = dayahead.plan.schedule
    h = sched.step_h
    for b in jiuke.registry.bess:
        soc = sched.bess_soc_frac[b.id].to_numpy()
        p = sched.bess_p_mw[b.id].to_numpy()
        floor = max(b.soc_min_frac, b.island_reserve_frac)
        assert soc.min() >= floor - 1e-6 and soc.max() <= b.soc_max_frac + 1e-6
        assert np.abs(p).max() <= b.p_mw + 1e-6
        prev = np.r_[b.soc_init_frac, soc[:-1]]
        energy = np.where(p < 0, -p * b.eta_charge, -p / b.eta_discharge) * h
        # simultaneous charge and discharge never pays, so net power gives the exact change
        assert np.allclose(soc - prev, energy / b.e_mwh, atol=1e-5)
        assert soc[-1] >= b.soc_init_frac - 1e-4  # ends where it started (default target)


def test_every_session_is_charged_only_while_plugged_in_within_its_limit(dayahead, jiuke):
    sched, bundle = dayahead.plan.schedule, dayahead.bundle
    states = {s.session.id: s for s in sessions_at_start(bundle)}
    starts = sched.index
    ends = starts + pd.Timedelta(hours=sched.step_h)
    sites = {s.id: s for s in jiuke.registry.ev_sites}
    for sid in sched.ev_session_p_kw.columns:
        s = states[sid].session
        p = sched.ev_session_p_kw[sid].to_numpy()
        outside = (ends <= s.arrival) | (starts >= s.departure)
        assert np.all(p[outside] == 0), sid
        assert p.max() <= min(s.max_kw, sites[s.site].p_connector_kw) + 1e-6
        delivered = p.sum() * sched.step_h
        assert delivered <= states[sid].energy_owed_kwh + 1e-4
        if s.departure <= bundle.end:
            assert delivered >= states[sid].energy_owed_kwh - 1e-3, sid


def test_site_power_never_exceeds_the_hub_connection_limit(dayahead, jiuke):
    for site in jiuke.registry.ev_sites:
        assert (
            dayahead.plan.schedule.ev_site_p_mw[site.id].max() <= site.p_site_max_kw / 1000 + 1e-6
        )


def _snapshot(model, bundle, now, soc=None, delivered=None):
    delivered = delivered or {}
    states = tuple(
        SessionState(session=s, energy_delivered_kwh=delivered.get(s.id, 0.0))
        for s in bundle.ev_sessions
        if s.arrival <= now < s.departure
    )
    soc = soc or {b.id: b.soc_init_frac for b in model.registry.bess}
    return GridSnapshot(time=now, bess_soc_frac=soc, ev_sessions=states)


@pytest.fixture(scope="module")
def mpc_setup(jiuke):
    bundle = build(jiuke, DAY, "24h", seed=3)
    mpc = RecedingHorizonController(jiuke, horizon_steps=12)
    return bundle, mpc


def test_mpc_starts_each_window_from_exactly_what_was_measured(jiuke, mpc_setup):
    bundle, mpc = mpc_setup
    now = bundle.index[40]
    soc = {b.id: 0.37 + 0.05 * k for k, b in enumerate(jiuke.registry.bess)}
    present = [s for s in bundle.ev_sessions if s.arrival <= now < s.departure]
    delivered = {s.id: 0.25 * s.energy_kwh for s in present}
    dec = mpc.step(_snapshot(jiuke, bundle, now, soc, delivered), bundle)
    assert dec.record.fallback is None
    e0 = mpc.dispatcher.problem.params.bess_energy_start_mwh.value
    assert np.allclose(e0, [soc[b.id] * b.e_mwh for b in jiuke.registry.bess])
    # the energy each present session still gets in the window never exceeds what it still owes
    for s in present:
        if s.id in dec.schedule.ev_session_p_kw:
            got = dec.schedule.ev_session_p_kw[s.id].sum() * 0.25
            assert got <= 0.75 * s.energy_kwh + 1e-4
    # next window: hand over the measured state, the problem sees exactly that
    soc2 = {k: v * 0.9 for k, v in soc.items()}
    mpc.step(_snapshot(jiuke, bundle, bundle.index[41], soc2, delivered), bundle)
    assert np.allclose(
        mpc.dispatcher.problem.params.bess_energy_start_mwh.value,
        [soc2[b.id] * b.e_mwh for b in jiuke.registry.bess],
    )


def test_mpc_never_charges_a_session_that_arrives_mid_window_before_its_arrival(jiuke, mpc_setup):
    bundle, mpc = mpc_setup
    now = bundle.index[30]
    dec = mpc.step(_snapshot(jiuke, bundle, now), bundle)
    sessions = {s.id: s for s in bundle.ev_sessions}
    sched = dec.schedule
    later = [sid for sid in sched.ev_session_p_kw.columns if sessions[sid].arrival > now]
    assert later, "the window should hold forecast arrivals"
    for sid in later:
        s = sessions[sid]
        p = sched.ev_session_p_kw[sid]
        ends = p.index + pd.Timedelta(hours=0.25)
        assert (p[(ends <= s.arrival) | (p.index >= s.departure)] == 0).all()


def test_a_nearly_done_session_read_late_in_its_stay_is_planned_not_a_crash(jiuke, mpc_setup):
    # read two minutes into the step, leaving eight minutes later with a rounding error still
    # owed: no room to finish early (the margin is longer than the stay that is left)
    bundle, mpc = mpc_setup
    now = bundle.index[44]
    read_at = now + pd.Timedelta(minutes=2)
    late = EvSession(id="late", site="EV_L1_4", connector="c40", arrival=read_at,
                     departure=read_at + pd.Timedelta(minutes=8), energy_kwh=20.0, max_kw=7.0)
    snap = GridSnapshot(time=now, bess_soc_frac={b.id: b.soc_init_frac for b in
                                                  jiuke.registry.bess},
                        ev_sessions=(SessionState(session=late,
                                                  energy_delivered_kwh=20.0 - 1e-13),))
    dec = mpc.step(snap, bundle)
    assert dec.record.fallback is None, dec.record.notes
    assert dec.session_p_kw.get("late", 0.0) == pytest.approx(0.0, abs=1e-6)


def test_mpc_falls_back_to_the_last_schedule_then_to_a_safe_dispatch(jiuke, mpc_setup):
    bundle, _ = mpc_setup
    mpc = RecedingHorizonController(jiuke, horizon_steps=8, config=DispatchConfig(solver="SCS"))
    mpc.dispatcher.problem.config = DispatchConfig(solver="NO_SUCH_SOLVER")
    first = mpc.step(_snapshot(jiuke, bundle, bundle.index[44]), bundle)
    assert first.record.fallback == "rule_based_safe_dispatch"
    assert all(v["p_set_mw"] == 0.0 for k, v in first.setpoints.items() if k.startswith("BESS"))
    mpc.dispatcher.problem.config = DispatchConfig()
    good = mpc.step(_snapshot(jiuke, bundle, bundle.index[44]), bundle)
    assert good.record.fallback is None
    mpc.dispatcher.problem.config = DispatchConfig(solver="NO_SUCH_SOLVER")
    shifted = mpc.step(_snapshot(jiuke, bundle, bundle.index[45]), bundle)
    assert shifted.record.fallback == "last_schedule_shifted"
    assert "fallback" in " ".join(shifted.record.notes)
    for bid in shifted.schedule.bess_p_mw.columns:
        assert shifted.setpoints[bid]["p_set_mw"] == pytest.approx(
            good.schedule.bess_p_mw[bid].iloc[1]
        )


@pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow on the way is a failure
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6)),
        min_size=4,
        max_size=4,
    )
)
def test_setpoints_are_inside_device_limits_whatever_the_schedule_says(jiuke, dayahead, values):
    sched = copy.copy(dayahead.plan.schedule)
    frames = {}
    for name, v in zip(("pv_p_mw", "pv_q_mvar", "bess_p_mw", "ev_site_p_mw"), values, strict=True):
        df = getattr(sched, name).copy()
        df.iloc[0] = v
        frames[name] = df
    for name, df in frames.items():
        object.__setattr__(sched, name, df)
    points = first_step_setpoints(jiuke, sched)
    for device_id, setpoints in points.items():
        for point, value in setpoints.items():
            assert jiuke.registry[device_id].point(point).accepts(value), (device_id, point, value)


def test_a_huge_site_power_in_a_schedule_is_clamped_without_overflow(jiuke, dayahead):
    # found by the test above: a finite MW figure overflowed when it was turned into kW first
    site = jiuke.registry.ev_sites[0]
    frame = dayahead.plan.schedule.ev_site_p_mw.copy()
    frame.iloc[0] = 1.7e308
    sched = replace(dayahead.plan.schedule, ev_site_p_mw=frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow is a RuntimeWarning: here a failure
        points = first_step_setpoints(jiuke, sched)
    assert points[site.id]["p_site_limit_kw"] == site.point("p_site_limit_kw").max_value


def test_a_session_that_cannot_be_served_is_reported_not_a_crash(jiuke):
    bundle = build(jiuke, DAY, "24h", seed=0)
    site = jiuke.registry["EV_L1_1"]
    arrival = bundle.index[40]
    impossible = EvSession(
        id="greedy",
        site=site.id,
        connector="c1",
        arrival=arrival,
        departure=arrival + pd.Timedelta(hours=1),
        energy_kwh=50.0,
        max_kw=7.0,
    )
    from controllers.dispatch import Dispatcher

    d = Dispatcher(jiuke, steps=8)
    snap = GridSnapshot(
        time=arrival,
        bess_soc_frac={b.id: 0.5 for b in jiuke.registry.bess},
        ev_sessions=(SessionState(session=impossible),),
    )
    result = d.plan(bundle, snap)
    assert result.record.ev_shortfall_kwh["greedy"] == pytest.approx(50.0 - 7.0, abs=1e-3)
    assert result.ac.passed


def test_a_bess_soc_that_is_not_a_number_is_refused_with_a_clear_message(jiuke):
    # a SoC outside [0, 1] or NaN is a measurement the controller must handle (see
    # test_soc_out_of_band.py); something that is not a number at all is a caller's error
    with pytest.raises(ValueError, match=r"BESS_1.*must be a number"):
        GridSnapshot(
            time=pd.Timestamp("2026-07-15", tz="Asia/Shanghai"), bess_soc_frac={"BESS_1": "full"}
        )


def test_a_bess_below_its_floor_is_planned_without_infeasibility(jiuke):
    bundle = build(jiuke, DAY, "24h", seed=0)
    from controllers.dispatch import Dispatcher

    d = Dispatcher(jiuke, steps=8)
    soc = {b.id: 0.02 for b in jiuke.registry.bess}  # below soc_min_frac (0.1)
    r = d.plan(bundle, GridSnapshot(time=bundle.index[8], bess_soc_frac=soc))
    assert r.solution is not None and r.solution.ok
    assert (r.schedule.bess_p_mw.to_numpy() <= 1e-6).all()  # it may only charge back up


@pytest.mark.parametrize("name", ["cigre_mv", "case33bw"])
def test_the_same_dispatch_runs_on_standard_feeders(name):
    model = load_model(name)
    result = run_dayahead(model, DAY, seed=0)
    assert result.plan.solution is not None and result.plan.solution.ok
    k = result.kpis
    assert math.isfinite(k["cost_cny"]) and k["cost_cny"] <= result.baseline_kpis["cost_cny"] + 1
    within = k["v_min_pu"] >= 0.93 and k["v_max_pu"] <= 1.07 and k["max_line_loading_pct"] <= 100
    # validated exactly when every step is within limits; otherwise the record says which
    assert k["ac_validated"] == within
    if not within:
        assert any("still fails" in n for n in result.plan.record.notes)
    if name == "cigre_mv":
        assert k["ac_validated"]


def test_mpc_plans_on_a_grid_reconfigured_after_a_fault(jiuke):
    """After FLISR isolates a ring section and closes the open point, the MPC rebuilds its
    network model for the new topology and still plans a schedule that passes the AC check."""
    bundle = build(jiuke, DAY, "24h", seed=0)
    mpc = RecedingHorizonController(jiuke, horizon_steps=8)
    restored = {"RS_FD_L2_1_a": False, "RS_FD_L2_1_b": False, "NO_FD_L2_3_b": True}
    snap = GridSnapshot(
        time=bundle.index[77],
        bess_soc_frac={b.id: 0.5 for b in jiuke.registry.bess},
        switch_closed=restored,
    )
    decision = mpc.step(snap, bundle)
    assert decision.record.fallback is None and decision.record.ac_check["passed"]
    assert mpc.dispatcher.switch_closed == restored
