"""``gridctl forecast``: build the forecast bundle of a model for a day and write it to a folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from gridctl.commands.arguments import parse_day
from gridctl.commands.inputs import DevicesOption, GrowthScenarioOption
from gridctl.commands.outputs import FOLDER_HELP, output_folder
from gridctl.errors import UserInputError


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast)


def forecast(
    date: Annotated[str, typer.Option("--date", "-d", help="Day to forecast, YYYY-MM-DD "
                                      "(Asia/Shanghai); the horizon starts at its midnight.")],
    out: Annotated[Path, typer.Option("--out", "-o", help=f"{FOLDER_HELP} Writes the bundle's "
                                      "CSV files, bundle.json and forecast.png.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Built-in model (jiuke_oasis, "
                                       "case33bw, cigre_mv, mv_oberrhein) or a model file.")]
    = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed; same seed, "
                                      "same bundle.")] = 0,
    weather: Annotated[str, typer.Option("--weather", help="clear, partly_cloudy, overcast, "
                                         "mixed, or a CSV of measured irradiance.")] = "clear",
    horizon: Annotated[str, typer.Option("--horizon", help="Length, e.g. 24h, 48h, 7D.")]
    = "24h",
    step: Annotated[str, typer.Option("--step", help="Step, e.g. 15min, 1h.")] = "15min",
    load_source: Annotated[str, typer.Option("--load-source", help="synthetic or simbench.")]
    = "synthetic",
    ev_sessions: Annotated[Path | None, typer.Option("--ev-sessions", help="CSV of EV sessions "
                                                      "(ACN-Data-like) instead of generated "
                                                      "ones.")] = None,
    flat_price: Annotated[float, typer.Option("--flat-price", min=0.0, help="Flat TOU price, "
                                              "CNY/kWh.")] = 0.65,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write forecast.png.")] = True,
) -> None:
    """PV, load, EV sessions, TOU prices and carbon intensity for a day: CSV files, a PNG plot
    and a short summary."""
    from forecasts import Tariff, build, write_bundle
    from forecasts.bundle_io import BUNDLE_FILES
    from network_models import load_model

    day = parse_day(date)
    if not math.isfinite(flat_price):
        raise UserInputError(f"{flat_price}: expected a finite price in CNY/kWh, e.g. 0.65",
                             source="--flat-price")
    target = output_folder(out, writes=BUNDLE_FILES)
    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    # a warning about the input (sessions of other days left out) is one line: gridctl.cli
    bundle = build(
        grid, day, horizon, step, seed=seed, weather=weather, load_source=load_source,
        ev_sessions=ev_sessions, tariff=Tariff(flat_price_cny_per_kwh=flat_price),
    )
    with target.writing() as folder:
        names = [p.name for p in write_bundle(
            bundle, folder, plot=plot,
            title=f"{grid.name}: {day.isoformat()}, weather {weather}, seed {seed}")]
    _print_summary(bundle, grid.name, tuple(out / n for n in names))


def _print_summary(bundle: object, model_name: str, written: tuple[Path, ...]) -> None:
    from rich.console import Console
    from rich.table import Table

    from forecasts import ForecastBundle

    assert isinstance(bundle, ForecastBundle)
    h = bundle.step_h
    pv_total = bundle.pv_p_mw.sum(axis=1)
    load_total = bundle.load_p_mw.sum(axis=1)
    ev_total = bundle.uncontrolled_ev_kw().sum(axis=1) / 1000.0
    table = Table(title=f"{model_name}: {bundle.start:%Y-%m-%d %H:%M} to "
                        f"{bundle.end:%Y-%m-%d %H:%M} ({len(bundle.index)} steps of "
                        f"{h * 60:g} min)")
    table.add_column("quantity")
    table.add_column("energy MWh", justify="right")
    table.add_column("peak MW", justify="right")
    table.add_column("note")
    table.add_row("PV available", f"{pv_total.sum() * h:.1f}", f"{pv_total.max():.2f}",
                  f"{bundle.pv_p_mw.shape[1]} systems")
    table.add_row("load", f"{load_total.sum() * h:.1f}", f"{load_total.max():.2f}",
                  f"{bundle.load_p_mw.shape[1]} loads")
    table.add_row("EV (uncontrolled)", f"{ev_total.sum() * h:.1f}", f"{ev_total.max():.2f}",
                  f"{len(bundle.ev_sessions)} sessions")
    price = bundle.price_cny_per_kwh
    table.add_row("import price", "", "", f"{price.min():.3f}–{price.max():.3f} CNY/kWh")
    table.add_row("carbon", "", "", f"mean {bundle.carbon_kg_per_kwh.mean():.3f} kg/kWh")
    table.add_row("temperature", "", "", f"{bundle.temperature_c.min():.1f}–"
                  f"{bundle.temperature_c.max():.1f} °C")
    console = Console()
    console.print(table)
    console.print(f"wrote {len(written)} files to {written[0].parent}")
