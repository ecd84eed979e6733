"""``gridctl grid ...``: look at a grid model (AC checks, one-line diagram)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridctl.commands.inputs import DevicesOption, GrowthScenarioOption
from gridctl.commands.outputs import dumps_json, output_file
from gridctl.errors import UserInputError

grid_app = typer.Typer(help="Grid models: AC checks and one-line diagrams.", no_args_is_help=True)

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Built-in model (jiuke_oasis, case33bw, cigre_mv, mv_oberrhein), "
        "simbench:CODE (e.g. simbench:1-MV-urban--0-sw), or a path to a .yaml grid file or a "
        "pandapower .json net.",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(grid_app, name="grid")


@grid_app.command("check")
def check(
    model: ModelOption = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (figures a "
                                          "case could not give, e.g. a power flow that did not "
                                          "converge, are null).")] = False,
    n1: Annotated[bool, typer.Option("--n1/--no-n1", help="Run the N-1 screen.")] = True,
) -> None:
    """Power flow at peak and at light load, and the N-1 screen of backbone cables and
    substation transformers."""
    from network_models import load_model
    from network_models.ac_checks import check_grid

    report = check_grid(load_model(model, devices=devices, growth_scenario=growth_scenario), n1=n1)
    data = report.to_dict()
    if as_json:
        typer.echo(dumps_json(data))
    else:
        _print_table(data)
    if not report.ok:
        raise typer.Exit(1)


def _print_table(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    lim = data["limits"]
    console.print(
        f"[bold]{data['model']}[/]: {data['buses']} buses, {data['lines']} lines, "
        f"{data['trafos']} transformers, {data['switches']} switches, "
        f"{data['devices']} devices"
    )
    table = Table(title="AC power flow")
    for col in (
        "case",
        "converged",
        "V min pu",
        "V max pu",
        "line load %",
        "trafo load %",
        "import MW",
        "losses MW",
        "violations",
    ):
        table.add_column(col, justify="right")
    for name, c in data["cases"].items():
        table.add_row(
            name,
            str(c["converged"]),
            _fixed(c["v_min_pu"], 4),
            _fixed(c["v_max_pu"], 4),
            _fixed(c["max_line_loading_pct"], 1),
            _fixed(c["max_trafo_loading_pct"], 1),
            _fixed(c["import_mw"], 2),
            _fixed(c["losses_mw"], 3),
            str(len(c["violations"])),
        )
    console.print(table)
    n1 = data["n1"]
    console.print(
        f"N-1: {n1['outages']} single outages studied, "
        f"{n1['customers_interrupted']} customers interrupted, "
        f"{len(n1['violations'])} limit violations; worst line loading "
        f"{_fixed(n1['worst_line_loading_pct'], 1)} %, lowest voltage "
        f"{_fixed(n1['worst_v_min_pu'], 4)} pu"
    )
    for v in n1["violations"][:20]:
        console.print(
            f"  [red]{v['case']}[/]: {v['kind']} at {v['element']} = {_fixed(v['value'], 3)} "
            f"(limit {v['limit']})"
        )
    verdict = "[green]OK[/]" if data["ok"] else "[red]NOT OK[/]"
    console.print(
        f"Limits {lim['v_min_pu']}-{lim['v_max_pu']} pu, loadings <= "
        f"{lim['max_line_loading_pct']} %: {verdict}"
    )


def _fixed(value: float | None, digits: int) -> str:
    """A figure with ``digits`` decimals, or a dash where no power flow gave one."""
    return "-" if value is None else f"{value:.{digits}f}"


@grid_app.command("plot")
def plot(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write (replaced if it "
                                      "exists, once the new one is complete).")],
    model: ModelOption = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
) -> None:
    """Draw the one-line diagram with switch states (open switches hollow)."""
    from network_models import load_model
    from network_models.plot import plot_one_line

    target = output_file(out, suffix=".png")
    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    with target.writing() as path:
        plot_one_line(grid, path)
    typer.echo(f"wrote {out}")


@grid_app.command("reconfigure")
def reconfigure(
    model: ModelOption = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    case: Annotated[
        str, typer.Option("--case", help="Operating point: peak or light_load.")
    ] = "peak",
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="auto (exhaustive when small), exhaustive, or milp (MILP, then AC branch "
            "exchange).",
        ),
    ] = "auto",
) -> None:
    """Least-loss radial configuration of the open-loop feeders within limits: losses before
    and after, and the switches to operate."""
    from controllers.reconfiguration import reconfigure as find_configuration
    from network_models import load_model
    from network_models.ac_checks import LIGHT_LOAD, PEAK

    cases = {PEAK.name: PEAK, LIGHT_LOAD.name: LIGHT_LOAD}
    if case not in cases:
        raise UserInputError(
            f"unknown case {case!r}: expected one of {', '.join(cases)}", source="--case",
            field="case",
        )
    grid = load_model(model, devices=devices, growth_scenario=growth_scenario)
    result = find_configuration(grid, operating_point=cases[case], method=method)
    if as_json:
        typer.echo(dumps_json(result.to_dict()))
    else:
        _print_reconfiguration(result)
    if not result.after.within_limits:
        raise typer.Exit(1)


def _print_reconfiguration(result: ReconfigurationResult) -> None:  # noqa: F821 - imported late
    from rich.console import Console
    from rich.table import Table

    console = Console()
    proven = "proven optimal" if result.proven_optimal else "local optimum, not proven"
    console.print(
        f"[bold]{result.model}[/] at {result.operating_point}: {result.method} ({proven}), "
        f"{_configurations_line(result)} in {result.wall_time_s:.2f} s"
    )
    table = Table(title="AC power flow")
    for col in ("", "losses kW", "V min pu", "V max pu", "line load %", "trafo load %", "limits"):
        table.add_column(col, justify="right")
    for label, f in (("before", result.before), ("after", result.after)):
        table.add_row(
            label,
            f"{f.losses_mw * 1e3:.2f}",
            f"{f.v_min_pu:.4f}",
            f"{f.v_max_pu:.4f}",
            f"{f.max_line_loading_pct:.1f}",
            f"{f.max_trafo_loading_pct:.1f}",
            "OK" if f.within_limits else "violated",
        )
    console.print(table)
    console.print(
        f"Loss reduction {result.loss_reduction_mw * 1e3:.2f} kW; radial: {result.radial}; "
        f"open: {', '.join(result.open_switches)}"
    )
    if not result.operations:
        console.print("No switching needed: the present configuration is the best found.")
    for op in result.operations:
        console.print(f"  {op.step:>2}. {op.action:<5} {op.device} (line {op.line})")
    for note in result.notes:
        console.print(f"  note: {note}")


def _configurations_line(result) -> str:
    """How many radial configurations were accounted for, and how: solved by AC power flow, or
    bounded out by a proven lower bound on their losses."""
    total = f"{result.radial_configurations:,.0f}"
    solved = result.configurations_solved_ac
    if solved is None or solved == result.configurations_evaluated:
        return f"{result.configurations_evaluated:,} of {total} radial configurations solved by AC"
    bounded = result.configurations_evaluated - solved
    return (f"{solved:,} of {total} radial configurations solved by AC, {bounded:,} bounded out "
            "by their loss bound")

