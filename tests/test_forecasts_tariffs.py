"""Shanghai TOU prices exactly as GRID.md (沪发改价管〔2022〕50号) and carbon intensity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts.carbon import carbon_intensity
from forecasts.errors import ForecastInputError
from forecasts.tariffs import Tariff, TouPeriod, tou_multiplier, tou_period

FLAT = 0.65


def at(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps)).tz_localize("Asia/Shanghai")


def price(stamp: str, flat: float = FLAT) -> float:
    return float(Tariff(flat_price_cny_per_kwh=flat).import_price(at(stamp)).iloc[0])


def test_price_of_2026_07_15_at_13h_is_the_critical_peak_price() -> None:
    assert tou_period(at("2026-07-15 13:00"))[0] == TouPeriod.CRITICAL_PEAK
    assert price("2026-07-15 13:00") == pytest.approx(FLAT * 1.8 * 1.25)


def test_price_of_2026_03_10_at_13h_is_the_flat_price() -> None:
    assert tou_period(at("2026-03-10 13:00"))[0] == TouPeriod.FLAT
    assert price("2026-03-10 13:00") == pytest.approx(FLAT)


@pytest.mark.parametrize(
    ("stamp", "period"),
    [
        # Jul–Sep: peak 08–15 and 18–21; flat 06–08, 15–18, 21–22; valley 22–06.
        ("2026-09-10 05:45", TouPeriod.VALLEY),
        ("2026-09-10 06:00", TouPeriod.FLAT),
        ("2026-09-10 08:00", TouPeriod.PEAK),
        ("2026-09-10 13:00", TouPeriod.PEAK),  # no critical peak in September
        ("2026-09-10 14:45", TouPeriod.PEAK),
        ("2026-09-10 15:00", TouPeriod.FLAT),
        ("2026-09-10 18:00", TouPeriod.PEAK),
        ("2026-09-10 21:00", TouPeriod.FLAT),
        ("2026-09-10 22:00", TouPeriod.VALLEY),
        # other months: peak 08–11 and 18–21; flat 06–08, 11–18, 21–22.
        ("2026-04-10 10:45", TouPeriod.PEAK),
        ("2026-04-10 11:00", TouPeriod.FLAT),
        ("2026-04-10 17:45", TouPeriod.FLAT),
        ("2026-04-10 20:45", TouPeriod.PEAK),
        ("2026-04-10 23:00", TouPeriod.VALLEY),
        # critical peak: Jul–Aug 12–14, Jan/Dec 19–21.
        ("2026-08-01 12:00", TouPeriod.CRITICAL_PEAK),
        ("2026-08-01 14:00", TouPeriod.PEAK),
        ("2026-01-20 19:30", TouPeriod.CRITICAL_PEAK),
        ("2026-12-20 20:45", TouPeriod.CRITICAL_PEAK),
        ("2026-12-20 18:30", TouPeriod.PEAK),
        ("2026-02-20 19:30", TouPeriod.PEAK),
    ],
)
def test_period_of_each_hour_follows_the_published_table(stamp: str, period: TouPeriod) -> None:
    assert tou_period(at(stamp))[0] == period


@pytest.mark.parametrize(
    ("stamp", "multiplier"),
    [
        ("2026-01-05 09:00", 1.8), ("2026-01-05 03:00", 0.4),
        ("2026-12-05 09:00", 1.8), ("2026-08-05 03:00", 0.4),
        ("2026-04-05 09:00", 1.6), ("2026-04-05 03:00", 0.5),
        ("2026-11-05 19:00", 1.6), ("2026-06-05 23:00", 0.5),
        ("2026-07-05 12:15", 1.8 * 1.25), ("2026-12-05 19:15", 1.8 * 1.25),
    ],
)
def test_multipliers_on_the_flat_price_depend_on_the_month(stamp: str, multiplier: float) -> None:
    assert tou_multiplier(at(stamp))[0] == pytest.approx(multiplier)


def test_flat_price_is_a_parameter() -> None:
    assert price("2026-07-15 13:00", flat=0.70) == pytest.approx(0.70 * 1.8 * 1.25)


def test_export_price_and_demand_charge_are_optional() -> None:
    idx = at("2026-07-15 13:00", "2026-07-15 13:15")
    assert Tariff().export_price(idx) is None
    export = Tariff(export_price_cny_per_kwh=0.4155).export_price(idx)
    assert export is not None and (export == 0.4155).all()


def test_carbon_intensity_defaults_to_0_42_kg_per_kwh() -> None:
    idx = pd.date_range("2026-07-15", periods=4, freq="15min", tz="Asia/Shanghai")
    assert (carbon_intensity(idx) == 0.42).all()


def test_a_carbon_series_is_held_from_each_of_its_times() -> None:
    idx = pd.date_range("2026-07-15", periods=8, freq="15min", tz="Asia/Shanghai")
    series = pd.Series([0.5, 0.3], index=idx[[0, 4]])
    np.testing.assert_allclose(carbon_intensity(idx, series), [0.5] * 4 + [0.3] * 4)


def test_a_carbon_series_starting_after_the_horizon_is_refused() -> None:
    idx = pd.date_range("2026-07-15", periods=8, freq="15min", tz="Asia/Shanghai")
    with pytest.raises(ForecastInputError, match="starts after"):
        carbon_intensity(idx, pd.Series([0.5], index=idx[[2]]))
