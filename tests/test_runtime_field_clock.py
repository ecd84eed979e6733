"""The runtime against a field whose clock jumps: a simulator restarted at an earlier time, a
clock set hours ahead. Due work follows the new time, setpoints go out again at once and in
full, and the jump is recorded. In lockstep (the simulator in step mode waits for the runtime),
on 127.0.0.1 with ephemeral ports."""

from __future__ import annotations

import asyncio
import socket

import pandas as pd

from gridctl.field.security import loopback_operator
from gridctl.historian import Historian
from gridctl.runtime import ControllerRuntime, RuntimeConfig
from hil_sim.server import SimServer

START = pd.Timestamp("2026-07-15 17:00", tz="Asia/Shanghai")
SERVER_SECURITY, CONTROLLER = loopback_operator("ctl", "s3cret")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until(condition, what: str, timeout_s: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"not within {timeout_s} s of wall time: {what}"
        await asyncio.sleep(0.005)


async def _answered(runtime: ControllerRuntime, server: SimServer) -> None:
    sim = server.simulator
    await _until(lambda: runtime.caught_up(server.publish_seq, ticked_at=sim.time, idle=True),
                 "the runtime answers the field")


def _runtime(jiuke, endpoint: str, db) -> ControllerRuntime:
    return ControllerRuntime(
        jiuke,
        RuntimeConfig(endpoint=endpoint, db_path=db, horizon_steps=4, tick_wall_s=0.005,
                      watch_period_ms=5.0, max_backoff_s=0.5, dayahead_hour=None),
        security=CONTROLLER,
    )


def _controlled(sim) -> bool:
    """Every BESS, PV system and EV site has had a setpoint within its heartbeat timeout."""
    return not sim.status.fallback_devices


async def test_a_simulator_restarted_at_an_earlier_time_is_followed_at_once(jiuke, tmp_path):
    port = _free_port()
    server = SimServer(jiuke, port=port, step_mode=True, start=START, security=SERVER_SECURITY)
    await server.start()
    runtime = _runtime(jiuke, server.endpoint, tmp_path / "h.sqlite")
    task = asyncio.create_task(runtime.run(max_wall_s=300))
    try:
        await _until(lambda: runtime.stats.decisions >= 1, "a first decision")
        for _ in range(3):
            await _answered(runtime, server)
            await server.step(1)
        await _answered(runtime, server)
        written = dict(runtime._last_setpoints)
        decisions = runtime.stats.decisions
        await server.stop()
        # the field comes back three hours earlier: a new simulator, its devices in fallback
        earlier = START - pd.Timedelta(hours=3)
        server = SimServer(jiuke, port=port, step_mode=True, start=earlier,
                           security=SERVER_SECURITY)
        await server.start()
        sim = server.simulator
        assert not _controlled(sim)
        await _until(lambda: runtime.stats.reconnects >= 1, "a reconnection")
        await _answered(runtime, server)
        await server.step(1)  # the writes take effect at the next tick
        await _answered(runtime, server)
        # every setpoint went out at once: nothing in fallback, and the new field holds every
        # value the runtime last wrote (the connectors' and the site limits among them)
        assert _controlled(sim), sim.status.fallback_devices
        assert len(runtime._last_setpoints) >= len(written)
        for key, value in runtime._last_setpoints.items():
            assert sim.setpoint(*key) == value, key
        # and the MPC plans on the new time from now on
        await _until(lambda: runtime.stats.decisions > decisions, "a decision at the new time")
        for _ in range(3):
            await _answered(runtime, server)
            await server.step(1)
        await _answered(runtime, server)
        assert _controlled(sim)
        runtime.stop()
        await task
    finally:
        runtime.stop()
        await server.stop()
    with Historian(tmp_path / "h.sqlite") as h:
        jumps = h.events("clock_jumped")
        decided = [pd.Timestamp(d["t"]) for d in h.decisions("mpc")]
    assert [j["direction"] for j in jumps] == ["back"]
    assert jumps[0]["by_s"] < -3 * 3600 + 600
    assert decided[-1] < START  # planned for the field's own (earlier) time


async def test_a_field_clock_set_hours_ahead_is_followed_and_recorded(jiuke, tmp_path):
    server = SimServer(jiuke, port=0, step_mode=True, start=START, security=SERVER_SECURITY)
    await server.start()
    runtime = _runtime(jiuke, server.endpoint, tmp_path / "h.sqlite")
    task = asyncio.create_task(runtime.run(max_wall_s=300))
    sim = server.simulator
    try:
        await _until(lambda: runtime.stats.decisions >= 1, "a first decision")
        await _answered(runtime, server)
        decisions = runtime.stats.decisions
        sim.time = sim.time + pd.Timedelta(hours=5)  # a clock set ahead
        await server.step(1)
        await _answered(runtime, server)
        await _until(lambda: runtime.stats.decisions > decisions, "a decision at the new time")
        heartbeats = runtime.stats.heartbeats
        # a heartbeat went out at the jump; devices stay under control hours later in field time
        assert heartbeats >= 1
        for _ in range(8):  # past the devices' heartbeat timeout
            await _answered(runtime, server)
            await server.step(1)
        await _answered(runtime, server)
        assert _controlled(sim), sim.status.fallback_devices
        sim.time = sim.time - pd.Timedelta(hours=2)  # and set back again
        await server.step(1)
        await _answered(runtime, server)
        for _ in range(8):
            await _answered(runtime, server)
            await server.step(1)
        await _answered(runtime, server)
        assert _controlled(sim), sim.status.fallback_devices
        runtime.stop()
        await task
    finally:
        runtime.stop()
        await server.stop()
    with Historian(tmp_path / "h.sqlite") as h:
        jumps = h.events("clock_jumped")
        decided = [pd.Timestamp(d["t"]) for d in h.decisions("mpc")]
    assert [j["direction"] for j in jumps] == ["ahead", "back"]
    assert any(t >= START + pd.Timedelta(hours=5) for t in decided)


def test_a_restarted_runtime_sends_again_every_setpoint_as_last_written(jiuke, tmp_path):
    from gridctl.field.contract import FieldContract
    from network_models.registry import DeviceKind

    kinds = {DeviceKind.BESS, DeviceKind.PV, DeviceKind.EV_SITE}
    setpoints = [p.key for p in FieldContract.from_model(jiuke).setpoints()
                 if jiuke.registry[p.key[0]].kind in kinds]
    t = START
    with Historian(tmp_path / "h.sqlite") as h:
        h.record_commands(t, [(d, p, 1.0, "Good") for d, p in setpoints], reason="mpc")
        site = next(s for s in jiuke.registry.ev_sites)
        h.record_commands(t + pd.Timedelta(minutes=3), [
            (site.id, "c1.p_set_kw", 2.5, "Good"),
            (site.id, "p_site_limit_kw", 9.0, "BadNoCommunication"),  # kept what it had
            ("FB_FD_L2_0", "close_cmd", True, "Good"),  # a command, not a setpoint
        ], reason="ev_resplit")
        h.record_commands(t + pd.Timedelta(minutes=4),
                          [(d, p, 7.0, "Good") for d, p in setpoints], reason="heartbeat")
    runtime = _runtime(jiuke, "opc.tcp://127.0.0.1:4840", tmp_path / "h.sqlite")
    try:
        resent = runtime._last_setpoints
    finally:
        runtime.historian.close()
    assert set(resent) == set(setpoints)  # every one of them, connectors and site limits too
    assert resent[(site.id, "c1.p_set_kw")] == 2.5
    assert resent[(site.id, "p_site_limit_kw")] == 1.0
    assert all(v in (1.0, 2.5) for v in resent.values())
