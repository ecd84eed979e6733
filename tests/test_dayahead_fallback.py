"""A plan says what it is: when the optimiser gives none, the day-ahead falls back (as the MPC
does), names the fallback everywhere, checks in AC the schedule it writes and exits 3; a
fallback's decision record carries the AC check of what was sent, not of a rejected plan."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from controllers.config import DispatchConfig
from controllers.dayahead import plan_verdict, run_dayahead, sessions_at_start
from controllers.dispatch import Dispatcher
from controllers.mpc import RecedingHorizonController
from controllers.snapshot import GridSnapshot
from forecasts.bundle import build
from gridctl.cli import main

DAY = dt.date(2026, 7, 15)
BROKEN = DispatchConfig(solver="NO_SUCH_SOLVER")  # every solve fails


@pytest.fixture(scope="module")
def failed(jiuke):
    return run_dayahead(jiuke, DAY, config=BROKEN)


def _without_wall(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_s"}


def test_a_failed_solve_falls_back_and_says_so(failed):
    record = failed.plan.record
    assert record.fallback == "rule_based_safe_dispatch"
    assert record.status.startswith("solver_error")
    assert failed.kpis["plan"] == "fallback: rule_based_safe_dispatch"
    assert plan_verdict(failed.kpis).startswith("FALLBACK rule_based_safe_dispatch")
    assert any("fallback" in n for n in record.notes)


def test_the_fallback_is_not_the_uncontrolled_baseline(failed):
    # before, the baseline the solve had started from was kept and reported as the plan
    ev = failed.plan.schedule.ev_site_p_mw.sum(axis=1)
    uncontrolled = failed.baseline.ev_site_p_mw.sum(axis=1)
    assert ev.max() < uncontrolled.max()  # just in time within half the site limits
    assert (failed.plan.schedule.bess_p_mw.abs().to_numpy() == 0.0).all()  # batteries idle


def test_the_fallbacks_record_carries_the_ac_check_of_the_schedule_written(jiuke, failed):
    dispatcher = Dispatcher(jiuke, steps=len(failed.bundle.index), step_h=failed.bundle.step_h)
    written = dispatcher.evaluate(failed.bundle, failed.plan.schedule).summary()
    assert _without_wall(failed.plan.record.ac_check) == _without_wall(written)
    assert failed.kpis["ac_validated"] == written["passed"]


def test_the_command_exits_3_and_every_output_names_the_fallback(tmp_path, capsys):
    out = tmp_path / "da"
    # a solver made to fail: cut short after a millisecond by the study's time limit
    code = main(["dayahead", "--model", "jiuke_oasis", "--date", "2026-07-15", "--out",
                 str(out), "--json", "--set", "solver.time_limit_s=0.001"])
    assert code == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["verdict"].startswith("FALLBACK") and summary["plan"].startswith("fallback")
    decision = json.loads((out / "decision.json").read_text(encoding="utf-8"))
    assert decision["verdict"].startswith("FALLBACK")
    assert decision["record"]["fallback"] == "rule_based_safe_dispatch"
    assert "FALLBACK rule_based_safe_dispatch" in (out / "report.html").read_text(
        encoding="utf-8")


def test_an_mpc_fallback_records_the_ac_check_of_what_it_sent(jiuke):
    bundle = build(jiuke, DAY, "12h", seed=3)
    controller = RecedingHorizonController(jiuke, horizon_steps=8, config=BROKEN)
    now = bundle.index[4]
    snapshot = GridSnapshot.initial(jiuke, now, sessions_at_start(bundle.window(now, bundle.end)))
    decision = controller.step(snapshot, bundle)
    assert decision.record.fallback == "rule_based_safe_dispatch"
    end = decision.schedule.index[-1] + pd.Timedelta(hours=decision.schedule.step_h)
    sent = controller.dispatcher.evaluate(bundle.window(decision.schedule.index[0], end),
                                          decision.schedule).summary()
    assert _without_wall(decision.record.ac_check) == _without_wall(sent)


def test_the_runtime_does_not_steer_by_a_fallback_day_plan_and_says_so(jiuke, failed, tmp_path):
    import asyncio

    from gridctl.historian import Historian
    from gridctl.runtime import ControllerRuntime, RuntimeConfig

    runtime = ControllerRuntime(jiuke, RuntimeConfig(endpoint="opc.tcp://127.0.0.1:4840",
                                                     db_path=tmp_path / "h.sqlite"))
    runtime._day_ahead = lambda day: failed  # the optimiser failed for this day
    issued = pd.Timestamp("2026-07-15 00:05", tz="Asia/Shanghai")

    async def plan() -> None:
        runtime._planning.add(DAY)
        await runtime._plan_day(DAY, issued)
        runtime._day_ahead_due(issued)  # not planned again at once, every tick
        assert not runtime._planning

    try:
        asyncio.run(plan())
        assert runtime._day_plan is None and DAY not in runtime._day_plans
    finally:
        runtime.historian.close()
    with Historian(tmp_path / "h.sqlite") as h:
        [event] = h.events("dayahead_fallback")
        [decision] = h.decisions("dayahead")
    assert event["fallback"] == "rule_based_safe_dispatch"
    assert decision["fallback"] == "rule_based_safe_dispatch"


def test_a_solver_that_stops_short_numerically_is_followed_by_another_and_said(jiuke,
                                                                                monkeypatch):
    import cvxpy as cp

    import controllers.dispatch_problem as dp

    bundle = build(jiuke, DAY, "24h", seed=0)
    dispatcher = Dispatcher(jiuke, steps=len(bundle.index), step_h=bundle.step_h)
    problem = dispatcher.problem.problem
    real = problem.solve
    calls: list[str] = []

    def solve(*args, solver=None, **kwargs):
        calls.append(solver)
        if len(calls) == 1:  # as Clarabel did on one day: NumericalError near the optimum
            raise cp.error.SolverError("Solver 'CLARABEL' failed.")
        return real(*args, solver=solver, **kwargs)

    monkeypatch.setattr(problem, "solve", solve)
    snapshot = GridSnapshot.initial(jiuke, bundle.start, sessions_at_start(bundle))
    plan = dispatcher.plan(bundle, snapshot)
    assert plan.solution.ok and plan.record.fallback is None
    assert calls[:2] == ["CLARABEL", dp._RETRIES[0][0]]
    assert any("solved after CLARABEL" in n for n in plan.record.notes)
