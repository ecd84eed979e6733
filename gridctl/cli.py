"""The ``gridctl`` command line: one command for the operator, a verb per job."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

import typer

from network_models.errors import InputError

app = typer.Typer(
    name="gridctl",
    help="Dispatch and self-healing controller for diamond-type 10 kV distribution grids.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Sub-commands live in gridctl/commands/<verb>.py; each exposes `register(app)`.
    from gridctl.commands import config, dayahead, drill, forecast, grid, run, sim, study

    grid.register(app)
    forecast.register(app)
    dayahead.register(app)
    sim.register(app)
    run.register(app)
    drill.register(app)
    config.register(app)
    study.register(app)


def _input_warnings_as_lines() -> None:
    """A warning about a person's input (part of a file left out) is one line naming the file,
    as errors are, not Python's warning with a source line."""
    from forecasts.errors import ForecastInputWarning

    warnings.simplefilter("always", ForecastInputWarning)  # each one, not once per line
    shown = warnings.showwarning
    if getattr(shown, "gridctl_input_lines", False):
        return  # installed by an earlier main() in this process (tests call it many times)

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ForecastInputWarning):
            typer.echo(f"gridctl: warning: {message}", err=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show.gridctl_input_lines = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """Console entry point: errors a person caused print one clear line and exit 2, no traceback."""
    _register()
    _input_warnings_as_lines()
    try:
        # standalone mode: click prints usage errors itself and exits with 2
        app(args=argv, prog_name="gridctl")
    except InputError as exc:
        typer.echo(f"gridctl: error: {exc}", err=True)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def console() -> None:
    """The installed ``gridctl`` command: :func:`main`, then an exit without the interpreter's
    teardown. Freeing the millions of objects a grid, an OPC UA address space and the solver
    libraries hold took 1-3 s after the work was done; every file and database is closed by
    then, so output and logs are flushed and the process ends."""
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # a reader that left the pipe (``| head``) takes no more
        with contextlib.suppress(OSError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
