"""``gridctl dayahead``: plan tomorrow (96 × 15 min a day, ``--days`` of them), validate it in AC
and report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from gridctl.commands.arguments import parse_day
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
    study_record,
    tariff_for,
)
from gridctl.commands.outputs import FOLDER_HELP, dumps_json, output_folder

OUTPUT_FILES = ("schedule.csv", "sessions.csv", "decision.json", "report.html")
EXIT_NOT_VALIDATED = 1  # the schedule written does not pass the AC check
EXIT_FALLBACK = 3  # the optimiser gave no plan: a fallback schedule was written (AC-checked)


def register(app: typer.Typer) -> None:
    app.command("dayahead")(dayahead)


def dayahead(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Built-in model, simbench:CODE or model file.")
    ] = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    date: Annotated[
        str, typer.Option("--date", help="Day to plan, YYYY-MM-DD (the model's local day).")
    ] = "2026-07-15",
    days: Annotated[int, typer.Option(
        "--days", help="Days to plan in one problem, from --date: 1 to 7.")] = 1,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help=f"{FOLDER_HELP} Writes {', '.join(OUTPUT_FILES)}.")
    ] = Path("out/dayahead"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampled forecasts (load, PV, EV "
                                      "sessions).")] = 0,
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
    """Forecast the days (or read the operator's forecast and measured files), solve their
    dispatch (96 steps a day) as one problem, check every step in AC power flow, and write the
    schedule (CSV), the decision record (JSON) and an HTML report against no control.

    Exits 0 for an optimal plan that passed the AC check, 1 when the schedule written fails it,
    3 when the optimiser gave no plan and a fallback schedule (named in every output) was
    written instead, 2 on bad input."""
    from controllers.dayahead import plan_verdict, run_dayahead
    from forecasts.timegrid import local_days
    from network_models import load_model

    day = parse_day(date)
    _check_days(days)
    study = study_of(config, settings)
    inputs = operator_inputs(forecast=forecast, load=load, pv=pv, weather=weather,
                             sessions=sessions, prices=prices, carbon=carbon)
    target = output_folder(out, writes=OUTPUT_FILES)
    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    start, horizon = local_days(day, days, grid.site.timezone)
    # every file is read (and bad input refused) here, before any solve or write
    bundle = inputs.bundle(grid, start, horizon, "15min", seed=seed,
                           tariff=tariff_for(study, inputs),
                           carbon_kg_per_kwh=study.carbon_kg_per_kwh)
    result = run_dayahead(grid, day, config=study.dispatch, bundle=bundle, days=days)
    limits = where_limits_bind(grid, result, study.dispatch)
    with target.writing() as folder:
        written = write_dayahead_outputs(result, folder, model_name=model,
                                         inputs=inputs.given(), study=study_record(study),
                                         growth_scenario=growth_scenario, limits=limits)
    paths = [out / p.name for p in written]
    summary = {
        "model": model,
        "scenario": growth_scenario,
        "date": day.isoformat(),
        "verdict": plan_verdict(result.kpis),
        "days": days,
        **result.kpis,
        "baseline": result.baseline_kpis,
        **limits,
        "wall_s": round(result.wall_s, 3),
        "outputs": [str(p) for p in paths],
    }
    if as_json:
        typer.echo(dumps_json(summary))
    else:
        _print_summary(summary)
    if not result.kpis["ac_validated"]:
        raise typer.Exit(EXIT_NOT_VALIDATED)
    if result.plan.record.fallback is not None:
        raise typer.Exit(EXIT_FALLBACK)


def _check_days(days: int) -> None:
    from controllers.dayahead import MAX_DAYS
    from gridctl.errors import UserInputError

    if not 1 <= days <= MAX_DAYS:
        raise UserInputError(f"{days}: expected a whole number of days from 1 to {MAX_DAYS}",
                             source="--days")


def where_limits_bind(grid, result, config) -> dict:
    """``binding_constraints`` (the network limits that bound the optimiser, with their shadow
    prices, as the decision record has them), ``limits_reached`` (the limits the plan's AC flow
    reaches), ``baseline_violations`` (how many AC violations no control has) and
    ``baseline_violated`` (those by element)."""
    from controllers.dayahead import limits_reached, violated_elements

    return {
        "binding_constraints": [dict(b) for b in result.plan.record.binding_constraints],
        "limits_reached": limits_reached(grid, result, config),
        "baseline_violations": len(result.baseline_ac.violations),
        "baseline_violated": violated_elements(result),
    }


def write_dayahead_outputs(
    result, out: Path, *, model_name: str, inputs: dict | None = None, study: dict | None = None,
    growth_scenario: str | None = None, limits: dict | None = None,
) -> list[Path]:
    """schedule.csv, sessions.csv, decision.json and report.html into the folder ``out``
    (which exists; :mod:`gridctl.commands.outputs` puts it in place when it is complete)."""
    from controllers.dayahead import (
        plan_verdict,
        session_table,
        sessions_at_start,
        unservable_sessions,
    )
    from gridctl.report import write_html_report

    plan, bundle = result.plan, result.bundle
    written = []

    def write(name: str, text: str) -> Path:
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
        return path

    write("schedule.csv", plan.schedule.setpoint_table().to_csv(float_format="%.5f"))
    states = sessions_at_start(bundle)
    write("sessions.csv", session_table(bundle, states, plan.schedule).to_csv(index=False))
    unservable = unservable_sessions(bundle, states, plan.schedule)
    decision = _decision_record(result, model_name=model_name, inputs=inputs, study=study,
                                growth_scenario=growth_scenario, limits=limits,
                                unservable=unservable)
    write("decision.json", dumps_json(decision, indent=1))
    report = write_html_report(
        out / "report.html",
        title=f"gridctl day-ahead dispatch: {model_name}, {_horizon(bundle)['days_text']}",
        index=bundle.index,
        panels=_report_panels(result),
        kpis=result.kpis,
        baseline_kpis=result.baseline_kpis,
        record=plan.record.to_dict(),
        notes=list(plan.record.notes) + binding_notes(plan.record.binding_constraints)
        + _ev_notes(result.kpis, unservable) + _limit_notes(limits or {})
        + [f"source of {part}: {text}" for part, text in bundle.provenance.items()],
        verdict=plan_verdict(result.kpis),
    )
    written.append(report)
    return written


def _decision_record(
    result, *, model_name: str, inputs: dict | None, study: dict | None,
    growth_scenario: str | None,
    limits: dict | None, unservable: list[dict],
) -> dict:
    """decision.json: the plan's verdict, figures against no control, the decision record, where
    the forecasts and settings came from, and the EV sessions no plan could serve."""
    from controllers.dayahead import plan_verdict

    plan, bundle = result.plan, result.bundle
    return {
        "model": model_name,
        "scenario": growth_scenario,
        "date": result.date.isoformat(),
        "verdict": plan_verdict(result.kpis),
        "horizon": _horizon(bundle),
        "kpis": result.kpis,
        "baseline": result.baseline_kpis,
        "record": plan.record.to_dict(),
        "forecast_provenance": dict(bundle.provenance),
        "inputs": inputs or {},  # the operator's files, by option
        "study": study or {},  # settings that are not the defaults, and where they came from
        # asked for more than their stay allows at their power: planned at their maximum
        "ev_unservable_sessions": unservable,
        **(limits or {}),  # where the plan reaches its limits, what no control breaks
    }


def _report_panels(result) -> list:
    """report.html's panels: import, PV, state of charge, EV charging, voltage band and the
    highest loading, planned against no control (a panel with nothing to draw is left out)."""
    from gridctl.report import Panel, Series

    plan, bundle = result.plan, result.bundle
    ac, base_ac = plan.ac.result, result.baseline_ac.result
    pv_avail = bundle.pv_p_mw.sum(axis=1).to_numpy()
    panels = [
        Panel(
            title="Grid import",
            ylabel="MW",
            series=[
                Series(label="planned", values=plan.ac.import_mw),
                Series(label="no control", values=result.baseline_ac.import_mw, style="--"),
            ],
        ),
        Panel(
            title="PV: available and dispatched",
            ylabel="MW",
            series=[
                Series(label="available", values=pv_avail, style="--"),
                Series(label="dispatched", values=plan.schedule.pv_p_mw.sum(axis=1).to_numpy()),
            ],
        ),
        Panel(
            title="BESS state of charge",
            ylabel="fraction",
            series=[
                Series(label=c, values=plan.schedule.bess_soc_frac[c].to_numpy())
                for c in plan.schedule.bess_soc_frac.columns
            ],
        ),
        Panel(
            title="EV charging",
            ylabel="MW",
            series=[
                Series(label="orderly", values=plan.schedule.ev_site_p_mw.sum(axis=1).to_numpy()),
                Series(
                    label="uncontrolled",
                    values=result.baseline.ev_site_p_mw.sum(axis=1).to_numpy(),
                    style="--",
                ),
            ],
        ),
        Panel(
            title="Voltage band (lowest and highest bus)",
            ylabel="pu",
            series=[
                Series(label="planned min", values=np.nanmin(ac.vm_pu, axis=1)),
                Series(label="planned max", values=np.nanmax(ac.vm_pu, axis=1)),
                Series(label="no control min", values=np.nanmin(base_ac.vm_pu, axis=1), style="--"),
            ],
            hlines=[(0.93, "0.93 pu"), (1.07, "1.07 pu")],
        ),
        Panel(
            title="Highest loading",
            ylabel="%",
            series=[  # a grid without transformers (IEEE 33-bus) draws lines only
                Series(label=label, values=np.nanmax(values, axis=1), style=style)
                for label, values, style in (
                    ("lines", ac.line_loading_pct, "-"),
                    ("transformers", ac.trafo_loading_pct, "-"),
                    ("transformers, no control", base_ac.trafo_loading_pct, "--"),
                )
                if values.shape[1]
            ],
            hlines=[(100.0, "100 %")],
        ),
    ]
    return [p for p in panels if p.series]  # a grid without batteries has no SoC to draw


def _horizon(bundle) -> dict:
    """The planned horizon as the decision record and the report say it (local time)."""
    first, last = bundle.start.date(), (bundle.end - bundle.step).date()
    return {
        "start": bundle.start.isoformat(),
        "end": bundle.end.isoformat(),
        "timezone": str(bundle.index.tz),
        "steps": len(bundle.index),
        "days_text": first.isoformat() if first == last
        else f"{first.isoformat()} to {last.isoformat()}",
    }


def binding_notes(binding: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report's lines on the limits that bound the plan: where, when, and the dearest
    shadow price (the decision record has every step's)."""
    if not binding:
        return ["no network limit bound the plan"]
    lines = []
    for b in binding:
        times = b["times"]
        span = times[0][11:16] if len(times) == 1 else f"{times[0][11:16]}-{times[-1][11:16]}"
        lines.append(f"binding: {b['kind']} at {b['element']} in {len(times)} step(s) "
                     f"({span}), shadow price up to {b['max_shadow_price']:g} {b['unit']}")
    return lines


def _ev_notes(kpis: dict, unservable: list[dict]) -> list[str]:
    """The report's EV lines: unservable on its own apart from short by the grid or the plan."""
    lines = [
        f"EV energy owed at departure: {kpis['ev_energy_shortfall_mwh'] * 1000:.1f} kWh, of which "
        f"{kpis['ev_energy_unservable_mwh'] * 1000:.1f} kWh unservable on its own "
        f"({kpis['ev_sessions_unservable']} session(s)) and "
        f"{kpis['ev_energy_short_by_grid_or_plan_mwh'] * 1000:.1f} kWh short because of the "
        "grid or the plan"
    ]
    lines += [f"unservable: {u['session_id']} at {u['charger']} {u['connector']}: {u['why']}; "
              f"planned {u['energy_planned_kwh']:.1f} kWh, {u['unservable_kwh']:.1f} kWh short"
              for u in unservable[:50]]
    if len(unservable) > 50:
        lines.append(f"... and {len(unservable) - 50} more unservable sessions (decision.json)")
    return lines


def _limit_notes(limits: dict) -> list[str]:
    """The report's and the console's lines on where limits bind and what no control breaks."""
    lines = []
    if "baseline_violations" in limits:
        worst = ", ".join(f"{v['element']} {v['kind']} {v['worst_value']:g} (limit "
                          f"{v['limit']:g}) at {v['worst_time'][11:16]}"
                          for v in limits["baseline_violated"][:5])
        lines.append(f"no control: {limits['baseline_violations']} AC violation(s)"
                     + (f", worst {worst}" if worst else ""))
    for b in limits.get("limits_reached", [])[:20]:
        lines.append(f"limit reached in AC: {b['kind']} {b['element']} {b['worst_value']:g} "
                     f"{b['unit']} (planned limit {b['planned_limit']:g}, AC limit "
                     f"{b['limit']:g}) in {len(b['steps'])} step(s), worst at "
                     f"{b['worst_time'][11:16]}")
    more = len(limits.get("limits_reached", [])) - 20
    if more > 0:
        lines.append(f"... and {more} more limits reached (decision.json)")
    return lines


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=110)
    console.print(f"plan: {summary['verdict']}")
    table = Table(title=f"Day-ahead {summary['model']} {summary['date']}")
    table.add_column("figure")
    table.add_column("plan", justify="right")
    table.add_column("no control", justify="right")
    for k, v in summary.items():
        if k in ("baseline", "outputs", "model", "date", "verdict", "binding_constraints",
                 "limits_reached", "baseline_violated", "scenario"):
            continue
        table.add_row(k, str(v), str(summary["baseline"].get(k, "")))
    console.print(table)
    for line in binding_notes(summary.get("binding_constraints", [])) + _limit_notes(summary):
        console.print(line)
    for p in summary["outputs"]:
        console.print(f"wrote {p}")
