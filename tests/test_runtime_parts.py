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
    import controllers.dayahead

    given = object()

    class Source:
        def step_forecast(self, now):
            raise AssertionError("not asked for in this test")

        def day_forecast(self, day):
            assert day == DAY
            return given

    seen = {}

    def run_dayahead(model, day, *, bundle, config):
        seen["bundle"] = bundle
        return "plan"

    monkeypatch.setattr(controllers.dayahead, "run_dayahead", run_dayahead)
    runtime = _runtime(jiuke, tmp_path, forecasts=Source())
    try:
        assert runtime._day_ahead(DAY) == "plan"
        assert seen["bundle"] is given
    finally:
        runtime.historian.close()
