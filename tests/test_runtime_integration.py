"""The controller runtime against the simulator over OPC UA on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pandas as pd
import pytest

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


async def _answered(runtime: ControllerRuntime, server: SimServer, timeout_s: float = 60.0):
    """Until the runtime has answered the simulator's last publication and ticked at its time
    (heartbeat and polls done), and no control step is being made."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    sim = server.simulator
    while not runtime.caught_up(server.publish_seq, ticked_at=sim.time, idle=True):
        assert loop.time() < deadline, "the runtime did not answer the field in time"
        await asyncio.sleep(0.002)


async def test_closed_loop_keeps_limits_in_the_simulators_physics_and_charges_every_ev(
    jiuke, tmp_path
):
    # lockstep: the simulator's clock waits for the controller (step mode), so what is tested
    # is the controller, not how fast this machine is; three simulated hours of the evening
    # rise, one-minute ticks
    server = SimServer(jiuke, port=0, step_mode=True, start=START, security=SERVER_SECURITY)
    await server.start()
    runtime = ControllerRuntime(
        jiuke,
        RuntimeConfig(
            endpoint=server.endpoint,
            db_path=tmp_path / "h.sqlite",
            horizon_steps=8,
            tick_wall_s=0.005,
            watch_period_ms=5.0,
        ),
        security=CONTROLLER,
    )
    until = START + pd.Timedelta(hours=3)
    v_min, v_max, loading = [], [], []
    fell_back: set[str] = set()
    controlled = False
    task = asyncio.create_task(runtime.run(until=until + pd.Timedelta(minutes=1),
                                           max_wall_s=400))
    sim = server.simulator
    try:
        while sim.time < until:
            await _answered(runtime, server)
            view = sim.network_view()
            v = np.array([x for x in view["bus_vm_pu"] if x == x and x > 0], dtype=float)
            v_min.append(v.min())
            v_max.append(v.max())
            loading.append(max(max(view["line_loading_pct"]), max(view["trafo_loading_pct"])))
            if controlled:  # a tick after the first decision's writes took effect
                fell_back |= set(sim.status.fallback_devices)
            controlled = runtime.stats.decisions > 0  # until then: in their safe default
            await server.step(1)
        await _answered(runtime, server)
        while runtime._planning:  # the day-ahead plans of today and tomorrow, in the background
            await asyncio.sleep(0.05)
        runtime.stop()
        stats = await task
    finally:
        runtime.stop()
        await server.stop()
    assert stats.decisions == 13 and stats.fallbacks == 0 and stats.write_errors == 0
    assert min(v_min) >= 0.93 and max(v_max) <= 1.07 and max(loading) <= 100.0
    assert not fell_back, f"the heartbeat kept every device under control: {fell_back}"
    first_decision = START  # the runtime decides at once on start-up
    # every vehicle that came and went under control, the ones without a minute of slack too
    # (the generator caps each request at what the vehicle can take in its stay)
    served = [
        (s, got)
        for s, got in server.simulator.departures  # every vehicle that left, with what it got
        if s.arrival >= first_decision and s.departure <= until
    ]
    assert len(served) >= 5, "the window should see vehicles come and go"
    assert any(s.dwell_h - s.energy_kwh / s.max_kw < 5 / 60 for s, _ in served)
    for s, got in served:
        assert got >= s.energy_kwh - 0.01 * s.energy_kwh - 0.1, (s.id, s.energy_kwh, got)
    assert stats.ev_resplits > 0  # plug-ins between the steps were answered at once
    with Historian(tmp_path / "h.sqlite") as h:
        assert len(h.decisions("mpc")) == stats.decisions
        assert h.last_schedule("mpc") is not None
        # the day-ahead job planned today at start-up and tomorrow from its hour (17:00 here)
        days = sorted(d["day"] for d in h.decisions("dayahead"))
        assert days == ["2026-07-15", "2026-07-16"]
        assert all(d["kpis"]["ac_validated"] for d in h.decisions("dayahead"))
        # between control steps the polling job records the main measurements every minute
        polled = h.measurements("A_T1", "p_mw")
        assert len(polled) >= 5 * stats.decisions
        # every vehicle that left under control has the charger's final report
        ended = {s.id: s for s in h.sessions() if s.ended is not None}
        assert {s.id for s, _ in served} <= set(ended)
        for s, got in server.simulator.departures:
            if s.id in ended:
                assert ended[s.id].energy_delivered_kwh == pytest.approx(got, abs=1e-9)
    # the historian becomes the report: measured against planned
    from gridctl.run_report import write_run_report

    path, kpis = write_run_report(tmp_path / "h.sqlite", tmp_path / "run.html")
    assert kpis["steps"] == stats.decisions and kpis["fallbacks"] == 0
    assert kpis["ev_sessions_ended"] >= len(served)
    # the report's owed energy is the simulator's own (vehicles that left before the first
    # decision, when chargers ran at their fallback power, included)
    truth = sum(max(0.0, s.energy_kwh - got) for s, got in server.simulator.departures
                if s.id in ended)
    assert kpis["ev_energy_owed_at_departure_kwh"] == pytest.approx(truth, abs=0.01)
    assert 10 < kpis["measured_peak_import_mw"] < 60
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


async def test_server_killed_and_restarted_the_controller_reconnects_and_records_the_gap(
    jiuke, tmp_path
):
    port = _free_port()
    server = SimServer(jiuke, port=port, speed=300.0, start=START, security=SERVER_SECURITY)
    await server.start()
    runtime = ControllerRuntime(
        jiuke,
        RuntimeConfig(
            endpoint=f"opc.tcp://127.0.0.1:{port}", db_path=tmp_path / "h.sqlite", horizon_steps=4
        ),
        security=CONTROLLER,
    )
    task = asyncio.create_task(runtime.run(max_wall_s=120))
    for _ in range(600):
        if runtime.stats.decisions >= 2:
            break
        await asyncio.sleep(0.1)
    await server.stop()
    await asyncio.sleep(2.0)
    server = SimServer(
        jiuke, port=port, speed=300.0, start=START + pd.Timedelta(hours=1), security=SERVER_SECURITY
    )
    await server.start()
    before = runtime.stats.decisions
    for _ in range(600):
        if runtime.stats.decisions >= before + 2:
            break
        await asyncio.sleep(0.1)
    runtime.stop()
    stats = await task
    await server.stop()
    assert stats.reconnects >= 1 and stats.decisions >= before + 2
    with Historian(tmp_path / "h.sqlite") as h:
        kinds = [e["kind"] for e in h.events()]
        assert "connection_lost" in kinds and "reconnected" in kinds
        gap = next(e for e in h.events("reconnected"))
        assert gap["gap_wall_s"] >= 1.5


@pytest.mark.parametrize(("field", "value"), [("step_minutes", 7), ("step_minutes", 0),
                                              ("step_minutes", 120), ("horizon_steps", 1)])
def test_a_control_step_or_horizon_the_mpc_cannot_plan_on_is_refused(tmp_path, field, value):
    with pytest.raises(ValueError, match=f"{field} {value}"):
        RuntimeConfig(endpoint="opc.tcp://127.0.0.1:4840", db_path=tmp_path / "h.sqlite",
                      **{field: value})
