"""A battery measured outside its SoC band, outside [0, 1] or not at all: the plan and every
fallback handle what was measured and never drive the battery further out of its band.

The projection of a power over a step is the simulator's own physics (``hil_sim.devices``),
not the controller's, so the controller's arithmetic is checked against an independent one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from controllers.config import DispatchConfig
from controllers.dayahead import run_dayahead
from controllers.ev_charging import SessionState
from controllers.mpc import RecedingHorizonController
from controllers.snapshot import GridSnapshot
from forecasts.bundle import build
from hil_sim.devices import integrate_soc

DAY = dt.date(2026, 7, 15)
NAN = float("nan")
TOL = 1e-7
BROKEN = DispatchConfig(solver="NO_SUCH_SOLVER")  # every solve fails: the fallbacks answer


@pytest.fixture(scope="module")
def bundle(jiuke):
    return build(jiuke, DAY, "24h", seed=3)


def _snapshot(model, bundle, now, soc):
    states = tuple(
        SessionState(session=s) for s in bundle.ev_sessions if s.arrival <= now < s.departure
    )
    return GridSnapshot(time=now, bess_soc_frac=soc, ev_sessions=states)


def _in_band(model) -> dict[str, float]:
    return {b.id: b.soc_init_frac for b in model.registry.bess}


def _assert_never_further_out(bess, measured, p_mw, step_h):
    """The first step's power for a battery measured at ``measured`` (NaN: unknown), checked
    against its band [soc_min_frac, soc_max_frac] with the simulator's physics."""
    lo, hi = bess.soc_min_frac, bess.soc_max_frac
    assert math.isfinite(p_mw) and abs(p_mw) <= bess.p_mw + TOL, (bess.id, p_mw)
    if math.isnan(measured):
        assert p_mw == 0.0, (bess.id, "unknown SoC must be held at 0 MW", p_mw)
        return
    start = min(max(measured, 0.0), 1.0)  # a reading outside [0, 1] at its nearest end
    after = integrate_soc(bess, start, p_mw, step_h)
    if measured < lo:
        assert p_mw <= TOL, (bess.id, measured, "discharged below its band", p_mw)
        assert after <= hi + TOL, (bess.id, measured, after)
    elif measured > hi:
        assert p_mw >= -TOL, (bess.id, measured, "charged above its band", p_mw)
        assert after >= lo - TOL, (bess.id, measured, after)
    else:
        assert lo - TOL <= after <= hi + TOL, (bess.id, measured, p_mw, after)


# what the record must say about a battery, by the kind of reading
ISSUE_WORDS = {
    -0.1: ("measurement fault", "empty", "below its band"),
    0.0: ("below its band", "never discharged"),
    0.97: ("above its band", "never charged"),
    1.2: ("measurement fault", "full", "above its band"),
    NAN: ("unknown", "held at 0 MW"),
    37.0: ("measurement fault", "held at 0 MW"),  # a percentage sent as a fraction
}
HELD_AT_ZERO = (37.0,)  # with NaN: readings that tell nothing of the battery's charge


