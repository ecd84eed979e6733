"""Customer load by class: day types, seasons, data-centre cooling, limits, SimBench, CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts.errors import ForecastInputError
from forecasts.load import class_fraction, reactive_mvar, read_load_csv, synthetic_load_mw
from forecasts.simbench_profiles import simbench_load_mw
from forecasts.weather import WeatherScenario, air_temperature_c
from network_models.registry import CustomerClass, ElementRef, ElementTable, Load

STEP = pd.Timedelta("15min")


def load(load_id: str, customer_class: CustomerClass, p_peak_mw: float = 2.0,
         power_factor: float = 0.95) -> Load:
    return Load(id=load_id, bus="b", element=ElementRef(table=ElementTable.LOAD, index=0),
                customer_class=customer_class, p_peak_mw=p_peak_mw, power_factor=power_factor)


ALL_CLASSES = [load(c.value, c) for c in CustomerClass]


def days(start: str, n: int = 1) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=96 * n, freq=STEP, tz="Asia/Shanghai") + STEP / 2


def synthetic(start: str, n: int = 1, seed: int = 0,
              scenario: WeatherScenario = WeatherScenario.CLEAR) -> pd.DataFrame:
    t = days(start, n)
    return synthetic_load_mw(ALL_CLASSES, t, STEP, air_temperature_c(t, scenario, seed), seed)


def test_office_weekday_load_exceeds_weekend_load() -> None:
    week = synthetic("2026-04-13", 7)["office"]  # Monday..Sunday
    weekday = week[week.index.dayofweek < 5].mean()
    weekend = week[week.index.dayofweek >= 5].mean()
    assert weekday > 1.8 * weekend


def test_office_peaks_in_working_hours_and_residential_in_the_evening() -> None:
    day = synthetic("2026-04-15")  # a Wednesday
    assert 9 <= day["office"].idxmax().hour < 17
    assert 18 <= day["residential"].idxmax().hour <= 22


@pytest.mark.parametrize("customer_class", [CustomerClass.OFFICE, CustomerClass.RESIDENTIAL,
                                            CustomerClass.COMMERCE])
def test_summer_air_conditioning_raises_load_above_spring(customer_class: CustomerClass) -> None:
    summer = synthetic("2026-07-13", 7)[customer_class.value].sum()
    spring = synthetic("2026-04-13", 7)[customer_class.value].sum()
    assert summer > 1.15 * spring


def test_data_centre_load_follows_temperature() -> None:
    t = days("2026-04-15")
    cool = class_fraction(CustomerClass.DATA_CENTRE, t, np.full(len(t), 10.0))
    hot = class_fraction(CustomerClass.DATA_CENTRE, t, np.full(len(t), 36.0))
    assert np.all(hot > 1.2 * cool)
    week = synthetic("2026-07-13", 7)
    temperature = air_temperature_c(days("2026-07-13", 7), WeatherScenario.CLEAR, 0)
    assert np.corrcoef(week["data_centre"], temperature)[0, 1] > 0.5


def test_load_stays_between_zero_and_its_peak_on_a_hot_day() -> None:
    t = days("2026-07-15")
    frame = synthetic_load_mw(ALL_CLASSES, t, STEP, np.full(len(t), 40.0), seed=3)
    assert (frame >= 0.0).all().all()
    assert (frame <= 2.0 + 1e-12).all().all()
    assert frame.max().max() > 1.9  # the design day reaches the peak


def test_same_seed_gives_the_same_noise_and_another_seed_does_not() -> None:
    pd.testing.assert_frame_equal(synthetic("2026-07-15", seed=5), synthetic("2026-07-15", seed=5))
    assert not synthetic("2026-07-15", seed=5).equals(synthetic("2026-07-15", seed=6))


def test_reactive_power_follows_the_power_factor() -> None:
    loads = [load("a", CustomerClass.OFFICE, power_factor=0.9)]
    p = pd.DataFrame({"a": [1.0, 2.0]})
    q = reactive_mvar(loads, p)
    np.testing.assert_allclose(q["a"], p["a"] * np.tan(np.arccos(0.9)))


@pytest.fixture(scope="module")
def simbench_week() -> pd.DataFrame:
    idx = pd.date_range("2026-01-05", periods=96 * 7, freq=STEP, tz="Asia/Shanghai")
    return simbench_load_mw(ALL_CLASSES, idx)


def test_simbench_shapes_are_scaled_to_each_load_peak(simbench_week: pd.DataFrame) -> None:
    assert (simbench_week >= 0.0).all().all()
    assert (simbench_week <= 2.0 + 1e-12).all().all()
    assert simbench_week.std().min() > 0.0


def test_simbench_office_shape_keeps_weekends_as_weekends(simbench_week: pd.DataFrame) -> None:
    office = simbench_week["office"]
    weekday = office[office.index.dayofweek < 5].mean()
    weekend = office[office.index.dayofweek >= 5].mean()
    assert weekday > 2.0 * weekend


def write_csv(path, rows: dict) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


def test_load_csv_is_read_per_load_id(tmp_path) -> None:
    path = tmp_path / "load.csv"
    write_csv(path, {"time": ["2026-07-15 00:00", "2026-07-15 00:15"], "office": [1.0, 1.5]})
    frame = read_load_csv(path, [load("office", CustomerClass.OFFICE)])
    assert frame.index.tz is not None
    assert frame["office"].tolist() == [1.0, 1.5]


@pytest.mark.parametrize(
    ("times", "values", "row", "column", "what"),
    [
        (["2026-07-15 00:15", "2026-07-15 00:00"], [1.0, 1.0], 3, "time", "earlier"),
        (["2026-07-15 00:00", "2026-07-15 00:00"], [1.0, 1.0], 3, "time", "duplicated"),
        (["2026-07-15 00:00", "2026-07-15 00:15"], [1.0, float("nan")], 3, "office", "NaN"),
        (["2026-07-15 00:00", "2026-07-15 00:15"], [1.0, -0.5], 3, "office", "≥ 0"),
        (["2026-07-15 00:00", "yesterday-ish"], [1.0, 1.0], 3, "time", "expected a date"),
    ],
)
def test_bad_load_csv_is_refused_naming_file_row_and_column(
    tmp_path, times: list, values: list, row: int, column: str, what: str
) -> None:
    path = tmp_path / "load.csv"
    write_csv(path, {"time": times, "office": values})
    with pytest.raises(ForecastInputError, match=what) as err:
        read_load_csv(path, [load("office", CustomerClass.OFFICE)])
    assert err.value.source == str(path)
    assert err.value.row == row
    assert err.value.field == column


def test_load_csv_without_a_column_for_a_load_is_refused(tmp_path) -> None:
    path = tmp_path / "load.csv"
    write_csv(path, {"time": ["2026-07-15 00:00"], "office": [1.0]})
    with pytest.raises(ForecastInputError, match="missing column") as err:
        read_load_csv(path, [load("office", CustomerClass.OFFICE),
                             load("flats", CustomerClass.RESIDENTIAL)])
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 1, "flats")
