"""PV physics: night, solar noon, clear-sky yield, clipping and weather, with pvlib."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest

from forecasts.pv import pv_available_mw, sky_at_site
from forecasts.weather import WeatherScenario, read_weather_csv, simulate_weather
from network_models.model import Site
from network_models.registry import ElementRef, ElementTable, PvSystem

JIUTING = Site(name="Jiuting", latitude_deg=31.13, longitude_deg=121.32)
STEP = pd.Timedelta("15min")


def pv_system(pv_id: str = "pv", *, p_mwp: float = 1.0, s_mva: float = 1.1, tilt: float = 20.0,
              azimuth: float = 180.0) -> PvSystem:
    return PvSystem(id=pv_id, bus="b", element=ElementRef(table=ElementTable.SGEN, index=0),
                    p_mwp=p_mwp, s_mva=s_mva, tilt_deg=tilt, azimuth_deg=azimuth)


def day_index(day: str, days: int = 1) -> pd.DatetimeIndex:
    return pd.date_range(day, periods=96 * days, freq=STEP, tz="Asia/Shanghai")


def pv_of(day: str, systems: list[PvSystem], scenario: WeatherScenario, seed: int = 0,
          days: int = 1) -> pd.DataFrame:
    mid = day_index(day, days) + STEP / 2
    weather = simulate_weather(mid, STEP, scenario, seed)
    sky = sky_at_site(JIUTING, mid)
    return pv_available_mw(systems, sky, weather.clear_sky_index * sky.ghi_clear_w_per_m2,
                           weather.temperature_c)


def test_pv_is_zero_between_sunset_and_sunrise() -> None:
    p = pv_of("2026-07-15", [pv_system()], WeatherScenario.CLEAR)["pv"]
    sun = pvlib.location.Location(31.13, 121.32, "Asia/Shanghai").get_solarposition(p.index)
    night = sun["elevation"].to_numpy() < -1.0
    assert night.sum() > 30
    assert (p.to_numpy()[night] == 0.0).all()
    assert (p.to_numpy() >= 0.0).all()


@pytest.mark.parametrize("day", ["2026-03-20", "2026-07-15", "2026-12-21"])
def test_clear_day_pv_peaks_within_an_hour_of_solar_noon(day: str) -> None:
    p = pv_of(day, [pv_system()], WeatherScenario.CLEAR)["pv"]
    transit = pvlib.solarposition.sun_rise_set_transit_spa(
        pd.DatetimeIndex([pd.Timestamp(day, tz="Asia/Shanghai")]), 31.13, 121.32
    )["transit"].iloc[0]
    assert abs((p.idxmax() - transit) / pd.Timedelta(hours=1)) < 1.0


def test_clear_sky_yield_of_a_20_degree_south_system_in_mid_july_is_5_to_8_kwh_per_kwp() -> None:
    mid = day_index("2026-07-15") + STEP / 2
    sky = sky_at_site(JIUTING, mid)
    temperature = simulate_weather(mid, STEP, WeatherScenario.CLEAR, 0).temperature_c
    p = pv_available_mw([pv_system(p_mwp=1.0, s_mva=1.1)], sky, sky.ghi_clear_w_per_m2,
                        temperature)["pv"]
    kwh_per_kwp = p.sum() * 0.25  # MWh per MWp == kWh per kWp
    assert 5.0 <= kwh_per_kwp <= 8.0


def test_inverter_clips_at_its_rating() -> None:
    small_inverter = pv_system("small", p_mwp=1.0, s_mva=0.5)
    big_inverter = pv_system("big", p_mwp=1.0, s_mva=1.1)
    p = pv_of("2026-07-15", [small_inverter, big_inverter], WeatherScenario.CLEAR)
    assert p["small"].max() == pytest.approx(0.5, abs=1e-9)
    assert (p["big"] > 0.5).sum() >= 8  # it would have produced more for two hours or longer
    assert (p["big"] <= 1.1).all()


def test_output_scales_with_the_rating() -> None:
    p = pv_of("2026-07-15", [pv_system("one", p_mwp=1.0, s_mva=2.0),
                             pv_system("two", p_mwp=2.0, s_mva=4.0)], WeatherScenario.CLEAR)
    np.testing.assert_allclose(p["two"], 2.0 * p["one"], rtol=1e-9)


def test_a_north_facing_roof_yields_less_than_a_south_facing_one_in_winter() -> None:
    p = pv_of("2026-12-21", [pv_system("south", azimuth=180.0), pv_system("north", azimuth=0.0)],
              WeatherScenario.CLEAR)
    assert p["north"].sum() < 0.8 * p["south"].sum()


def test_clouds_reduce_the_yield_in_the_expected_order() -> None:
    systems = [pv_system()]
    yields = {s: pv_of("2026-07-10", systems, s, days=7)["pv"].sum() for s in (
        WeatherScenario.CLEAR, WeatherScenario.PARTLY_CLOUDY, WeatherScenario.OVERCAST)}
    assert (yields[WeatherScenario.CLEAR] > yields[WeatherScenario.PARTLY_CLOUDY]
            > yields[WeatherScenario.OVERCAST] > 0.0)
    assert yields[WeatherScenario.OVERCAST] < 0.5 * yields[WeatherScenario.CLEAR]


def test_partly_cloudy_pv_ramps_more_than_clear_pv() -> None:
    clear = pv_of("2026-07-15", [pv_system()], WeatherScenario.CLEAR)["pv"]
    cloudy = pv_of("2026-07-15", [pv_system()], WeatherScenario.PARTLY_CLOUDY)["pv"]
    assert cloudy.diff().abs().max() > 2.0 * clear.diff().abs().max()


def test_measured_irradiance_drives_pv(tmp_path) -> None:
    idx = day_index("2026-07-15")
    ghi = np.where((idx.hour >= 10) & (idx.hour < 14), 800.0, 0.0)
    path = tmp_path / "ghi.csv"
    pd.DataFrame({"time": [t.isoformat() for t in idx], "ghi_w_per_m2": ghi,
                  "temp_air_c": 30.0}).to_csv(path, index=False)
    measured = read_weather_csv(path)
    mid = idx + STEP / 2
    sky = sky_at_site(JIUTING, mid)
    frame = measured.frame.reindex(idx)
    p = pv_available_mw([pv_system()], sky, frame["ghi_w_per_m2"].to_numpy(),
                        frame["temp_air_c"].to_numpy())["pv"]
    assert (p[(idx.hour < 10) | (idx.hour >= 14)] == 0.0).all()
    assert p[(idx.hour >= 11) & (idx.hour < 13)].min() > 0.4