@pytest.mark.parametrize("measured", list(ISSUE_WORDS), ids=str)
def test_the_mpc_plans_from_any_soc_reading_and_never_drives_the_battery_further_out(
    jiuke, bundle, measured
):
    bess = jiuke.registry["BESS_1"]
    mpc = RecedingHorizonController(jiuke, horizon_steps=12)
    soc = _in_band(jiuke) | {bess.id: measured}
    for k in range(40, 44):  # a decision at every step, the battery following the setpoints
        decision = mpc.step(_snapshot(jiuke, bundle, bundle.index[k], soc), bundle)
        record = decision.record
        assert record.fallback is None, record.notes  # no infeasibility from the start
        assert record.status == "optimal"
        p = decision.setpoints[bess.id]["p_set_mw"]
        _assert_never_further_out(bess, soc[bess.id], p, mpc.step_h)
        assert (decision.schedule.bess_p_mw[bess.id].abs() <= bess.p_mw + TOL).all()
        planned = decision.schedule.bess_soc_frac[bess.id]
        if math.isnan(measured) or measured in HELD_AT_ZERO:
            assert p == 0.0 and planned.isna().all()  # not dispatched, SoC not made up
            assert (decision.schedule.bess_p_mw[bess.id] == 0.0).all()
        else:
            # back into its band as fast as the objective allows: within the window here
            assert bess.soc_min_frac - TOL <= planned.iloc[-1] <= bess.soc_max_frac + TOL
            # and never further out than measured anywhere in the window
            start = min(max(measured, 0.0), 1.0)
            assert planned.min() >= min(start, bess.soc_min_frac) - TOL
            assert planned.max() <= max(start, bess.soc_max_frac) + TOL
        if k == 40:
            issue = record.bess_soc_issues.get(bess.id, "")
            for word in ISSUE_WORDS[measured]:
                assert word in issue, (word, issue)
            assert set(record.bess_soc_issues) == {bess.id}  # the others were in band
        if math.isfinite(soc[bess.id]) and 0.0 <= soc[bess.id] <= 1.0:
            soc[bess.id] = integrate_soc(bess, soc[bess.id], p, mpc.step_h)
    if measured == 0.0:
        assert soc[bess.id] >= bess.soc_min_frac - TOL  # it was brought back in


def test_a_battery_absent_from_the_snapshot_is_held_at_0_mw_and_named(jiuke, bundle):
    mpc = RecedingHorizonController(jiuke, horizon_steps=8)
    soc = _in_band(jiuke)
    del soc["BESS_2"]
    decision = mpc.step(_snapshot(jiuke, bundle, bundle.index[40], soc), bundle)
    assert decision.record.fallback is None
    assert decision.setpoints["BESS_2"]["p_set_mw"] == 0.0
    assert "unknown" in decision.record.bess_soc_issues["BESS_2"]


def _danger(measured: float, bess) -> float:
    """The old power that would drive a battery measured at ``measured`` further out."""
    if math.isnan(measured):
        return bess.p_mw
    return bess.p_mw if measured <= bess.soc_min_frac else -bess.p_mw


@pytest.mark.parametrize("fallback", ["last_schedule_shifted", "rule_based_safe_dispatch"])
@pytest.mark.parametrize("measured", [-0.1, 0.0, 0.97, 1.2, NAN], ids=str)
def test_every_fallback_checks_its_powers_against_the_measured_soc(
    jiuke, bundle, measured, fallback
):
    bess = jiuke.registry["BESS_1"]
    mpc = RecedingHorizonController(jiuke, horizon_steps=8)
    good = mpc.step(_snapshot(jiuke, bundle, bundle.index[40], _in_band(jiuke)), bundle)
    assert good.record.fallback is None
    # an old schedule that drives the battery hard the wrong way (full power, every step)
    old_p = good.schedule.bess_p_mw.copy()
    old_p[bess.id] = _danger(measured, bess)
    mpc.last_good = replace(good.schedule, bess_p_mw=old_p)
    if fallback == "rule_based_safe_dispatch":
        mpc.last_good = None
    mpc.dispatcher.problem.config = BROKEN  # the solve fails
    soc = _in_band(jiuke) | {bess.id: measured}
    decision = mpc.step(_snapshot(jiuke, bundle, bundle.index[41], soc), bundle)
    assert decision.record.fallback == fallback
    p = decision.setpoints[bess.id]["p_set_mw"]
    _assert_never_further_out(bess, measured, p, mpc.step_h)
    assert bess.id in decision.record.bess_soc_issues
    if fallback == "last_schedule_shifted":
        # the replayed power was clipped, and the record says so, naming the battery
        assert any(n.startswith(f"{bess.id}: power clipped") for n in decision.record.notes)
        if measured in (0.0, -0.1):
            # below its band: the old discharge is refused, not turned into a charge
            assert p == 0.0
    # the other batteries, in band, replay the old plan within their band
    for b in jiuke.registry.bess:
        if b.id != bess.id:
            _assert_never_further_out(b, soc[b.id], decision.setpoints[b.id]["p_set_mw"], 0.25)


