"""The operator's own data and settings plan the day: a forecast bundle read back plans as the one
written, each measured file changes the plan the way physics and prices say it must, a study
file overrides gridctl's defaults, and every bad input is refused before anything is written."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controllers.dayahead import run_dayahead
from forecasts import build, write_bundle
from forecasts.ev_csv import write_ev_sessions_csv
from forecasts.operator_inputs import OperatorInputs
from gridctl.cli import main
from gridctl.errors import UserInputError
from gridctl.study import load_study

DAY = dt.date(2026, 7, 15)


def _plan(model, inputs: OperatorInputs | None = None, study=None):
    inputs = inputs or OperatorInputs()
    study = study or load_study()
    bundle = inputs.bundle(model, DAY, "24h", tariff=study.tariff if study.tariff_given else None,
                           carbon_kg_per_kwh=study.carbon_kg_per_kwh)
    return run_dayahead(model, DAY, config=study.dispatch, bundle=bundle)


@pytest.fixture(scope="module")
def plain(jiuke):
    return _plan(jiuke)


def _series_csv(path: Path, index: pd.DatetimeIndex, **columns) -> Path:
    frame = pd.DataFrame({"time": [t.isoformat() for t in index], **columns})
    frame.to_csv(path, index=False)
    return path


def _hours(index: pd.DatetimeIndex, start: int, end: int) -> np.ndarray:
    return (index.hour >= start) & (index.hour < end)


def test_a_bundle_written_and_read_back_plans_the_same_schedule(jiuke, plain, tmp_path):
    write_bundle(plain.bundle, tmp_path / "fc", plot=False)
    again = _plan(jiuke, OperatorInputs(forecast_dir=tmp_path / "fc"))
    pd.testing.assert_frame_equal(again.plan.schedule.setpoint_table(),
                                  plain.plan.schedule.setpoint_table(), check_exact=True)
    assert again.kpis["cost_cny"] == plain.kpis["cost_cny"]
    assert again.bundle.provenance["forecast"] == f"bundle {tmp_path / 'fc'}"


def test_dear_evening_prices_move_ev_energy_earlier(jiuke, plain, tmp_path):
    idx = plain.bundle.index
    price = plain.bundle.price_cny_per_kwh.to_numpy().copy()
    evening = _hours(idx, 17, 23)
    price[evening] = 3.0  # three times the summer peak
    path = _series_csv(tmp_path / "prices.csv", idx, price_cny_per_kwh=price)
    dear = _plan(jiuke, OperatorInputs(prices_csv=path))
    assert dear.bundle.provenance["tariff"] == f"prices from {path}"
    ev_plain = plain.plan.schedule.ev_site_p_mw.sum(axis=1).to_numpy()
    ev_dear = dear.plan.schedule.ev_site_p_mw.sum(axis=1).to_numpy()
    before = _hours(idx, 6, 17)
    h = plain.bundle.step_h
    assert ev_dear[evening].sum() * h < ev_plain[evening].sum() * h - 0.5  # MWh
    assert ev_dear[before].sum() > ev_plain[before].sum()
    assert dear.kpis["ev_energy_short_by_grid_or_plan_mwh"] <= \
        plain.kpis["ev_energy_short_by_grid_or_plan_mwh"] + 1e-6  # still served


def test_a_measured_cloudy_day_lowers_pv_and_raises_midday_import(jiuke, plain, tmp_path):
    idx = plain.bundle.index
    cloudy = plain.bundle.pv_p_mw * 0.3
    path = _series_csv(tmp_path / "pv.csv", idx,
                       **{c: cloudy[c].to_numpy() for c in cloudy.columns})
    grey = _plan(jiuke, OperatorInputs(pv_csv=path))
    noon = _hours(idx, 10, 15)
    assert grey.plan.schedule.pv_p_mw.to_numpy().sum() <= \
        0.3 * plain.bundle.pv_p_mw.to_numpy().sum() + 1e-6
    rise_mw = (np.asarray(grey.plan.ac.import_mw)[noon].mean()
               - np.asarray(plain.plan.ac.import_mw)[noon].mean())
    removed_mw = 0.7 * plain.bundle.pv_p_mw.sum(axis=1).to_numpy()[noon].mean()
    assert rise_mw > 0.5 * removed_mw  # batteries may cover a part of what the clouds took
    assert grey.bundle.provenance["pv"] == f"measured {path}"
    # the rest of the day is gridctl's own: same load as without the file
    pd.testing.assert_frame_equal(grey.bundle.load_p_mw, plain.bundle.load_p_mw)


def test_measured_irradiance_replaces_the_weather_scenario(jiuke, plain, tmp_path):
    idx = pd.date_range("2026-07-15", periods=25, freq="1h", tz="Asia/Shanghai")
    ghi = np.clip(np.sin((idx.hour.to_numpy() - 6) / 12 * np.pi), 0, None) * 150.0  # overcast
    path = _series_csv(tmp_path / "weather.csv", idx, ghi_w_per_m2=ghi)
    dull = OperatorInputs(weather=str(path)).bundle(jiuke, DAY, "24h")
    assert dull.pv_p_mw.to_numpy().sum() < 0.25 * plain.bundle.pv_p_mw.to_numpy().sum()
    assert dull.provenance["weather"] == f"measured {path}"


def test_measured_load_raises_the_import_by_what_it_adds(jiuke, plain, tmp_path):
    idx = plain.bundle.index
    more = plain.bundle.load_p_mw * 1.1
    path = _series_csv(tmp_path / "load.csv", idx,
                       **{c: more[c].to_numpy() for c in more.columns})
    heavy = _plan(jiuke, OperatorInputs(load_csv=path))
    added_mwh = 0.1 * plain.bundle.load_p_mw.to_numpy().sum() * plain.bundle.step_h
    gained = heavy.kpis["energy_import_mwh"] - plain.kpis["energy_import_mwh"]
    assert gained == pytest.approx(added_mwh, rel=0.1)  # losses and dispatch move it a little


def test_booked_sessions_from_a_file_are_the_sessions_planned(jiuke, plain, tmp_path):
    booked = [s for s in plain.bundle.ev_sessions if s.site == "EV_DEPOT"]
    path = write_ev_sessions_csv(booked, tmp_path / "sessions.csv")
    only_depot = _plan(jiuke, OperatorInputs(sessions_csv=path))
    assert {s.id for s in only_depot.bundle.ev_sessions} == {s.id for s in booked}
    assert only_depot.plan.schedule.ev_site_p_mw.drop(columns="EV_DEPOT").abs().to_numpy() \
        .max() == 0.0
    assert only_depot.kpis["ev_energy_short_by_grid_or_plan_mwh"] == 0.0


def test_a_carbon_file_moves_charging_to_the_clean_hours_at_a_high_carbon_price(
        jiuke, plain, tmp_path):
    idx = plain.bundle.index
    clean = _hours(idx, 10, 16)  # a solar-rich grid mix at midday
    intensity = np.where(clean, 0.1, 0.9)
    path = _series_csv(tmp_path / "carbon.csv", idx, carbon_kg_per_kwh=intensity)
    bundle = OperatorInputs(carbon_csv=path).bundle(jiuke, DAY, "24h")
    np.testing.assert_array_equal(bundle.carbon_kg_per_kwh.to_numpy(), intensity)
    assert bundle.provenance["carbon"] == f"from {path}"
    study = load_study(None, {"carbon.price_cny_per_t": (3000.0, "--set")})
    green = _plan(jiuke, OperatorInputs(carbon_csv=path), study)
    share = [r.plan.schedule.ev_site_p_mw.sum(axis=1).to_numpy() for r in (plain, green)]
    assert share[1][clean].sum() / share[1].sum() > share[0][clean].sum() / share[0].sum() + 0.02
    # and the CO2 reported is counted with the file's intensity
    imported_mw = np.clip(np.asarray(green.plan.ac.import_mw), 0, None)
    assert green.kpis["co2_t"] == pytest.approx(
        float(np.sum(imported_mw * intensity) * green.bundle.step_h), rel=1e-3)


def test_a_study_file_overrides_the_defaults_and_says_where_each_value_came_from(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(
        "tariff:\n"
        "  tou:\n"
        "    - {start: '00:00', price_cny_per_kwh: 0.3}\n"
        "    - {start: '18:00', price_cny_per_kwh: 1.5}\n"
        "  demand_charge_cny_per_kw_month: 45\n"
        "carbon: {price_cny_per_t: 200}\n"
        "limits: {v_max_pu: 1.05}\n"
        "mpc: {horizon_steps: 24}\n"
        "solver: {name: HIGHS, time_limit_s: 30}\n", encoding="utf-8")
    study = load_study(path, {"limits.v_min_pu": (0.95, "--set limits.v_min_pu")})
    assert study.dispatch.v_max_pu == 1.05 and study.dispatch.v_min_pu == 0.95
    assert study.dispatch.solver == "HIGHS" and study.dispatch.solver_time_limit_s == 30
    assert study.dispatch.weights.carbon_cny_per_t == 200
    assert study.dispatch.weights.peak_cny_per_mw == pytest.approx(45 * 1000 / 30)
    assert study.horizon_steps == 24
    idx = pd.date_range("2026-07-15", periods=96, freq="15min", tz="Asia/Shanghai")
    price = study.tariff.import_price(idx)
    assert price.iloc[0] == 0.3 and price[idx.hour == 18].eq(1.5).all()
    assert study.origin("limits.v_max_pu") == f"file {path}"
    assert study.origin("limits.v_min_pu") == "flag --set limits.v_min_pu"
    assert study.origin("weights.peak_cny_per_mw").startswith("derived from tariff.")
    assert study.origin("weights.energy") == "default"


def test_a_typo_in_a_study_key_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("weights:\n  curtailment_cny_per_mwh: 50\n  peak_cny_mw: 900\n")
    with pytest.raises(UserInputError) as err:
        load_study(path)
    assert err.value.source == str(path) and err.value.field == "weights.peak_cny_mw"
    assert "peak_cny_per_mw" in str(err.value)  # the keys it could have meant


def test_config_show_prints_each_setting_with_its_origin(tmp_path, capsys):
    path = tmp_path / "study.yaml"
    path.write_text("tariff: {flat_price_cny_per_kwh: 0.7}\n")
    code = main(["config", "show", "--config", str(path), "--set", "solver.name=HIGHS",
                 "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tariff.flat_price_cny_per_kwh"] == {"value": 0.7, "from": f"file {path}"}
    assert shown["solver.name"] == {"value": "HIGHS", "from": "flag --set solver.name"}
    assert shown["limits.v_min_pu"] == {"value": 0.93, "from": "default"}


def test_a_solve_cut_short_by_the_study_time_limit_is_a_fallback_exit_3(tmp_path, capsys):
    out = tmp_path / "da"
    code = main(["dayahead", "--out", str(out), "--json", "--set", "solver.time_limit_s=0.001"])
    assert code == 3
    summary = json.loads(capsys.readouterr().out)
    assert summary["verdict"].startswith("FALLBACK rule_based_safe_dispatch")
    decision = json.loads((out / "decision.json").read_text(encoding="utf-8"))
    assert decision["study"]["solver.time_limit_s"] == {
        "value": 0.001, "from": "flag --set solver.time_limit_s"}


def _other_grids_bundle(tmp_path: Path) -> Path:
    from network_models import load_model

    other = load_model("case33bw")
    write_bundle(build(other, DAY, "24h"), tmp_path / "other", plot=False)
    return tmp_path / "other"


def _prices(tmp_path: Path, value: float, hours: int = 25) -> Path:
    idx = pd.date_range("2026-07-15", periods=hours, freq="1h", tz="Asia/Shanghai")
    return _series_csv(tmp_path / "prices.csv", idx, price_cny_per_kwh=[value] * hours)


@pytest.mark.parametrize("case, args, names", [
    ("no such bundle", lambda p: ["--forecast", str(p / "nowhere")], ("nowhere", "folder")),
    ("another grid's bundle", lambda p: ["--forecast", str(_other_grids_bundle(p))],
     ("pv_p_mw.csv", "expected one column per device of the model")),
    ("prices in CNY/MWh", lambda p: ["--prices", str(_prices(p, 650.0))],
     ("prices.csv", "row 2", "price_cny_per_kwh", "CNY/MWh")),
    ("prices ending at noon", lambda p: ["--prices", str(_prices(p, 0.6, hours=12))],
     ("prices.csv", "does not cover the horizon")),
    ("a study key misspelt",
     lambda p: ["--config", str(_write(p / "s.yaml", "solver:\n  nme: X\n"))],
     ("s.yaml", "solver.nme", "unknown key")),
    ("a --set without a value", lambda p: ["--set", "solver.name"],
     ("--set", "SECTION.KEY=VALUE")),
    ("sessions at an unknown site", lambda p: ["--sessions", str(_write(
        p / "ev.csv", "sessionID,stationID,connectionTime,disconnectTime,kWhDelivered\n"
        "a,NOWHERE,2026-07-15T08:00:00+08:00,2026-07-15T12:00:00+08:00,10\n"))],
     ("ev.csv", "row 2", "stationID", "NOWHERE")),
    ("a weather scenario misspelt", lambda p: ["--weather", "sunny"], ("sunny",)),
])
def test_bad_operator_input_is_refused_naming_it_and_nothing_is_written(
        tmp_path, capsys, case, args, names):
    out = tmp_path / "out"
    code = main(["dayahead", "--out", str(out), *args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, case
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    for name in names:
        assert name in err, (case, err)
    assert not out.exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
