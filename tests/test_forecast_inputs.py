"""Measured series a person gives (load, PV, carbon, weather): refused where physics or units
say they cannot be, naming the file, row and column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_forecasts_bundle import small_model

from forecasts import build, read_carbon_csv
from forecasts.errors import ForecastInputError
from forecasts.load import read_load_csv
from forecasts.pv import read_pv_power_csv

MODEL = small_model()
TIMES = pd.date_range("2026-07-15", periods=25, freq="1h")


def _csv(tmp_path: Path, name: str, columns: dict, times=TIMES) -> Path:
    path = tmp_path / name
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M:%S+08:00"), **columns})
    frame.to_csv(path, index=False)
    return path


def test_measured_pv_above_its_inverters_rating_is_refused(tmp_path):
    # pv_east has a 0.5 MVA inverter: 0.6 MW cannot come out of it
    path = _csv(tmp_path, "pv.csv", {"pv_south": 0.5, "pv_east": [0.2] * 10 + [0.6] + [0.2] * 14})
    with pytest.raises(ForecastInputError) as err:
        read_pv_power_csv(path, MODEL.registry.pv)
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 12, "pv_east")
    assert "inverter" in str(err.value)


def test_measured_pv_within_its_rating_is_read(tmp_path):
    path = _csv(tmp_path, "pv.csv", {"pv_south": 1.1, "pv_east": 0.5})
    frame = read_pv_power_csv(path, MODEL.registry.pv)
    assert frame["pv_south"].max() == pytest.approx(1.1)


def test_measured_load_in_kw_instead_of_mw_is_refused(tmp_path):
    ids = [ld.id for ld in MODEL.registry.loads]
    columns = {i: 0.8 for i in ids}
    columns[ids[0]] = 800.0  # kW written as MW: 800 times the 1 MW peak
    path = _csv(tmp_path, "load.csv", columns)
    with pytest.raises(ForecastInputError) as err:
        read_load_csv(path, MODEL.registry.loads)
    assert (err.value.row, err.value.field) == (2, ids[0])
    assert "kW given as MW" in str(err.value)


def test_carbon_intensity_in_grams_is_refused(tmp_path):
    path = _csv(tmp_path, "carbon.csv", {"carbon_kg_per_kwh": 581.0})
    with pytest.raises(ForecastInputError) as err:
        read_carbon_csv(path)
    assert (err.value.row, err.value.field) == (2, "carbon_kg_per_kwh")


def test_carbon_intensity_that_is_infinite_is_refused(tmp_path):
    path = _csv(tmp_path, "carbon.csv", {"carbon_kg_per_kwh": ["0.5"] * 3 + ["inf"] * 22})
    with pytest.raises(ForecastInputError, match="finite"):
        read_carbon_csv(path)


def test_a_measured_series_with_hours_missing_is_refused_not_bridged(tmp_path):
    times = TIMES.delete(range(8, 14))  # the logger stopped from 08:00 to 13:00
    path = _csv(tmp_path, "weather.csv", {"ghi_w_per_m2": 400.0}, times)
    with pytest.raises(ForecastInputError) as err:
        build(MODEL, "2026-07-15", weather=str(path))
    assert "no data from 2026-07-15T07:00:00+08:00 to 2026-07-15T14:00:00+08:00" in str(err.value)
    assert err.value.row == 10


def test_a_measured_series_every_hour_is_interpolated_to_the_quarter_hours(tmp_path):
    path = _csv(tmp_path, "weather.csv", {"ghi_w_per_m2": 400.0})
    bundle = build(MODEL, "2026-07-15", weather=str(path))
    assert len(bundle.index) == 96


def test_duplicated_times_are_refused(tmp_path):
    times = TIMES.insert(5, TIMES[4])
    path = _csv(tmp_path, "carbon.csv", {"carbon_kg_per_kwh": 0.5}, times)
    with pytest.raises(ForecastInputError, match="duplicated") as err:
        read_carbon_csv(path)
    assert err.value.row == 7


@pytest.mark.parametrize(("content", "message"), [
    (b"time,carbon_kg_per_kwh\n\x00\x01\x02", "not a text file"),
    ("time,carbon_kg_per_kwh,备注\n2026-07-15 00:00,0.5,晴\n".encode("gbk"), "not UTF-8"),
    (b"", "No columns"),
    (b"time,carbon_kg_per_kwh\n", "no data rows"),
], ids=["binary", "gbk", "empty", "header_only"])
def test_a_file_that_is_not_a_csv_table_is_refused(content, message, tmp_path):
    path = tmp_path / "carbon.csv"
    path.write_bytes(content)
    with pytest.raises(ForecastInputError, match=message) as err:
        read_carbon_csv(path)
    assert err.value.source == str(path)


def test_a_folder_given_as_a_csv_says_it_is_a_folder(tmp_path):
    with pytest.raises(ForecastInputError, match="is a folder"):
        read_carbon_csv(tmp_path)