def test_a_plan_that_raises_falls_back_and_still_decides_with_an_unknown_soc(jiuke, bundle):
    """A NaN SoC with Good status: the step still gets a decision (here the planner itself
    fails, and the rule-based dispatch answers), the battery at 0 MW."""
    mpc = RecedingHorizonController(jiuke, horizon_steps=8)

    def fail(*args, **kwargs):
        raise RuntimeError("solver crashed")

    mpc.dispatcher.plan = fail
    soc = _in_band(jiuke) | {"BESS_3": NAN}
    decision = mpc.step(_snapshot(jiuke, bundle, bundle.index[41], soc), bundle)
    assert decision.record.fallback == "rule_based_safe_dispatch"
    assert decision.setpoints["BESS_3"]["p_set_mw"] == 0.0
    assert "held at 0 MW" in decision.record.bess_soc_issues["BESS_3"]
    assert decision.schedule.bess_soc_frac["BESS_3"].isna().all()


@pytest.fixture(scope="module")
def broken_mpc(jiuke, bundle):
    """A controller whose solver always fails, and the good schedule it once planned."""
    mpc = RecedingHorizonController(jiuke, horizon_steps=8)
    good = mpc.step(_snapshot(jiuke, bundle, bundle.index[40], _in_band(jiuke)), bundle)
    assert good.record.fallback is None
    mpc.dispatcher.problem.config = BROKEN
    return mpc, good.schedule


SOC_READING = st.one_of(st.floats(-0.2, 1.2), st.just(NAN))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    measured=st.lists(SOC_READING, min_size=4, max_size=4),
    old_p_mw=arrays(np.float64, (8, 4), elements=st.one_of(st.floats(-5.0, 5.0), st.just(NAN))),
    replay=st.booleans(),
)
def test_no_fallback_first_step_drives_any_battery_further_out_of_its_band(
    jiuke, bundle, broken_mpc, measured, old_p_mw, replay
):
    mpc, good = broken_mpc
    reg = jiuke.registry
    old = replace(
        good, bess_p_mw=pd.DataFrame(old_p_mw, index=good.index, columns=good.bess_p_mw.columns)
    )
    mpc.last_good = old if replay else None
    soc = {b.id: m for b, m in zip(reg.bess, measured, strict=True)}
    decision = mpc.step(_snapshot(jiuke, bundle, bundle.index[41], soc), bundle)
    assert decision.record.fallback == (
        "last_schedule_shifted" if replay else "rule_based_safe_dispatch"
    )
    for b in reg.bess:
        _assert_never_further_out(b, soc[b.id], decision.setpoints[b.id]["p_set_mw"], 0.25)


@settings(max_examples=300, deadline=None)
@given(
    measured=st.lists(SOC_READING, min_size=4, max_size=4),
    p_mw=arrays(np.float64, (6, 4), elements=st.one_of(st.floats(-5.0, 5.0), st.just(NAN))),
)
def test_a_guarded_schedule_never_drives_a_battery_further_out_at_any_step(
    jiuke, measured, p_mw
):
    from controllers.bess_soc import guard_schedule, read_fleet

    reg = jiuke.registry
    idx = pd.date_range("2026-07-15 10:00", periods=6, freq="15min", tz="Asia/Shanghai")
    cols = [b.id for b in reg.bess]
    frame = pd.DataFrame(p_mw, index=idx, columns=cols)
    empty = pd.DataFrame(index=idx)
    sched = _schedule(idx, frame, empty)
    soc = dict(zip(cols, measured, strict=True))
    guarded, _ = guard_schedule(
        sched, reg.bess, read_fleet(reg.bess, soc), use_island_reserve=False
    )
    for b in reg.bess:
        m = soc[b.id]
        for p in guarded.bess_p_mw[b.id]:
            _assert_never_further_out(b, m, p, 0.25)
            if math.isfinite(m):
                m = integrate_soc(b, min(max(m, 0.0), 1.0), p, 0.25)


