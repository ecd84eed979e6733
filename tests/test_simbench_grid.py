"""SimBench grids load offline with their own profiles, and devices on them are dispatched."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forecasts
from forecasts.simbench_profiles import simbench_profile_file
from gridctl.cli import main
from network_models import ModelError, load_model

CODE = "1-MV-urban--0-sw"
EXAMPLE = Path(__file__).parents[1] / "examples" / "simbench_mv"
DAY = dt.date(2026, 7, 15)  # a Wednesday: SimBench's 13 July 2016, the Wednesday nearest


@pytest.fixture(scope="module")
def grid():
    return load_model(f"simbench:{CODE}")


@pytest.fixture(scope="module")
def example():
    return load_model(f"simbench:{CODE}", devices=EXAMPLE / "simbench_mv.devices.yaml")


def test_an_unknown_code_is_refused_naming_it_and_valid_ones():
    with pytest.raises(ModelError) as info:
        load_model("simbench:1-MV-urbn--0-sw")
    text = str(info.value)
    assert "'1-MV-urbn--0-sw'" in text and "1-MV-urban--0-sw" in text
    assert "collect_all_simbench_codes" in text


def test_the_grid_is_named_checked_and_registered(grid):
    assert grid.name == CODE and grid.source == f"simbench:{CODE}"
    assert len(grid.net.bus) == 144 and grid.net.bus["name"].is_unique
    # 133 aggregated LV generators are PV; the MV hydro plant is metered, not dispatched
    assert len(grid.registry.pv) == 133
    assert len(grid.registry.loads) == 139
    assert "profiles" not in grid.net  # studies copy the net, not a year of series


def test_profiles_cover_every_load_and_pv_for_a_leap_year_of_15_min(grid):
    p = grid.profiles
    assert p is not None and p.year == 2016 and p.step_minutes == 15
    assert p.load_p_mw.shape == (366 * 96, 139) and p.pv_p_mw.shape == (366 * 96, 133)
    assert set(p.load_p_mw.columns) == {ld.id for ld in grid.registry.loads}
    assert "simbench 1.6" in p.source


def test_load_follows_the_shipped_profile_on_the_same_weekday(grid):
    bundle = forecasts.build(grid, DAY, "24h")
    assert bundle.provenance["load"] == f"SimBench profiles of {CODE} (simbench 1.6.3)"
    assert bundle.provenance["pv"] == bundle.provenance["load"]
    load = next(ld for ld in grid.registry.loads if ld.description == "MV3.101 Load 2")
    profile = grid.net.load.at[load.element.index, "profile"]
    shipped = pd.read_csv(simbench_profile_file(), sep=";", usecols=["time", f"{profile}_pload"])
    noon = shipped.loc[shipped["time"] == "13.07.2016 12:00", f"{profile}_pload"].item()
    at_noon = bundle.load_p_mw.loc[bundle.index.hour == 12, load.id].iloc[0]
    assert at_noon == pytest.approx(noon * load.p_peak_mw, rel=1e-5)


def test_explicit_weather_or_a_pv_csv_or_a_load_source_override_the_profiles(grid, tmp_path):
    own = forecasts.build(grid, DAY, "24h")
    clear = forecasts.build(grid, DAY, "24h", weather="clear")
    assert clear.provenance["pv"] == "pvlib, weather clear (seed 0)"
    assert not np.allclose(clear.pv_p_mw.to_numpy(), own.pv_p_mw.to_numpy())
    csv = tmp_path / "pv.csv"
    times = pd.date_range(pd.Timestamp(DAY, tz=grid.site.timezone), periods=26, freq="1h")
    frame = pd.DataFrame({pv.id: 0.001 for pv in grid.registry.pv}, index=times)
    frame.rename_axis("time").reset_index().assign(time=lambda f: f["time"].map(
        pd.Timestamp.isoformat)).to_csv(csv, index=False)
    measured = forecasts.build(grid, DAY, "24h", pv_csv=csv)
    assert measured.provenance["pv"] == f"measured {csv}"
    assert np.allclose(measured.pv_p_mw.to_numpy(), 0.001)
    synthetic = forecasts.build(grid, DAY, "24h", load_source="synthetic")
    assert synthetic.provenance["load"].startswith("synthetic class shapes")
    assert own.provenance["load"].startswith("SimBench profiles")


def test_devices_file_pv_comes_from_pvlib_beside_the_grids_profiles(grid, tmp_path):
    devices = tmp_path / "pv.devices.yaml"
    devices.write_text("schema_version: 1\npv: [{name: pv_new, bus: 'MV3.101 Bus 50', "
                       "p_mwp: 1.0, s_mva: 1.0}]\n", encoding="utf-8")
    model = load_model(f"simbench:{CODE}", devices=devices)
    bundle = forecasts.build(model, DAY, "24h")
    assert bundle.provenance["pv"].endswith("; pvlib, weather clear (seed 0), for pv_new")
    assert bundle.pv_p_mw["pv_new"].max() > 0.5  # a clear July noon
    assert list(bundle.pv_p_mw.columns) == [pv.id for pv in model.registry.pv]


def test_the_worked_example_plans_below_the_baseline_and_holds_the_limits(
        example, tmp_path, capsys):
    # the README's command, as an operator runs it
    assert example.site.timezone == "Europe/Berlin"
    assert len(example.registry.bess) == 2 and len(example.registry.ev_sites) == 3
    out = tmp_path / "da"
    code = main(["dayahead", "--model", f"simbench:{CODE}", "--devices",
                 str(EXAMPLE / "simbench_mv.devices.yaml"), "--sessions",
                 str(EXAMPLE / "sessions.csv"), "--date", DAY.isoformat(), "--out", str(out),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    plan = json.loads(captured.out)
    base = plan["baseline"]
    assert plan["verdict"] == "optimal, AC validated" and plan["ac_violations"] == 0
    assert plan["ev_sessions"] >= 300
    assert plan["cost_cny"] < base["cost_cny"] * 0.95
    assert plan["peak_import_mw"] < base["peak_import_mw"] - 1.0
    assert plan["ev_energy_short_by_grid_or_plan_mwh"] < 1e-3
    decision = json.loads((out / "decision.json").read_text(encoding="utf-8"))
    assert decision["inputs"] == {"sessions": str(EXAMPLE / "sessions.csv")}
    assert decision["forecast_provenance"]["load"].startswith(f"SimBench profiles of {CODE}")
    assert "of 3549 sessions are not plugged in" in captured.err  # the file's other days
