"""``gridctl drill SCENARIO``: rehearse a fault against the simulator with gridctl in the loop."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    operator_inputs,
    study_of,
)
from gridctl.commands.outputs import FOLDER_HELP, dumps_json, output_folder

if TYPE_CHECKING:
    from gridctl.commands.drill_report import DrillReport


def register(app: typer.Typer) -> None:
    app.command("drill")(drill)


def drill(
    drill_scenario: Annotated[str, typer.Argument(
        metavar="scenario",  # as the usage line always showed it
        help="A drill scenario (not a growth scenario, see --scenario): a drill file (YAML) "
        "or a shipped drill: backbone_cable_fault, "
        "feeder_section_fault, feeder_repeated_faults, feeder_fault_failed_indicators, "
        "transformer_loss, substation_loss, campus_upstream_outage.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON "
                                          "object.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help=f"{FOLDER_HELP} Writes the "
                                             "drill's NAME.json and NAME.html reports (one "
                                             "folder per drill).")] = None,
    manual_min: Annotated[float | None, typer.Option(
        "--manual-restoration-min", help="Baseline: minutes until supply is restored by hand "
        "(default: the drill scenario's, 60).")] = None,
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    forecast: ForecastOption = None,
    load: LoadOption = None,
    pv: PvOption = None,
    weather: WeatherOption = None,
    sessions: SessionsOption = None,
    prices: PricesOption = None,
    carbon: CarbonOption = None,
    config: ConfigOption = None,
    settings: SetOption = None,
) -> None:
    """Run a fault and recovery drill: simulator over OPC UA, controller runtime with FLISR.
    The operator's files, where given, are the simulated day's truth (a measured day
    replayed) and the controller's forecasts; the study file sets how it plans.

    Exits 0 when the drill met every expectation of its file, 1 when it did not, 2 on bad
    input."""
    from gridctl.planner import warm_up

    warm_up()  # the planner's fork server imports while this command loads its model
    from gridctl.commands.drill_report import write_outputs
    from gridctl.commands.drill_runner import run_drill
    from gridctl.commands.drill_scenario import (
        MAX_MANUAL_RESTORATION_MIN,
        DrillInputError,
        drill_scenario_path,
        load_drill_scenario,
    )
    from gridctl.errors import UserInputError
    from network_models import load_model
    from network_models.errors import InputError

    if manual_min is not None and not (
            math.isfinite(manual_min) and 0 < manual_min <= MAX_MANUAL_RESTORATION_MIN):
        raise UserInputError(f"{manual_min}: expected a number of minutes above 0 and at most "
                             f"{MAX_MANUAL_RESTORATION_MIN:g} (a week)",
                             source="--manual-restoration-min", field="manual_restoration_min")
    study = study_of(config, settings)
    inputs = operator_inputs(forecast=forecast, load=load, pv=pv, weather=weather,
                             sessions=sessions, prices=prices, carbon=carbon)
    path = drill_scenario_path(drill_scenario)
    spec = load_drill_scenario(path)
    target = None if out is None else output_folder(
        out, writes=(f"{spec.name}.json", f"{spec.name}.html"))
    try:
        model = load_model(spec.model, devices=devices, growth_scenario=growth_scenario)
    except InputError as exc:  # the file named it: say so
        raise DrillInputError(str(exc), source=str(path), field="model") from None
    spec = load_drill_scenario(path, model)
    inputs.check(model)
    if manual_min is not None:
        spec = spec.model_copy(update={"manual_restoration_min": manual_min})
    report = asyncio.run(run_drill(spec, model, inputs=inputs, study=study))
    written: tuple[Path, ...] = ()
    if target is not None:
        with target.writing() as folder:
            written = tuple(out / p.name for p in write_outputs(report, folder))
    if as_json:
        typer.echo(dumps_json(report.to_dict(), indent=1))
        raise typer.Exit(0 if report.expectations_met else 1)
    _print_report(report, written)
    raise typer.Exit(0 if report.expectations_met else 1)


def _print_report(report: DrillReport, written: tuple[Path, ...]) -> None:
    """The drill's report as the operator reads it: timeline, figures against the manual
    baseline, the end state, faults located, microgrids, errors and expectations."""
    base = report.baseline
    typer.echo(f"drill {report.scenario} on {report.model}: {report.start:%Y-%m-%d %H:%M} to "
               f"{report.end:%H:%M} (simulated), {report.wall_s:.1f} s wall")
    for e in report.events:
        typer.echo(f"  {e['time'][11:19]}  {e['kind']:<16} {e['text']}")
    rows = [("customers interrupted", report.customers_interrupted,
             base["customers_interrupted"]),
            ("customer-minutes", report.customer_minutes_interrupted,
             base["customer_minutes_interrupted"]),
            ("energy not supplied (kWh)", report.energy_not_supplied_kwh,
             base["energy_not_supplied_kwh"]),
            ("restoration (s)", report.restoration_s, base["restoration_s"])]
    typer.echo(f"  {'':<28}{'gridctl':>12}{'manual':>12}")
    for label, ours, theirs in rows:
        typer.echo(f"  {label:<28}{ours!s:>12}{theirs!s:>12}")
    typer.echo(f"  switching operations: {report.switch_operations}; violations after "
               f"restoration: {len(report.violations_after_restoration)}")
    off = ", ".join(report.unsupplied_at_end) or "none"
    typer.echo(f"  status at the end: {report.status} (unsupplied: {off})")
    for f in report.faults:
        verdict = {True: "located", False: "MISLOCATED", None: "not planned for"}
        typer.echo(f"  fault on {f['line']} at {f['at'][11:19]}: "
                   f"{verdict[f['located_correctly']]} ({', '.join(f['located_lines']) or '-'})")
    for r in report.reclosed_onto_fault:
        typer.echo(f"  RECLOSED ONTO A FAULT at {r['time'][11:19]}: {r['breaker']} tripped "
                   f"{r['after_s']:g} s after FLISR closed {', '.join(r['closed'])}")
    for grid in report.microgrids:
        if grid["islanded_at"]:
            typer.echo(f"  microgrid {grid['name']} islanded at {grid['islanded_at'][11:19]}; "
                       f"hold time at the end {grid['hold_time_h_at_end']} h")
    for message in report.runtime_errors:
        typer.echo(f"  runtime error: {message}")
    for e in report.expectations:
        typer.echo(f"  expected {e['figure']} {e['expected']}: {e['actual']} "
                   f"{'met' if e['met'] else 'NOT MET'}")
    for p in written:
        typer.echo(f"  wrote {p}")
