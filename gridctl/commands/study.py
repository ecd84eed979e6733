"""``gridctl study ...``: questions answered over many plans. ``study hosting``: how many more EV
connectors or kWp of PV each feeder, transformer, EV site and the whole grid can take.
``study reliability``: Monte Carlo SAIFI, SAIDI, CAIDI, ASAI, MAIFI and ENS on Dask."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridctl.commands.arguments import parse_day
from gridctl.commands.inputs import (
    ConfigOption,
    DevicesOption,
    GrowthScenarioOption,
    SetOption,
    study_of,
)
from gridctl.commands.outputs import FOLDER_HELP, dumps_json, output_folder
from gridctl.errors import UserInputError

HOSTING_JSON = "hosting.json"
RELIABILITY_JSON = "reliability.json"
RELIABILITY_PLOT = "reliability_convergence.png"


def register(app: typer.Typer) -> None:
    study_app = typer.Typer(help="Studies over many plans: hosting capacity, reliability.",
                            no_args_is_help=True)
    study_app.command("hosting")(hosting)
    study_app.command("reliability")(reliability)
    app.add_typer(study_app, name="study")


def hosting(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Built-in model, simbench:CODE or model file.")
    ] = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    what: Annotated[str, typer.Option(
        "--what", help="ev: added EV connectors; pv: added PV kWp.")] = "ev",
    date: Annotated[list[str] | None, typer.Option(
        "--date", help="A planned day to hold, YYYY-MM-DD (repeatable); default 2026-07-15 "
        "(July weekday: peak load, every commuter) and 2026-05-03 (a May Day Sunday: light "
        "load, high sun).")] = None,
    scope: Annotated[str, typer.Option(
        "--scope", help="Comma-separated: grid, feeders, transformers, sites.")
    ] = "grid,feeders,transformers,sites",
    resolution: Annotated[int | None, typer.Option(
        "--resolution", help="Search step: connectors (ev, default 1) or kWp (pv, default "
        "10).")] = None,
    control: Annotated[str, typer.Option(
        "--control", help="uncontrolled, orderly, or both.")] = "both",
    ev_type: Annotated[str, typer.Option(
        "--ev-type", help="Type of a new EV site where a location has none: office_ac, "
        "residential_ac, public_dc, bus_depot.")] = "residential_ac",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the forecasts and the added "
                                      "sessions.")] = 0,
    workers: Annotated[int, typer.Option(
        "--workers", help="Processes that plan side by side (the checks of one search round); "
        "2 on a 2-core machine roughly halves the time. 1: everything in this process.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help=f"{FOLDER_HELP} Writes {HOSTING_JSON} and one bar chart per "
        "feeder (hosting_FEEDER.png).")] = None,
    config: ConfigOption = None,
    settings: SetOption = None,
) -> None:
    """For each distribution feeder, distribution transformer and EV site, and the whole grid:
    the largest added EV connectors (--what ev) or PV kWp (--what pv) for which the worst
    planned day still holds every limit in AC, uncontrolled against gridctl's orderly day-ahead
    dispatch, each checked in AC at the value found, with the element that breaks just above.
    (Its length is its option declarations: typer reads them from the signature.)"""
    from gridctl.studies.hosting import HostingSettings, What, results_frame, run_hosting
    from network_models import load_model
    from network_models.registry import EvSiteType

    kind = _choice(what, What, "--what")
    scopes, controls = _scopes_of(scope), _controls_of(control)
    site_type = _choice(ev_type, EvSiteType, "--ev-type")
    _at_least_one(resolution, "--resolution")
    _at_least_one(workers, "--workers")
    days = tuple(parse_day(d) for d in date) if date else None
    study = study_of(config, settings)
    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    target = (output_folder(out, writes=[HOSTING_JSON, *_chart_names(grid)])
              if out is not None else None)
    step = resolution or (1 if kind is What.EV else 10)
    hs = HostingSettings(resolution=step, ev_type=site_type, seed=seed, controls=controls,
                         workers=workers)
    kwargs = {"days": days} if days else {}

    def progress(line: str) -> None:
        if not as_json:
            typer.echo(line, err=True)

    results, st = run_hosting(grid, kind, scopes=scopes, settings=hs, config=study.dispatch,
                              progress=progress, **kwargs)
    summary = {
        "model": model,
        "scenario": growth_scenario,
        "what": kind.value,
        "unit": st.unit,
        "days": [d.isoformat() for d in st.day_dates],
        "resolution": step,
        "ev_short_frac": hs.ev_short_frac,
        "pv_curtail_frac": hs.pv_curtail_frac,
        "results": [r.to_dict() for r in results],
    }
    if target is not None:
        summary["outputs"] = [str(out / p.name)
                              for p in _write_outputs(target, summary, results, st.unit)]
    if as_json:
        typer.echo(dumps_json(summary))
        return
    _print_table(results_frame(results), summary)


def _scopes_of(scope: str) -> list:
    """``--scope`` as the study's scopes (at least one)."""
    from gridctl.studies.hosting import Scope

    scopes = [_choice(s.strip(), Scope, "--scope") for s in scope.split(",") if s.strip()]
    if not scopes:
        raise UserInputError("expected at least one of grid, feeders, transformers, sites",
                             source="--scope")
    return scopes


