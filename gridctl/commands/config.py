"""``gridctl config show``: the study settings in force, each with where it came from."""

from __future__ import annotations

from typing import Annotated

import typer

from gridctl.commands.inputs import ConfigOption, SetOption, study_of
from gridctl.commands.outputs import dumps_json


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="The study settings (tariff, weights, limits, MPC, solver).",
                             no_args_is_help=True)
    config_app.command("show")(show)
    app.add_typer(config_app, name="config")


def show(
    config: ConfigOption = None,
    settings: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print every study setting in force: its value and whether it is gridctl's default, the
    study file's, a --set flag's, or derived from another setting. The same options on
    dayahead, run, sim serve and drill plan with exactly these."""
    study = study_of(config, settings)
    if as_json:
        typer.echo(dumps_json({k: {"value": v, "from": o} for k, v, o in study.settings}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="study settings in force")
    table.add_column("setting")
    table.add_column("value", justify="right")
    table.add_column("from")
    for key, value, origin in study.settings:
        table.add_row(key, "-" if value is None else f"{value:g}" if isinstance(value, float)
                      else str(value), origin)
    Console(width=120).print(table)
