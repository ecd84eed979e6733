"""``gridctl sim ...``: run the simulated field (an OPC UA server) and inject faults into it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from gridctl.commands.inputs import (
    DevicesOption,
    ForecastOption,
    GrowthScenarioOption,
    LoadOption,
    PvOption,
    SessionsOption,
    WeatherOption,
    checked_grid,
    operator_inputs,
)
from gridctl.commands.sim_serve import (
    anonymous_policy,
    power_flow_engine,
    serve_until_stopped,
    server_security_of,
    show_audit_log,
    start_of,
)
from gridctl.errors import UserInputError

sim_app = typer.Typer(
    help="The simulated field: an OPC UA server over the grid's AC physics, with fault injection.",
    no_args_is_help=True,
)

PASSWORD_ENV = "GRIDCTL_OPCUA_PASSWORD"

EndpointOption = Annotated[str, typer.Option(
    "--endpoint", "-e", help="The simulator's endpoint, opc.tcp://HOST:PORT.")]
SecurityOption = Annotated[str, typer.Option(
    "--security", help="Message security of this connection: none, sign or sign_encrypt.")]
PkiOption = Annotated[Path | None, typer.Option(
    "--pki", help="PKI directory (own certificate, trusted/, rejected/); default "
    "~/.local/share/gridctl/pki.")]
UserOption = Annotated[str | None, typer.Option(
    "--user", "-u", help=f"User name (an operator); the password is read from ${PASSWORD_ENV} "
    "or asked for.")]


def register(app: typer.Typer) -> None:
    app.add_typer(sim_app, name="sim")


@sim_app.callback()
def _library_logs() -> None:
    # asyncua's warnings reach stderr, its security warnings first; only messages that are
    # noise here (revised session timeouts, refusals gridctl reports itself) are silenced
    from gridctl.field.asyncua_logs import show_asyncua_warnings

    show_asyncua_warnings()


@sim_app.command("serve")
def serve(
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Built-in model, simbench:CODE or a model file.")]
    = "jiuke_oasis",
    devices: DevicesOption = None,
    growth_scenario: GrowthScenarioOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).")]
    = 4840,
    speed: Annotated[float, typer.Option("--speed", help="Simulated seconds per wall second; "
                                         "0 runs as fast as possible.")] = 60.0,
    date: Annotated[str | None, typer.Option("--date", "-d", help="Day to simulate from its "
                                             "midnight, YYYY-MM-DD (Asia/Shanghai); default "
                                             "today.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start time instead of --date, "
                                              "ISO 8601 (naive = the model's time zone).")]
    = None,
    step_mode: Annotated[bool, typer.Option("--step-mode", help="Hold the clock; advance only "
                                            "on Step(n) calls (`gridctl sim step`).")] = False,
    tick: Annotated[float, typer.Option("--tick", help="Simulated seconds per tick.")] = 60.0,
    heartbeat_timeout: Annotated[float, typer.Option(
        "--heartbeat-timeout", help="Simulated seconds without a setpoint write after which a "
        "BESS, PV inverter or charging site falls back to its safe default.")] = 300.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the day's truth (load, "
                                      "PV, EV sessions).")] = 0,
    forecast: ForecastOption = None,
    load: LoadOption = None,
    pv: PvOption = None,
    weather: WeatherOption = None,
    sessions: SessionsOption = None,
    engine: Annotated[str, typer.Option("--engine", help="Power flow: power_grid_model or "
                                        "pandapower.")] = "power_grid_model",
    security: Annotated[str, typer.Option("--security", help="Endpoints to offer, comma "
                                          "separated: none, sign, sign_encrypt "
                                          "(Basic256Sha256).")] = "sign,sign_encrypt",
    pki: PkiOption = None,
    users: Annotated[Path | None, typer.Option("--users", help="Users file (YAML: name, role, "
                                               "password_hash); see `gridctl sim user-add`.")]
    = None,
    anonymous: Annotated[str, typer.Option("--anonymous", help="Anonymous sessions: viewer "
                                           "(read only) or refuse.")] = "viewer",
    allow_insecure_passwords: Annotated[bool, typer.Option(
        "--allow-insecure-passwords", help="Accept user passwords on a None channel (anyone on "
        "the path can read them and use the session): for tests on 127.0.0.1 only.")] = False,
    lockout_after: Annotated[int, typer.Option(
        "--lockout-after", min=1, help="Consecutive failed logins that lock an account.")] = 5,
    lockout_minutes: Annotated[float, typer.Option(
        "--lockout-minutes", min=0.0, help="How long a locked account stays locked.")] = 15.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print events.")] = False,
) -> None:
    """Start the simulated field and run until Ctrl-C.

    AC physics each tick, setpoints within limits and ramp rates, EV sessions, protection and
    fault indicators, device-side safety, fault injection methods."""
    from gridctl.field.security import parse_modes
    from hil_sim.config import SimConfig
    from hil_sim.server import SimServer

    modes = parse_modes(security)
    anonymous_sessions = anonymous_policy(anonymous)
    power_flow = power_flow_engine(engine)
    begin = start_of(date, start)
    server_security = server_security_of(
        modes, anonymous_sessions, pki=pki, users=users,
        allow_insecure_passwords=allow_insecure_passwords, lockout_after=lockout_after,
        lockout_minutes=lockout_minutes)
    # the truth replays the operator's measured day where the files cover it
    inputs = operator_inputs(forecast=forecast, load=load, pv=pv, weather=weather,
                             sessions=sessions)
    grid = checked_grid(model, devices, growth_scenario, inputs)
    config = SimConfig(tick_s=tick, heartbeat_timeout_s=heartbeat_timeout, seed=seed,
                       inputs=inputs, engine=power_flow)
    server = SimServer(
        grid, host=host, port=port, speed=speed, step_mode=step_mode, start=begin,
        config=config, on_event=None if quiet else typer.echo, security=server_security,
    )
    show_audit_log()
    serve_until_stopped(server, grid, users, host=host, port=port, tick=tick,
                        step_mode=step_mode, speed=speed)


@sim_app.command("fault")
def fault(
    kind: Annotated[str, typer.Argument(help="line, transformer, substation, comm, trip or "
                                        "stuck.")],
    target: Annotated[str, typer.Argument(help="Line, transformer, substation or device id.")],
    endpoint: EndpointOption = "opc.tcp://127.0.0.1:4840",
    security: SecurityOption = "sign_encrypt",
    pki: PkiOption = None,
    user: UserOption = None,
) -> None:
    """Inject a fault into a running simulator.

    A cable fault (line), loss of a transformer or a substation's supply, loss of
    communication with a device (comm), a device trip or a stuck meter."""
    from gridctl.field.contract import SimulatorNodes

    method = SimulatorNodes.FAULT_KINDS.get(kind.strip().lower())
    if method is None:
        raise UserInputError(f"unknown fault kind {kind!r}: expected one of "
                             f"{', '.join(SimulatorNodes.FAULT_KINDS)}", field="KIND")
    typer.echo(_call(endpoint, security, pki, user, method, target))


@sim_app.command("clear")
def clear(
    target: Annotated[str | None, typer.Argument(help="What to clear (line, transformer, "
                                                 "substation or device id).")] = None,
    all_faults: Annotated[bool, typer.Option("--all", help="Clear every injected fault.")]
    = False,
    endpoint: EndpointOption = "opc.tcp://127.0.0.1:4840",
    security: SecurityOption = "sign_encrypt",
    pki: PkiOption = None,
    user: UserOption = None,
) -> None:
    """Clear an injected fault (or all of them).

    Repairs a line, restores a transformer, a substation's supply, communication, a tripped
    device or a stuck meter. Breakers that protection opened stay open."""
    if all_faults == (target is not None):
        raise UserInputError("give a TARGET or --all (not both)", field="TARGET")
    if all_faults:
        typer.echo(_call(endpoint, security, pki, user, "ClearAll"))
    else:
        typer.echo(_call(endpoint, security, pki, user, "ClearFault", target))


@sim_app.command("step")
def step(
    ticks: Annotated[int, typer.Argument(min=1, help="Ticks to advance.")] = 1,
    endpoint: EndpointOption = "opc.tcp://127.0.0.1:4840",
    security: SecurityOption = "sign_encrypt",
    pki: PkiOption = None,
    user: UserOption = None,
) -> None:
    """Advance a simulator started with --step-mode by some ticks."""
    typer.echo(f"tick {_call(endpoint, security, pki, user, 'Step', ticks, timeout_s=600.0)}")


@sim_app.command("status")
def status(
    endpoint: EndpointOption = "opc.tcp://127.0.0.1:4840",
    security: SecurityOption = "sign_encrypt",
    pki: PkiOption = None,
    user: UserOption = None,
) -> None:
    """The simulator's clock, active faults, devices in fallback and recent events."""

    async def read(client: Any) -> tuple[Any, dict[str, Any]]:
        from hil_sim.drill_client import DrillClient

        drill = DrillClient(client)
        return await drill.clock(), await drill.status()

    clock, info = _with_client(endpoint, security, pki, user, read)
    typer.echo(f"{info['model']}: {clock.sim_time_iso}, tick {clock.tick}, "
               f"{'step mode' if clock.step_mode else f'speed {clock.speed:g}'}")
    typer.echo(f"power flow {'converged' if info['converged'] else 'NOT converged'}, import "
               f"{info['import_mw']:.2f} MW, losses {info['losses_mw']:.3f} MW")
    for label, key in (("active faults", "active_faults"), ("in fallback", "fallback_devices"),
                       ("without supply", "unsupplied_loads")):
        values = info[key] or []
        typer.echo(f"{label}: {', '.join(values) if values else 'none'}")
    for line in info["recent_events"] or []:
        typer.echo(f"  {line}")


