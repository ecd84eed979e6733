"""The operator's `gridctl sim ...` commands, against a simulator running on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from gridctl.cli import main
from gridctl.commands.sim import PASSWORD_ENV
from gridctl.field.security import (
    AnonymousPolicy,
    Role,
    SecurityMode,
    ServerSecurity,
    UserAccount,
    UserStore,
    hash_password,
    load_users,
)
from hil_sim.server import SimServer


@pytest.fixture(scope="module")
def running_sim(tmp_path_factory) -> Iterator[SimServer]:
    """A small simulator in step mode, served from its own event loop in a thread."""
    from network_models import load_model

    users = UserStore.of(UserAccount(name="op", role=Role.OPERATOR,
                                     password_hash=hash_password("pw", iterations=1000)))
    server = SimServer(load_model("case33bw"), port=0, step_mode=True, start="2026-07-15 18:00",
                       security=ServerSecurity(modes=(SecurityMode.NONE,),
                                               pki_dir=tmp_path_factory.mktemp("pki"),
                                               users=users, anonymous=AnonymousPolicy.VIEWER,
                                               allow_insecure_passwords=True))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stopping = asyncio.Event()

    async def serve() -> None:
        await server.start()
        started.set()
        await stopping.wait()
        await server.stop()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(60)
    yield server
    loop.call_soon_threadsafe(stopping.set)
    thread.join(30)


def _as_operator(monkeypatch, server: SimServer) -> list[str]:
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    return ["--endpoint", server.endpoint, "--security", "none", "--user", "op"]


def test_fault_step_status_and_clear_drive_the_simulator(running_sim, monkeypatch, capsys):
    opts = _as_operator(monkeypatch, running_sim)
    assert main(["sim", "fault", "line", "line_6_7", *opts]) == 0
    assert "line_6_7 faulted" in capsys.readouterr().out
    assert main(["sim", "step", "3", *opts]) == 0
    assert capsys.readouterr().out.strip() == "tick 3"
    assert main(["sim", "status", *opts]) == 0
    out = capsys.readouterr().out
    assert "active faults: line line_6_7" in out and "tick 3" in out
    assert main(["sim", "clear", "--all", *opts]) == 0
    assert "cleared 1 target(s)" in capsys.readouterr().out
    assert running_sim.simulator.faults.active() == []


def test_a_refused_fault_prints_one_line_and_exits_2(running_sim, monkeypatch, capsys):
    opts = _as_operator(monkeypatch, running_sim)
    assert main(["sim", "fault", "line", "line_99_100", *opts]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no line 'line_99_100'" in err
    assert main(["sim", "fault", "meteor", "line_6_7", *opts]) == 2
    assert "unknown fault kind 'meteor'" in capsys.readouterr().err


def test_an_unreachable_endpoint_is_one_line_and_exit_2(monkeypatch, capsys, unused_tcp_port):
    monkeypatch.setenv(PASSWORD_ENV, "pw")
    code = main(["sim", "status", "--endpoint", f"opc.tcp://127.0.0.1:{unused_tcp_port}",
                 "--security", "none"])
    assert code == 2
    assert "cannot connect" in capsys.readouterr().err


def test_user_add_writes_a_hash_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    path = tmp_path / "users.yaml"
    assert main(["sim", "user-add", str(path), "alice", "--role", "operator"]) == 0
    assert "alice (operator)" in capsys.readouterr().out
    assert load_users(path).authenticate("alice", "from-env").role == Role.OPERATOR


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "15/07/2026"], "--date: '15/07/2026' is not a date"),
        (["--anonymous", "admin"], "--anonymous: unknown value 'admin'"),
        (["--security", "rot13"], "--security: unknown security mode 'rot13'"),
        (["--engine", "guess"], "--engine: unknown engine 'guess'"),
    ],
)
def test_bad_serve_options_are_one_line_and_exit_2(args, message, capsys):
    assert main(["sim", "serve", "--port", "0", *args]) == 2
    assert message in capsys.readouterr().err
