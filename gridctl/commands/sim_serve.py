"""The steps of ``gridctl sim serve`` after its options: the options read, the server's
security, the field started, announced and served until Ctrl-C."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import typer

from gridctl.errors import UserInputError

__all__ = [
    "announce",
    "anonymous_policy",
    "power_flow_engine",
    "serve_until_stopped",
    "server_security_of",
    "show_audit_log",
    "start_of",
]


def anonymous_policy(anonymous: str):
    """``--anonymous`` as a policy (viewer or refuse)."""
    from gridctl.field.security import AnonymousPolicy

    try:
        return AnonymousPolicy(anonymous.strip().lower())
    except ValueError:
        raise UserInputError(f"unknown value {anonymous!r}: expected viewer or refuse",
                             source="--anonymous") from None


def power_flow_engine(engine: str):
    """``--engine`` as the power-flow engine (power_grid_model or pandapower)."""
    from network_models.powerflow import PowerFlowEngine

    try:
        return PowerFlowEngine(engine)
    except ValueError:
        raise UserInputError(f"unknown engine {engine!r}: expected power_grid_model or "
                             "pandapower", source="--engine") from None


def announce(server, grid, security, users: Path | None, host: str) -> None:
    """What the simulated field offers, once it listens: model, endpoint, security, and a
    warning for each insecure choice."""
    from gridctl.field.security import Pki, SecurityMode

    sim = server.simulator
    modes = security.modes
    typer.echo(f"gridctl sim: {grid.name}, {len(grid.registry)} devices, "
               f"{len(sim.contract)} points, namespace {sim.contract.namespace_uri}")
    typer.echo(f"endpoint {server.endpoint}  security {', '.join(m.value for m in modes)}  "
               f"anonymous {security.anonymous.value}  users {len(security.users.users)}"
               + (f" ({users})" if users else ""))
    if any(m != SecurityMode.NONE for m in modes):
        pki = Pki(security.pki_dir)
        typer.echo(f"certificate {pki.certificate_path('gridctl-sim')}  "
                   f"trust list {pki.trusted_dir}")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if SecurityMode.NONE in modes and not loopback:
        typer.echo("warning: an unsecured endpoint is offered on a non-loopback address",
                   err=True)
    if security.allow_insecure_passwords:
        typer.echo("warning: passwords are accepted on unencrypted channels"
                   + ("" if loopback else ", on a non-loopback address"), err=True)


def show_audit_log() -> None:
    """The simulator's audit lines (logins and refusals) on stderr, stamped."""
    from hil_sim.audit import AUDIT_LOGGER

    audit = logging.getLogger(AUDIT_LOGGER)
    if not audit.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s audit %(message)s"))
        audit.addHandler(handler)
        audit.setLevel(logging.INFO)
        audit.propagate = False


def start_of(date: str | None, start: str | None) -> object:
    """``--date`` or ``--start`` as the simulated start (a date, a time, or None: today)."""
    if date is not None and start is not None:
        raise UserInputError("give --date or --start, not both", source="--start")
    if date is not None:
        try:
            return dt.date.fromisoformat(date.strip())
        except ValueError:
            raise UserInputError(f"{date!r} is not a date: expected YYYY-MM-DD",
                                 source="--date") from None
    if start is not None:
        try:
            return dt.datetime.fromisoformat(start.strip())
        except ValueError:
            raise UserInputError(f"{start!r} is not a time: expected ISO 8601, e.g. "
                                 "2026-07-15T08:00", source="--start") from None
    return None


def server_security_of(modes, anonymous, *, pki: Path | None, users: Path | None,
                       allow_insecure_passwords: bool, lockout_after: int,
                       lockout_minutes: float):
    """The simulator's security from its options: endpoints, PKI, users (the ``--users`` file
    read here), anonymous sessions, login lockout."""
    from gridctl.field.security import (
        DEFAULT_PKI_DIR,
        LoginPolicy,
        ServerSecurity,
        UserStore,
        load_users,
    )

    user_store = load_users(users) if users is not None else UserStore()
    return ServerSecurity(
        modes=modes, pki_dir=pki or DEFAULT_PKI_DIR, users=user_store, anonymous=anonymous,
        allow_insecure_passwords=allow_insecure_passwords,
        login=LoginPolicy(lockout_after=lockout_after, lockout_s=lockout_minutes * 60.0))


def serve_until_stopped(server, grid, users: Path | None, *, host: str, port: int, tick: float,
                        step_mode: bool, speed: float) -> None:
    """Start the simulated field, say what it offers, serve until Ctrl-C."""
    from gridctl.commands.process import frozen_after_start_up

    clock = "held (step mode)" if step_mode else (
        "as fast as possible" if speed == 0 else f"{speed:g}x real time")

    async def run() -> None:
        with frozen_after_start_up() as started:
            try:
                await server.start()
            except OSError as exc:
                raise UserInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                     source="--port") from None
            started()  # the field's objects live as long as the server
            announce(server, grid, server.security, users, host)
            typer.echo(f"clock {server.simulator.time.isoformat()}, tick {tick:g} s, {clock}; "
                       "Ctrl-C stops")
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        typer.echo("stopped")
