"""A second physics engine in the loop: the simulator solves its field with pandapower's
Newton-Raphson while the controller plans on power-grid-model, and the loop still holds every
limit with no fallback (a plan that only held in the planner's own engine would show here)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
from test_runtime_integration import CONTROLLER, SERVER_SECURITY, _answered

from gridctl.runtime import ControllerRuntime, RuntimeConfig
from hil_sim.config import SimConfig
from hil_sim.server import SimServer
from network_models.powerflow import PowerFlowEngine

START = pd.Timestamp("2026-07-15 18:00", tz="Asia/Shanghai")  # the evening peak


async def test_the_mpc_holds_the_limits_of_a_field_solved_by_pandapower(jiuke, tmp_path):
    server = SimServer(jiuke, port=0, step_mode=True, start=START, security=SERVER_SECURITY,
                       config=SimConfig(engine=PowerFlowEngine.PANDAPOWER))
    await server.start()
    runtime = ControllerRuntime(
        jiuke,
        RuntimeConfig(endpoint=server.endpoint, db_path=tmp_path / "h.sqlite", horizon_steps=8,
                      tick_wall_s=0.005, watch_period_ms=5.0, dayahead_hour=None),
        security=CONTROLLER,
    )
    until = START + pd.Timedelta(minutes=35)
    v, loading = [], []
    task = asyncio.create_task(runtime.run(until=until + pd.Timedelta(minutes=1),
                                           max_wall_s=300))
    sim = server.simulator
    try:
        assert sim.config.engine is PowerFlowEngine.PANDAPOWER
        while sim.time < until:
            await _answered(runtime, server)
            view = sim.network_view()
            v.extend(x for x in view["bus_vm_pu"] if x == x and x > 0)
            loading.append(max(max(view["line_loading_pct"]), max(view["trafo_loading_pct"])))
            await server.step(1)
        await _answered(runtime, server)
        runtime.stop()
        stats = await task
    finally:
        runtime.stop()
        await server.stop()
    assert stats.decisions == 3 and stats.fallbacks == 0 and stats.write_errors == 0
    assert np.min(v) >= 0.93 and np.max(v) <= 1.07 and max(loading) <= 100.0
