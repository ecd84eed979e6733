"""A measured day replayed: the simulator's truth and the runtime's forecasts come from the
operator's files where they cover the day, from gridctl's own models where they do not, and the
runtime plans with the study's settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasts import build
from forecasts.operator_inputs import OperatorInputs
from gridctl.runtime import ControllerRuntime, RuntimeConfig, planner_for
from gridctl.study import load_study
from hil_sim.truth import FieldTruth

DAY = dt.date(2026, 7, 15)


@pytest.fixture(scope="module")
def measured_load(jiuke, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A measured load day: gridctl's own day with every load 30 % higher in the evening."""
    own = build(jiuke, DAY, "24h").load_p_mw
    evening = (own.index.hour >= 17) & (own.index.hour < 22)
    measured = own.copy()
    measured.loc[evening] *= 1.3
    path = tmp_path_factory.mktemp("replay") / "load.csv"
    # one row more at midnight: the file covers the whole day's last step
    last = measured.iloc[[-1]].set_axis([measured.index[-1] + pd.Timedelta(minutes=15)])
    table = pd.concat([measured, last])
    table.index = [t.isoformat() for t in table.index]
    table.rename_axis("time").to_csv(path)
    return path, measured


def test_the_simulator_replays_the_measured_load(jiuke, measured_load):
    path, measured = measured_load
    truth = FieldTruth(jiuke, inputs=OperatorInputs(load_csv=path))
    t = pd.Timestamp("2026-07-15 19:07:30", tz="Asia/Shanghai")  # a step's midpoint
    sample = truth.at(t)
    expected = measured.loc[pd.Timestamp("2026-07-15 19:00", tz="Asia/Shanghai")].to_numpy()
    np.testing.assert_allclose(sample.load_p_mw, expected, rtol=1e-9)
    own = FieldTruth(jiuke).at(t)
    assert sample.load_p_mw.sum() == pytest.approx(1.3 * own.load_p_mw.sum(), rel=1e-6)


def test_a_day_the_files_do_not_cover_comes_from_the_models(jiuke, measured_load):
    path, _ = measured_load
    truth = FieldTruth(jiuke, inputs=OperatorInputs(load_csv=path))
    t = pd.Timestamp("2026-07-16 19:07:30", tz="Asia/Shanghai")
    np.testing.assert_allclose(truth.at(t).load_p_mw, FieldTruth(jiuke).at(t).load_p_mw)


def test_the_runtime_forecasts_the_measured_day_and_plans_with_the_study(
        jiuke, measured_load, tmp_path):
    path, measured = measured_load
    study = load_study(None, {"limits.v_min_pu": (0.95, "--set"),
                              "mpc.horizon_steps": (8, "--horizon")})
    config = RuntimeConfig(endpoint="opc.tcp://127.0.0.1:4840", db_path=tmp_path / "h.sqlite",
                           horizon_steps=study.horizon_steps,
                           inputs=OperatorInputs(load_csv=path), dispatch=study.dispatch)
    runtime = ControllerRuntime(jiuke, config)
    try:
        scenario = runtime._truth_and_forecasts(DAY, 2, "15min")
        first_day = scenario.truth.load_p_mw.loc[measured.index]
        pd.testing.assert_frame_equal(first_day, measured, check_freq=False)
        assert planner_for(jiuke, config).config.v_min_pu == 0.95
        assert runtime.planner.horizon_steps == 8
    finally:
        runtime.historian.close()