def _schedule(idx, bess_p, empty):
    from controllers.schedule import DispatchSchedule

    return DispatchSchedule(
        index=idx, step_h=0.25, pv_p_mw=empty, pv_q_mvar=empty, bess_p_mw=bess_p,
        bess_q_mvar=bess_p * 0.0, bess_soc_frac=bess_p * np.nan, ev_site_p_mw=empty,
        ev_session_p_kw=empty,
    )


def test_the_day_ahead_plan_handles_every_kind_of_soc_reading(jiuke):
    soc = {"BESS_1": 0.0, "BESS_2": 0.97, "BESS_3": NAN, "BESS_CAMPUS": 1.2}
    result = run_dayahead(jiuke, DAY, seed=0, bess_soc_frac=soc)
    plan = result.plan
    assert plan.solution is not None and plan.solution.ok  # feasible from where they are
    assert result.kpis["ac_validated"]
    issues = plan.record.bess_soc_issues
    assert "below its band" in issues["BESS_1"] and "above its band" in issues["BESS_2"]
    assert "held at 0 MW" in issues["BESS_3"] and "measurement fault" in issues["BESS_CAMPUS"]
    p = plan.schedule.bess_p_mw
    soc_end = plan.schedule.bess_soc_frac
    assert (p["BESS_3"] == 0.0).all() and soc_end["BESS_3"].isna().all()
    for bid, start in (("BESS_1", 0.0), ("BESS_2", 0.97), ("BESS_CAMPUS", 1.0)):
        b = jiuke.registry[bid]
        at_start = np.r_[start, soc_end[bid].to_numpy()[:-1]]  # SoC at each step's start
        below = at_start < b.soc_min_frac - 1e-6
        above = at_start > b.soc_max_frac + 1e-6
        assert (p[bid].to_numpy()[below] <= 1e-6).all(), bid  # no discharge while below
        assert (p[bid].to_numpy()[above] >= -1e-6).all(), bid  # no charge while above
        assert soc_end[bid].min() >= min(start, b.soc_min_frac) - 1e-6  # never further out
        assert soc_end[bid].max() <= max(start, b.soc_max_frac) + 1e-6
        # back in its band within the first hour, and there it stays
        assert soc_end[bid].iloc[3:].between(b.soc_min_frac - 1e-6, b.soc_max_frac + 1e-6).all()


# --- the runtime's field edge ----------------------------------------------------------------


def _runtime_snapshot(jiuke, tmp_path, readings):
    from gridctl.runtime import ControllerRuntime, RuntimeConfig

    runtime = ControllerRuntime(jiuke, RuntimeConfig(endpoint="opc.tcp://127.0.0.1:4840",
                                                     db_path=tmp_path / "h.sqlite"))
    try:
        now = pd.Timestamp("2026-07-15 19:00", tz="Asia/Shanghai")
        snapshot, _ = runtime._snapshot(now, readings)
    finally:
        runtime.historian.close()
    return snapshot


def test_the_runtime_hands_the_soc_over_as_measured_nan_when_bad_or_not_a_number(jiuke, tmp_path):
    from asyncua import ua

    from gridctl.field_client import PointReading

    bess = [b.id for b in jiuke.registry.bess]
    good, bad = ua.StatusCodes.Good, ua.StatusCodes.BadNoCommunication
    readings = [
        PointReading(device_id=bess[0], point="soc_frac", value=float("nan"), status=good,
                     source_time=None),
        PointReading(device_id=bess[1], point="soc_frac", value=1.2, status=good,
                     source_time=None),
        PointReading(device_id=bess[2], point="soc_frac", value=None, status=bad,
                     source_time=None),
    ]  # the fourth is not read at all
    soc = _runtime_snapshot(jiuke, tmp_path, readings).bess_soc_frac
    assert math.isnan(soc[bess[0]]) and soc[bess[1]] == 1.2  # not clamped: the controller
    assert math.isnan(soc[bess[2]]) and math.isnan(soc[bess[3]])  # judges it (not soc_init)
