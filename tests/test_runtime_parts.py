"""The runtime's parts as it is assembled: the forecast source it is given is what it plans on."""

import datetime as dt

import pandas as pd

from gridctl.runtime import ControllerRuntime, RuntimeConfig
from gridctl.runtime_forecast import ModelForecasts

DAY = dt.date(2026, 7, 15)


def _runtime(model, tmp_path, **kw):
    config = RuntimeConfig(endpoint="opc.tcp://127.0.0.1:4840", db_path=tmp_path / "h.sqlite")
    return ControllerRuntime(model, config, **kw)


def test_the_default_forecast_covers_the_mpc_horizon_on_the_control_step(jiuke, tmp_path):
    runtime = _runtime(jiuke, tmp_path)
    try:
        assert isinstance(runtime.forecasts, ModelForecasts)
        now = pd.Timestamp("2026-07-15 08:00", tz="Asia/Shanghai")
        bundle = runtime.forecasts.step_forecast(now)
        step = pd.Timedelta(minutes=runtime.config.step_minutes)
        assert bundle.index[0] == now
        assert bundle.index[1] - bundle.index[0] == step
        assert len(bundle.index) >= runtime.config.horizon_steps
    finally:
        runtime.historian.close()


def test_the_day_ahead_plans_on_the_forecast_source_it_is_given(jiuke, tmp_path, monkeypatch):
    given = object()

    class Source:
        def step_forecast(self, now):
            raise AssertionError("not asked for in this test")

        def day_forecast(self, day):
            assert day == DAY
            return given

    seen = {}

    def plan(day, bundle):
        seen["day"], seen["bundle"] = day, bundle
        return "plan"

    runtime = _runtime(jiuke, tmp_path, forecasts=Source())
    monkeypatch.setattr(runtime.dayahead_process, "plan", plan)
    try:
        assert runtime._day_ahead(DAY) == "plan"
        assert seen == {"day": DAY, "bundle": given}
    finally:
        runtime.historian.close()


def test_the_day_ahead_process_plans_what_the_runtime_process_would(jiuke):
    """The day's plan made in its own process is the plan made here, to the figure."""
    from controllers.dayahead import run_dayahead
    from forecasts.bundle import build
    from forecasts.timegrid import local_days
    from gridctl.planner_dayahead import DayAheadProcess

    start, horizon = local_days(DAY, 1, jiuke.site.timezone)
    bundle = build(jiuke, start, horizon, "15min")
    here = run_dayahead(jiuke, DAY, bundle=bundle)
    there = DayAheadProcess(jiuke, timeout_s=600.0).plan(DAY, bundle)
    assert there.plan.record.status == here.plan.record.status == "optimal"
    keep = {k: v for k, v in here.kpis.items() if not k.endswith("_s")}
    assert {k: v for k, v in there.kpis.items() if not k.endswith("_s")} == keep
    pd.testing.assert_frame_equal(there.plan.schedule.setpoint_table(),
                                  here.plan.schedule.setpoint_table())


def test_a_day_ahead_plan_past_its_time_is_ended_and_said(jiuke):
    import pytest

    from forecasts.bundle import build
    from forecasts.timegrid import local_days
    from gridctl.planner import PlannerError
    from gridctl.planner_dayahead import DayAheadProcess

    start, horizon = local_days(DAY, 1, jiuke.site.timezone)
    worker = DayAheadProcess(jiuke, timeout_s=0.05)  # less than a plan can take
    with pytest.raises(PlannerError, match=r"no day-ahead plan within 0\.05 s"):
        worker.plan(DAY, build(jiuke, start, horizon, "15min"))
    assert worker._process is None  # ended, not left running
    worker.close()
    with pytest.raises(PlannerError, match="shut down"):
        worker.plan(DAY, build(jiuke, start, horizon, "15min"))
