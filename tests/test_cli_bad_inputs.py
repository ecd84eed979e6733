"""Bad input of every class through the real command line: exit 2, one line that names the file
(or argument), the element and the field, no traceback; and --json output is strict JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest
from test_forecasts_bundle import small_model

import network_models
from gridctl.cli import main
from network_models.builder import DATA_DIR

JIUKE_TEXT = (DATA_DIR / "jiuke_oasis.yaml").read_text(encoding="utf-8")
SHIPPED_FEEDER_FAULT = (Path(__file__).resolve().parents[1] / "hil_sim" / "scenarios"
                        / "feeder_section_fault.yaml").read_text(encoding="utf-8")
SMALL = small_model()


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(network_models, "load_model", lambda name, **_: SMALL)


# --- model files -----------------------------------------------------------------------------

def test_an_infinite_rating_in_a_model_file_is_refused_naming_the_line_type(tmp_path, capsys):
    first = re.search(r"max_i_ka: [0-9.]+", JIUKE_TEXT).group(0)
    path = tmp_path / "grid.yaml"
    path.write_text(JIUKE_TEXT.replace(first, "max_i_ka: .inf", 1), encoding="utf-8")
    err = _refused(["grid", "check", "--model", str(path), "--json"], capsys)
    assert str(path) in err and "line_types YJV22" in err and "'max_i_ka'" in err
    assert "finite" in err


def test_a_nan_impedance_in_a_model_file_is_refused(tmp_path, capsys):
    first = re.search(r"x_ohm_per_km: [0-9.]+", JIUKE_TEXT).group(0)
    path = tmp_path / "grid.yaml"
    path.write_text(JIUKE_TEXT.replace(first, "x_ohm_per_km: .nan", 1), encoding="utf-8")
    err = _refused(["grid", "check", "--model", str(path)], capsys)
    assert "'x_ohm_per_km'" in err and "finite" in err


def test_an_impedance_that_would_underflow_the_power_flow_is_refused(tmp_path, capsys):
    first = re.search(r"r_ohm_per_km: [0-9.]+", JIUKE_TEXT).group(0)
    path = tmp_path / "grid.yaml"
    path.write_text(JIUKE_TEXT.replace(first, "r_ohm_per_km: 1.0e-300", 1), encoding="utf-8")
    err = _refused(["grid", "check", "--model", str(path), "--no-n1"], capsys)
    assert "'r_ohm_per_km'" in err and "greater than or equal to 0.0001" in err


def test_a_model_file_with_a_key_given_twice_is_refused_naming_both_lines(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(JIUKE_TEXT.replace("schema_version: 1\n",
                                       "schema_version: 1\nname: other_grid\n", 1),
                    encoding="utf-8")
    first = JIUKE_TEXT.splitlines().index("schema_version: 1") + 2
    err = _refused(["grid", "check", "--model", str(path)], capsys)
    assert str(path) in err and "'name' given twice" in err
    assert f"first on line {first}, again on line {first + 1}" in err


def test_a_binary_model_file_is_refused(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    err = _refused(["grid", "check", "--model", str(path)], capsys)
    assert str(path) in err and "not a text file" in err


def _json_net(tmp_path: Path, table: str, row: int, column: str, value: float) -> Path:
    net = pn.case33bw()
    net[table].loc[row, column] = value
    path = tmp_path / "feeder.json"
    pp.to_json(net, str(path))
    return path


@pytest.mark.parametrize(("table", "column", "value"), [
    ("line", "max_i_ka", np.inf),
    ("line", "r_ohm_per_km", np.nan),
    ("line", "length_km", -1.0),
    ("load", "p_mw", np.inf),
])
def test_a_pandapower_net_with_a_bad_value_is_refused_naming_table_row_and_column(
        table, column, value, tmp_path, capsys):
    path = _json_net(tmp_path, table, 3, column, value)
    err = _refused(["grid", "check", "--model", str(path), "--json"], capsys)
    assert str(path) in err and f"{table} table" in err and "row 3" in err
    assert f"'{column}'" in err


def test_a_pandapower_net_without_a_grid_supply_is_refused(tmp_path, capsys):
    net = pn.case33bw()
    net.ext_grid["in_service"] = False
    path = tmp_path / "island.json"
    pp.to_json(net, str(path))
    err = _refused(["grid", "check", "--model", str(path)], capsys)
    assert "ext_grid" in err and "no grid supply point" in err


# --- strict JSON -----------------------------------------------------------------------------

def test_grid_check_json_is_strict_json_without_the_n1_screen(capsys):
    """Without N-1 there is no worst N-1 voltage: null with the reason beside it, not NaN."""
    assert main(["grid", "check", "--model", "case33bw", "--no-n1", "--json"]) == 1
    data = _strict_json(capsys.readouterr().out)
    assert data["n1"]["outages"] == 0 and data["n1"]["solved"] is False
    assert data["n1"]["worst_v_min_pu"] is None
    assert data["v_min_pu"] == pytest.approx(0.9131, abs=1e-4)  # Baran & Wu's bus 18


def test_a_case_that_does_not_converge_gives_null_figures_and_says_so(tmp_path, capsys):
    net = pn.case33bw()
    net.load["p_mw"] *= 40.0  # far beyond what the feeder can carry: no power flow solution
    path = tmp_path / "overloaded.json"
    pp.to_json(net, str(path))
    assert main(["grid", "check", "--model", str(path), "--no-n1", "--json"]) == 1
    data = _strict_json(capsys.readouterr().out)
    peak = data["cases"]["peak"]
    assert peak["converged"] is False and peak["v_min_pu"] is None
    assert peak["violations"][0]["kind"] == "not_converged"
    assert data["converged"] is False and data["ok"] is False


# --- drill files -----------------------------------------------------------------------------

def test_a_binary_drill_file_is_refused(capsys):
    err = _refused(["drill", "/bin/ls"], capsys)
    assert "/bin/ls" in err and "not a text file" in err


def test_a_drill_whose_second_expectation_loosens_the_first_is_refused(tmp_path, capsys):
    path = tmp_path / "loose.yaml"
    path.write_text(SHIPPED_FEEDER_FAULT.replace(
        "  restoration_s: {max: 10}\n",
        "  restoration_s: {max: 10}\n  restoration_s: {max: 100000}\n"), encoding="utf-8")
    err = _refused(["drill", str(path)], capsys)
    assert str(path) in err and "'restoration_s' given twice" in err


@pytest.mark.parametrize(("old", "new", "field"), [
    ("at_min: 2,", "at_min: .nan,", "at_min"),
    ("restoration_s: {max: 10}", "restoration_s: {max: .inf}", "expect.max"),
    ("name: feeder_section_fault", "name: ../../elsewhere", "name"),
    ('start: "2026-07-15T19:00"', 'start: "2026-02-30T19:00"', "start"),
    ('start: "2026-07-15T19:00"', 'start: "9999-07-15T19:00"', "start"),
    ("duration_min: 20", "duration_min: 1.0e+300", "duration_min"),
    ("duration_min: 20", "duration_min: 20\nmanual_restoration_min: .inf",
     "manual_restoration_min"),
], ids=["nan_time", "infinite_bound", "path_as_name", "february_30", "year_9999",
        "huge_duration", "infinite_manual_baseline"])
def test_a_drill_file_with_a_value_that_is_not_a_number_or_a_name_is_refused(
        old, new, field, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    assert old in SHIPPED_FEEDER_FAULT
    path.write_text(SHIPPED_FEEDER_FAULT.replace(old, new), encoding="utf-8")
    err = _refused(["drill", str(path)], capsys)
    assert str(path) in err and f"field '{field}'" in err


def test_a_drill_file_naming_a_model_that_does_not_exist_is_refused_naming_the_file(
        tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(SHIPPED_FEEDER_FAULT.replace("model: jiuke_oasis", "model: nowhere.yaml"),
                    encoding="utf-8")
    err = _refused(["drill", str(path)], capsys)
    assert str(path) in err and "field 'model'" in err and "nowhere.yaml" in err


@pytest.mark.parametrize("minutes", ["inf", "1e300", "0"])
def test_a_manual_restoration_time_that_is_not_a_finite_positive_number_is_refused(
        minutes, capsys):
    err = _refused(["drill", "feeder_section_fault", "--manual-restoration-min", minutes],
                   capsys)
    assert "--manual-restoration-min" in err


# --- EV sessions -----------------------------------------------------------------------------

def _sessions(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "sessions.csv"
    lines = ["sessionID,stationID,connectionTime,disconnectTime,kWhDelivered"]
    lines += [f"{sid},ev_office_ac,{arrival},{departure},10" for sid, arrival, departure in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sessions_of_another_day_are_refused_naming_the_file_the_dates_and_the_day(
        tmp_path, small, capsys):
    path = _sessions(tmp_path, [("a", "2026-07-14 08:00", "2026-07-14 17:00"),
                                ("b", "2026-07-13 09:00", "2026-07-13 18:00")])
    out = tmp_path / "fc"
    err = _refused(["forecast", "--date", "2026-07-15", "--out", str(out),
                    "--ev-sessions", str(path)], capsys)
    assert str(path) in err and "2026-07-13, 2026-07-14" in err
    assert "2026-07-15 00:00 to 2026-07-16 00:00" in err
    assert not out.exists()


def test_sessions_partly_outside_the_day_are_counted_in_a_warning_and_the_rest_used(
        tmp_path, small, capsys):
    path = _sessions(tmp_path, [("before", "2026-07-14 08:00", "2026-07-14 17:00"),
                                ("overnight", "2026-07-14 21:00", "2026-07-15 07:30"),
                                ("today", "2026-07-15 08:30", "2026-07-15 17:00")])
    out = tmp_path / "fc"
    assert main(["forecast", "--date", "2026-07-15", "--out", str(out), "--ev-sessions",
                 str(path), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {path}: 1 of 3 sessions" in err and "2026-07-14" in err
    kept = pd.read_csv(out / "ev_sessions.csv")["sessionID"].tolist()
    assert kept == ["overnight", "today"]  # the one plugged in across midnight is planned for


# --- weather and other numbers ---------------------------------------------------------------

def _weather(tmp_path: Path, ghi: float, temperature: float) -> Path:
    times = pd.date_range("2026-07-15", periods=25, freq="1h")
    path = tmp_path / "weather.csv"
    pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M"), "ghi_w_per_m2": 300.0,
                  "temp_air_c": 30.0}).assign(
        ghi_w_per_m2=lambda f: f.ghi_w_per_m2.mask(f.index == 12, ghi),
        temp_air_c=lambda f: f.temp_air_c.mask(f.index == 13, temperature),
    ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("ghi", "temperature", "row", "column"), [
    (1e9, 30.0, 14, "ghi_w_per_m2"),
    (-5.0, 30.0, 14, "ghi_w_per_m2"),
    (300.0, 500.0, 15, "temp_air_c"),
    (300.0, -273.0, 15, "temp_air_c"),
])
def test_weather_beyond_physical_bounds_is_refused_naming_file_row_and_column(
        ghi, temperature, row, column, tmp_path, small, capsys):
    path = _weather(tmp_path, ghi, temperature)
    err = _refused(["forecast", "--date", "2026-07-15", "--out", str(tmp_path / "fc"),
                    "--weather", str(path)], capsys)
    assert str(path) in err and f"row {row}" in err and f"field '{column}'" in err


def test_weather_from_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path, small, capsys):
    path = _weather(tmp_path, 500.0, 31.0)
    path.write_text(path.read_text(), encoding="utf-8-sig")
    assert main(["forecast", "--date", "2026-07-15", "--out", str(tmp_path / "fc"),
                 "--weather", str(path), "--no-plot"]) == 0


@pytest.mark.parametrize(("argv", "named"), [
    (["--date", "9999-12-31"], "--date"),
    (["--date", "0001-01-01"], "--date"),
    (["--date", "2026-02-30"], "--date"),
    (["--horizon", "100000D"], "horizon"),
    (["--flat-price", "inf"], "--flat-price"),
])
def test_forecast_arguments_out_of_range_are_refused(argv, named, tmp_path, small, capsys):
    args = ["forecast", "--date", "2026-07-15", "--out", str(tmp_path / "fc"), *argv]
    assert named in _refused(args, capsys)


def test_dayahead_refuses_a_day_it_cannot_plan(tmp_path, capsys):
    err = _refused(["dayahead", "--date", "9999-12-31", "--out", str(tmp_path / "x")], capsys)
    assert "--date" in err and "9999-12-31" in err
