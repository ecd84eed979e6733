"""The operator's inputs as every planning command takes them (dayahead, run, sim serve, drill):
a forecast bundle or measured files, a study file and ``--set`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "CarbonOption",
    "ConfigOption",
    "DevicesOption",
    "ForecastOption",
    "GrowthScenarioOption",
    "LoadOption",
    "PricesOption",
    "PvOption",
    "SessionsOption",
    "SetOption",
    "WeatherOption",
    "checked_grid",
    "operator_inputs",
    "study_of",
]

DevicesOption = Annotated[Path | None, typer.Option(
    "--devices", help="Devices file (YAML: bess, pv, ev_sites, loads, microgrids) to put on "
    "the grid; a NAME.json model takes NAME.devices.yaml beside it by default.")]
GrowthScenarioOption = Annotated[str | None, typer.Option(
    "--scenario", help="Growth scenario on the grid (not a drill scenario): a shipped "
    "growth scenario of the model by name "
    "(jiuke_oasis: jiuke_2025, jiuke_2030) or a scenario file (NAME.scenario.yaml: ev_sites, "
    "pv, loads growth and add: new devices), applied after --devices.")]
ForecastOption = Annotated[Path | None, typer.Option(
    "--forecast", help="Forecast bundle folder written by `gridctl forecast --out`; the files "
    "below replace only their part of it.")]
LoadOption = Annotated[Path | None, typer.Option(
    "--load", help="CSV of load, MW: time + one column per load id.")]
PvOption = Annotated[Path | None, typer.Option(
    "--pv", help="CSV of PV power available, MW: time + one column per PV system id.")]
WeatherOption = Annotated[str | None, typer.Option(
    "--weather", help="clear, partly_cloudy, overcast, mixed, or a CSV of measured irradiance "
    "(time, ghi_w_per_m2[, temp_air_c]); default: the grid's own profiles, else clear.")]
SessionsOption = Annotated[Path | None, typer.Option(
    "--sessions", help="CSV of EV sessions (ACN-Data columns, see forecasts/ev_csv.py) "
    "instead of generated ones.")]
PricesOption = Annotated[Path | None, typer.Option(
    "--prices", help="CSV of prices, CNY/kWh: time, price_cny_per_kwh[, "
    "export_price_cny_per_kwh], each held until the next row.")]
CarbonOption = Annotated[Path | None, typer.Option(
    "--carbon", help="CSV of grid carbon intensity: time, carbon_kg_per_kwh.")]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="Study file (YAML): tariff, carbon, weights, limits, mpc, solver; "
    "`gridctl config show` prints what is in force.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override one study setting, SECTION.KEY=VALUE (repeatable), e.g. "
    "--set solver.time_limit_s=30.")]


def operator_inputs(
    *,
    forecast: Path | None = None,
    load: Path | None = None,
    pv: Path | None = None,
    weather: str | None = None,
    sessions: Path | None = None,
    prices: Path | None = None,
    carbon: Path | None = None,
):
    """The options as :class:`forecasts.operator_inputs.OperatorInputs`."""
    from forecasts.operator_inputs import OperatorInputs

    return OperatorInputs(forecast_dir=forecast, load_csv=load, pv_csv=pv, weather=weather,
                          sessions_csv=sessions, prices_csv=prices, carbon_csv=carbon)


def checked_grid(model: str, devices: Path | None, growth_scenario: str | None, inputs):
    """The model ``model`` with the devices file and growth scenario on it, and the operator's
    files ``inputs`` checked against it (bad input refused before anything runs)."""
    from network_models import load_model

    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    inputs.check(grid)
    return grid


def study_of(config: Path | None, settings: list[str] | None,
             flags: dict[str, tuple[Any, str]] | None = None):
    """The study of ``--config`` with ``--set`` pairs and a command's own flags on top
    (``flags``: dotted key → (value, flag name), e.g. run's ``--horizon``)."""
    from gridctl.study import load_study, parse_settings

    merged = {k: (v, f"--set {k}") for k, v in parse_settings(settings or ()).items()}
    merged.update(flags or {})
    return load_study(config, merged)


def tariff_for(study, inputs) -> Any:
    """The tariff a bundle is built with: the study's when it set one, else the given bundle's
    prices (None) or gridctl's default."""
    return study.tariff if study.tariff_given or inputs.forecast_dir is None else None


def study_record(study) -> dict[str, Any]:
    """The study's settings that are not gridctl's defaults, with where each came from."""
    return {k: {"value": v, "from": o} for k, v, o in study.settings if o != "default"}