def _controls_of(control: str) -> tuple:
    """``--control`` as the controls compared: one of them, or both."""
    from gridctl.studies.hosting import Control

    return (tuple(Control) if control == "both"
            else (_choice(control, Control, "--control", extra="both"),))


def _at_least_one(n: int | None, option: str) -> None:
    if n is not None and n < 1:
        raise UserInputError(f"{n}: expected a whole number of at least 1", source=option)


def _write_outputs(target, summary: dict, results, unit: str) -> list[Path]:
    """The summary JSON and one bar chart per feeder, into the output folder (all or none)."""
    with target.writing() as folder:
        (folder / HOSTING_JSON).write_text(dumps_json(summary, indent=1), encoding="utf-8")
        return [folder / HOSTING_JSON, *write_feeder_charts(results, folder, unit)]


def _choice(value: str, enum, option: str, *, extra: str | None = None):
    try:
        return enum(value)
    except ValueError:
        names = [e.value for e in enum] + ([extra] if extra else [])
        raise UserInputError(f"{value!r}: expected one of {', '.join(names)}",
                             source=option) from None


def _chart_names(grid) -> list[str]:
    from network_models.topology import distribution_feeders, switch_roles

    if not grid.registry.switches:
        return []
    names = [f.name for f in distribution_feeders(grid.net, switch_roles(grid.net,
                                                                         grid.registry))]
    return [f"hosting_{n}.png" for n in names]


