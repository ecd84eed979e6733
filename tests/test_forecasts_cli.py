"""``gridctl forecast``: writes the bundle and a plot, prints a summary, refuses bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from test_forecasts_bundle import small_model
from typer.testing import CliRunner

import network_models
from gridctl.commands.forecast import register
from network_models.errors import InputError

MODEL = small_model()


@pytest.fixture
def app(monkeypatch) -> typer.Typer:
    monkeypatch.setattr(network_models, "load_model", lambda name, **_: MODEL)
    cli = typer.Typer()
    register(cli)

    @cli.callback()
    def main() -> None:  # a group, as in gridctl, so the verb is named on the command line
        pass

    return cli


def test_forecast_writes_csvs_a_png_and_prints_a_summary(app, tmp_path) -> None:
    out = tmp_path / "fc"
    result = CliRunner().invoke(app, ["forecast", "--model", "small", "--date", "2026-07-15",
                                      "--out", str(out), "--seed", "3", "--weather", "overcast"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert names == {"pv_p_mw.csv", "load_p_mw.csv", "load_q_mvar.csv", "series.csv",
                     "ev_sessions.csv", "bundle.json", "forecast.png"}
    assert (out / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = json.loads((out / "bundle.json").read_text())
    assert header["start"] == "2026-07-15T00:00:00+08:00" and header["steps"] == 96
    assert "overcast" in header["provenance"]["weather"]
    pv = pd.read_csv(out / "pv_p_mw.csv")
    assert list(pv.columns) == ["time", "pv_south", "pv_east"] and len(pv) == 96
    assert "PV available" in result.output and "sessions" in result.output


def test_a_bad_date_is_refused_naming_the_option_and_nothing_is_written(app, tmp_path) -> None:
    out = tmp_path / "fc"
    result = CliRunner().invoke(app, ["forecast", "--date", "2026-13-01", "--out", str(out)])
    assert isinstance(result.exception, InputError)
    assert "--date" in str(result.exception) and "YYYY-MM-DD" in str(result.exception)
    assert not out.exists()


def test_a_bad_session_file_is_refused_and_nothing_is_written(app, tmp_path) -> None:
    sessions = tmp_path / "s.csv"
    sessions.write_text("sessionID,stationID,connectionTime,disconnectTime\n"
                        "a,ev_office_ac,2026-07-15 08:00,2026-07-15 17:00\n")
    out = tmp_path / "fc"
    result = CliRunner().invoke(app, ["forecast", "--date", "2026-07-15", "--out", str(out),
                                      "--ev-sessions", str(sessions)])
    assert isinstance(result.exception, InputError)
    assert "kWhDelivered" in str(result.exception) and str(sessions) in str(result.exception)
    assert not out.exists()
