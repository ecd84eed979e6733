"""``gridctl run``: the controller against a field over OPC UA; ``gridctl report``: what it did."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from gridctl.commands.inputs import (
    CarbonOption,
    ConfigOption,
    DevicesOption,
    ForecastOption,
    GrowthScenarioOption,
    LoadOption,
    PricesOption,
    PvOption,
    SessionsOption,
    SetOption,
    WeatherOption,
    checked_grid,
    operator_inputs,
    study_of,
    tariff_for,
)
from gridctl.commands.sim import PkiOption, SecurityOption, UserOption, client_security_of
from gridctl.errors import UserInputError
from gridctl.historian import HistorianError, HistorianSettings
from gridctl.historian_open import check_path

_SETTING_FLAGS = {"raw_days": "--keep-raw-days", "means_days": "--keep-means-days",
                  "commands_days": "--keep-commands-days"}


def historian_settings_of(raw_days: float, means_days: float,
                          commands_days: float) -> HistorianSettings:
    """The retention settings from the command line's flags (errors name the flag)."""
    try:
        return HistorianSettings(raw_days=raw_days, means_days=means_days,
                                 commands_days=commands_days)
    except HistorianError as exc:
        raise UserInputError(exc.detail, source=_SETTING_FLAGS.get(exc.field or "", exc.field)
                             ) from None


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("report")(report)


def run(
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="opc.tcp://HOST:PORT")]
    = "opc.tcp://127.0.0.1:4840",
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Built-in model, simbench:CODE or a model file.")]
    = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    db: Annotated[Path, typer.Option("--db", help="Historian (SQLite) file.")]
    = Path("out/historian.sqlite"),
    security: SecurityOption = "none",
    pki: PkiOption = None,
    user: UserOption = None,
    horizon: Annotated[int | None, typer.Option(
        "--horizon", min=2, max=96, help="MPC window in control steps (the study's "
        "mpc.horizon_steps; default 16).")] = None,
    hours: Annotated[float | None, typer.Option("--hours", min=0.0,
                                                help="Stop after this much (simulated) time.")]
    = None,
    wall_clock: Annotated[bool, typer.Option("--wall-clock", help="Follow the wall clock (a real "
                                             "field) instead of the simulator's clock.")] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the sampled "
                                      "forecasts (load, PV, EV sessions).")] = 0,
    self_healing: Annotated[bool, typer.Option(
        "--self-healing/--no-self-healing",
        help="Answer protection trips with FLISR and supervise the model's microgrids.")] = True,
    keep_raw_days: Annotated[float, typer.Option(
        "--keep-raw-days", min=0.0,
        help="Days of field time raw measurements are kept; older ones become 15-min means.")]
    = HistorianSettings.raw_days,
    keep_means_days: Annotated[float, typer.Option(
        "--keep-means-days", min=0.0,
        help="Days the 15-min means (mean, min, max) of measurements are kept.")]
    = HistorianSettings.means_days,
    keep_commands_days: Annotated[float, typer.Option(
        "--keep-commands-days", min=0.0,
        help="Days commands and write batches are kept (events, decisions, schedules and EV "
             "sessions are kept for ever).")] = HistorianSettings.commands_days,
    forecast: ForecastOption = None,
    load: LoadOption = None,
    pv: PvOption = None,
    weather: WeatherOption = None,
    sessions: SessionsOption = None,
    prices: PricesOption = None,
    carbon: CarbonOption = None,
    config: ConfigOption = None,
    settings_: SetOption = None,
) -> None:
    """Run the control loop: MPC every control step (15 min unless the study says otherwise),
    self-healing on events, heartbeat, reconnects, historian. Forecasts come from the
    operator's files where given (they must cover the days run), else from gridctl's models."""
    flags = {} if horizon is None else {"mpc.horizon_steps": (horizon, "--horizon")}
    study = study_of(config, settings_, flags)
    inputs = operator_inputs(forecast=forecast, load=load, pv=pv, weather=weather,
                             sessions=sessions, prices=prices, carbon=carbon)
    settings = historian_settings_of(keep_raw_days, keep_means_days, keep_commands_days)
    check_path(db, create=True)  # a bad --db is refused before anything loads
    from gridctl.planner import warm_up

    warm_up()  # the planner's fork server imports while this command loads its model
    if not endpoint.startswith("opc.tcp://"):
        raise UserInputError(f"{endpoint!r}: expected opc.tcp://HOST:PORT", source="--endpoint")
    from gridctl.field.asyncua_logs import show_asyncua_warnings

    show_asyncua_warnings(controller=True)  # security warnings visible, reconnect noise not
    grid = checked_grid(model, devices, growth_scenario, inputs)
    client_security = None if security == "none" and user is None else client_security_of(
        security, pki, user)
    runtime = _controller_runtime(grid, study, inputs, endpoint=endpoint, db=db,
                                  wall_clock=wall_clock, seed=seed, security=client_security,
                                  self_healing=self_healing, settings=settings)
    _run_until_stopped(runtime, hours, db)


def _controller_runtime(grid, study, inputs, *, endpoint: str, db: Path, wall_clock: bool,
                        seed: int, security, self_healing: bool, settings: HistorianSettings):
    """The controller of ``grid`` for the study and the operator's inputs: FLISR and the
    microgrids' supervisors with ``self_healing``."""
    from gridctl.microgrids import supervisors_of
    from gridctl.runtime import ControllerRuntime, RuntimeConfig
    from gridctl.self_healing import FaultResponder

    runtime_config = RuntimeConfig(
        endpoint=endpoint, db_path=db, horizon_steps=study.horizon_steps,
        step_minutes=study.step_minutes, follow_simulator_clock=not wall_clock,
        forecast_seed=seed, inputs=inputs, dispatch=study.dispatch,
        tariff=tariff_for(study, inputs), carbon_kg_per_kwh=study.carbon_kg_per_kwh)
    return ControllerRuntime(
        grid,
        runtime_config,
        security=security,
        responder=FaultResponder(grid) if self_healing else None,
        microgrids=supervisors_of(grid) if self_healing else (),
        historian_settings=settings,
    )


def _run_until_stopped(runtime, hours: float | None, db: Path) -> None:
    """Run the control loop for ``hours`` of (simulated) time, or until Ctrl-C; say what it did."""

    async def main() -> None:
        run_for = pd.Timedelta(hours=hours) if hours is not None else None
        stats = await runtime.run(run_for=run_for)
        typer.echo(f"decisions {stats.decisions}, fallbacks {stats.fallbacks}, reconnects "
                   f"{stats.reconnects}, refused writes {stats.write_errors}; historian {db}")

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        typer.echo("stopped")


def report(
    db: Annotated[Path, typer.Option("--db", help="Historian (SQLite) file written by run.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")]
    = Path("out/run_report.html"),
    run: Annotated[int | None, typer.Option(
        "--run", min=1, help="Run to report (default: the last that made control steps); the "
        "runs the historian holds are listed.")] = None,
) -> None:
    """Turn a historian into the day-ahead style HTML report of one run: measured against
    planned."""
    from gridctl.run_report import describe_run, report_run

    done = report_run(db, out, run=run)  # a bad --out is refused before the historian is read
    for r in done.runs:
        typer.echo(("* " if r.id == done.kpis["run"] else "  ") + describe_run(r))
    for k, v in done.kpis.items():
        typer.echo(f"{k}: {v}")
    typer.echo(f"wrote {done.path}")