def write_feeder_charts(results, folder: Path, unit: str) -> list[Path]:
    """One bar chart per feeder: the feeder, its transformers and EV sites, uncontrolled
    beside orderly (matplotlib, PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_feeder: dict[str, list] = {}
    for r in results:
        if r.location.feeder is not None:
            by_feeder.setdefault(r.location.feeder, []).append(r)
    written = []
    for feeder, rows in by_feeder.items():
        rows.sort(key=lambda r: ({"feeder": 0, "transformer": 1, "ev_site": 2}[r.location.kind],
                                 r.location.name))
        controls = list(rows[0].found)
        x = np.arange(len(rows))
        width = 0.8 / len(controls)
        fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows) + 2), 4))
        for k, c in enumerate(controls):
            vals = [r.found[c].value for r in rows]
            bars = ax.bar(x + (k - (len(controls) - 1) / 2) * width, vals, width, label=c.value)
            for bar, r in zip(bars, rows, strict=True):
                b = r.found[c].binding or {}
                ax.annotate(b.get("element", "cap"), (bar.get_x() + bar.get_width() / 2,
                                                      bar.get_height()),
                            ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(x, [f"{r.location.kind}\n{r.location.name}" for r in rows], fontsize=7)
        ax.set_ylabel(f"added {unit}")
        ax.set_title(f"Hosting capacity, feeder {feeder} (label: binding element)")
        ax.legend()
        fig.tight_layout()
        path = folder / f"hosting_{feeder}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _print_table(frame, summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"Hosting capacity, {summary['model']}: added {summary['unit']} "
                  f"(worst of {', '.join(summary['days'])})")
    for col in frame.columns:
        table.add_column(col, justify="right" if col.endswith("_added") else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)
    for p in summary.get("outputs", []):
        console.print(f"wrote {p}")



def reliability(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Built-in model, simbench:CODE or model file.")
    ] = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    years: Annotated[int, typer.Option("--years", help="Simulated years.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the failure draws (each year "
                                      "draws from its own stream).")] = 0,
    automation: Annotated[str, typer.Option(
        "--automation", help="flisr (FLISR restores in seconds), manual (crews switch), or "
        "both.")] = "both",
    assumptions: Annotated[Path | None, typer.Option(
        "--assumptions", help="Failure-rate table (YAML); default the shipped literature "
        "table.")] = None,
    load_levels: Annotated[int, typer.Option(
        "--load-levels", help="Load levels a failure's plan is made at (hours of the week "
        "grouped by district load).")] = 3,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="An existing Dask scheduler, tcp://HOST:8786; default a "
        "LocalCluster on this machine.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Workers of the LocalCluster (one thread each).")] = 2,
    store: Annotated[Path | None, typer.Option(
        "--store", help="SQLite file of finished tasks: a study stopped and run again with "
        "the same file resumes. Without it nothing is kept.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help=f"{FOLDER_HELP} Writes {RELIABILITY_JSON} and "
        f"{RELIABILITY_PLOT}.")] = None,
) -> None:
    """Monte Carlo reliability: failures drawn from a sourced assumption table, each evaluated
    with gridctl's FLISR at the load of its hour, for the grid as built and its single-ring
    derivative, with and without automation; SAIFI, SAIDI, CAIDI, ASAI, MAIFI, ENS per customer
    class with 95 % intervals, ASAI beside Shanghai's 99.9991 %."""
    from gridctl.studies.reliability import ReliabilitySettings, run_reliability
    from gridctl.studies.reliability_assumptions import read_assumptions
    from gridctl.studies.reliability_report import study_summary, write_convergence_plot
    from network_models import load_model

    _at_least_one(years, "--years")
    _at_least_one(workers, "--workers")
    _at_least_one(load_levels, "--load-levels")
    if load_levels > 48:
        raise UserInputError(f"{load_levels}: expected at most 48 (hours of a weekday and a "
                             "weekend day)", source="--load-levels")
    automations = _automations_of(automation)
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise UserInputError(f"{scheduler!r}: expected an address like tcp://HOST:8786",
                             source="--scheduler")
    if store is not None and (store.is_dir() or not store.parent.is_dir()):
        raise UserInputError(f"{store}: expected an SQLite file in an existing folder",
                             source="--store")
    table = read_assumptions(assumptions)
    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    target = (output_folder(out, writes=[RELIABILITY_JSON, RELIABILITY_PLOT])
              if out is not None else None)
    try:
        study = run_reliability(grid, table, ReliabilitySettings(years=years, seed=seed,
                                                                 load_levels=load_levels),
                                scheduler=scheduler, workers=workers, store=store,
                                progress=None if as_json else _progress_bar())
    except (OSError, TimeoutError) as exc:
        if scheduler is None:
            raise
        raise UserInputError(f"{scheduler}: cannot reach the scheduler ({exc})",
                             source="--scheduler") from None
    summary = study_summary(study, table, model=model, scenario=growth_scenario,
                            automations=automations)
    if target is not None:
        with target.writing() as folder:
            (folder / RELIABILITY_JSON).write_text(dumps_json(summary, indent=1),
                                                   encoding="utf-8")
            write_convergence_plot(study, folder / RELIABILITY_PLOT, automations)
        summary["outputs"] = [str(out / RELIABILITY_JSON), str(out / RELIABILITY_PLOT)]
    if as_json:
        typer.echo(dumps_json(summary))
        return
    _print_reliability(summary)


def _automations_of(automation: str) -> tuple[str, ...]:
    if automation == "both":
        return ("flisr", "manual")
    if automation in ("flisr", "manual"):
        return (automation,)
    raise UserInputError(f"{automation!r}: expected one of flisr, manual, both",
                         source="--automation")


def _progress_bar():
    """A progress callback drawing one rich bar per stage (plans, years) on stderr."""
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=False)
    ids: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in ids:
            if not ids:
                bar.start()
            ids[stage] = bar.add_task(stage, total=total)
        bar.update(ids[stage], completed=done)
        if stage == "years" and done == total:
            bar.stop()

    return update


def _print_reliability(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title=f"Reliability, {summary['model']}: {summary['years']} simulated years "
                  "(mean [95 % interval])")
    for col in ("design/automation", "SAIFI /yr", "SAIDI min/yr", "CAIDI min", "ASAI %",
                "MAIFI /yr", "ENS kWh/yr"):
        table.add_column(col)
    for variant, f in summary["overall"].items():
        def ci(v, d=3):
            return f"{v[0]:.{d}f} [{v[1]:.{d}f}, {v[2]:.{d}f}]"
        caidi = "-" if f["caidi_min"] is None else f"{f['caidi_min']:.1f}"
        table.add_row(variant, ci(f["saifi_per_year"], 4), ci(f["saidi_min_per_year"], 2),
                      caidi, f"{f['asai_pct'][0]:.5f}", f"{f['maifi_per_year'][0]:.4f}",
                      ci(f["ens_kwh_per_year"], 0))
    console.print(table)
    console.print("Shanghai core urban grid 2020: ASAI 99.9991 %")
    if summary["single_ring_opened"]:
        console.print(f"single ring: opened {', '.join(summary['single_ring_opened'])}")
    for p in summary.get("outputs", []):
        console.print(f"wrote {p}")