@sim_app.command("user-add")
def user_add(
    users_file: Annotated[Path, typer.Argument(help="Users file (created if missing).")],
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="operator or viewer.")] = "viewer",
) -> None:
    """Add or replace a user in a users file.

    The password is read from $GRIDCTL_OPCUA_PASSWORD or asked for; only its salted hash is
    stored."""
    from gridctl.field.security import add_user

    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        f"password for {name}", hide_input=True, confirmation_prompt=True)
    account = add_user(users_file, name, role, password)
    typer.echo(f"{account.name} ({account.role.value}) written to {users_file}")


@sim_app.command("trust")
def trust(
    certificate: Annotated[Path, typer.Argument(help="A peer's certificate (.der or .pem).")],
    pki: PkiOption = None,
) -> None:
    """Add a peer's certificate to the trust list.

    A client's certificate for a server, a server's for a client. It is stored under its
    SHA-256 thumbprint; nothing already trusted is overwritten."""
    from gridctl.field.security import DEFAULT_PKI_DIR, trust_certificate

    typer.echo(trust_certificate(pki or DEFAULT_PKI_DIR, certificate).describe())


# ---------------------------------------------------------------------------------------------


def client_security_of(security: str, pki: Path | None, user: str | None) -> Any:
    from gridctl.field.security import DEFAULT_PKI_DIR, ClientSecurity, parse_modes

    modes = parse_modes(security)
    if len(modes) != 1:
        raise UserInputError("expected one security mode for a connection", source="--security")
    password = None
    if user is not None:
        password = os.environ.get(PASSWORD_ENV) or typer.prompt(f"password for {user}",
                                                                hide_input=True)
    return ClientSecurity(mode=modes[0], pki_dir=pki or DEFAULT_PKI_DIR, username=user,
                          password=password)


def _with_client(endpoint: str, security: str, pki: Path | None, user: str | None,
                 action: Any, *, timeout_s: float = 30.0) -> Any:
    from gridctl.field_client import FieldClient

    client_security = client_security_of(security, pki, user)

    async def run() -> Any:
        async with FieldClient(endpoint, security=client_security, timeout_s=timeout_s) as client:
            return await action(client)

    return asyncio.run(run())


def _call(endpoint: str, security: str, pki: Path | None, user: str | None, method: str,
          *args: Any, timeout_s: float = 30.0) -> Any:
    async def call(client: Any) -> Any:
        from hil_sim.drill_client import DrillClient

        return await DrillClient(client).call(method, *args)

    return _with_client(endpoint, security, pki, user, call, timeout_s=timeout_s)
