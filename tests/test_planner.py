"""The MPC in its own process: the same decisions as in process, and a worker that fails, hangs
or dies costs one step, never the runtime."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pickle
import signal
import time
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest

from controllers.ev_charging import SessionState
from controllers.mpc import RecedingHorizonController
from controllers.snapshot import GridSnapshot
from forecasts.bundle import build
from gridctl.planner import PlannerError, PlannerProcess

DAY = dt.date(2026, 7, 15)
HORIZON = 6


@pytest.fixture(scope="module")
def bundle(jiuke):
    return build(jiuke, DAY, "6h", seed=5)


def _snapshot(model, bundle, k: int) -> GridSnapshot:
    now = bundle.index[k]
    states = tuple(
        SessionState(session=s, energy_delivered_kwh=0.2 * s.energy_kwh)
        for s in bundle.ev_sessions
        if s.arrival <= now < s.departure
    )
    soc = {b.id: 0.3 + 0.1 * i for i, b in enumerate(model.registry.bess)}
    return GridSnapshot(time=now, bess_soc_frac=soc, ev_sessions=states)


def _run(planner: PlannerProcess, body):
    """Run ``body()`` (a coroutine function) on a fresh event loop; the worker ends after it."""
    async def run():
        try:
            return await body()
        finally:
            planner.close()

    return asyncio.run(run())


def _trip(obj):
    """There and back through the pickler that carries requests to the worker."""
    return pickle.loads(ForkingPickler.dumps(obj))


def test_model_snapshot_and_forecast_travel_to_a_worker_whole(jiuke, bundle):
    model = _trip(jiuke)
    assert dict(model.assumptions) == dict(jiuke.assumptions)
    assert model.net.line.equals(jiuke.net.line)
    assert [d.id for d in model.registry] == [d.id for d in jiuke.registry]
    with pytest.raises(TypeError):  # still read-only after the trip
        model.assumptions["x"] = None  # type: ignore[index]
    again = _trip(bundle)
    assert dict(again.provenance) == dict(bundle.provenance)
    assert again.load_p_mw.equals(bundle.load_p_mw)
    assert [s.id for s in again.ev_sessions] == [s.id for s in bundle.ev_sessions]
    snapshot = _snapshot(jiuke, bundle, 8)
    assert _trip(snapshot) == snapshot


def test_the_worker_decides_what_the_controller_decides_in_process(jiuke, bundle):
    local = RecedingHorizonController(jiuke, horizon_steps=HORIZON)
    planner = PlannerProcess(jiuke, horizon_steps=HORIZON)

    async def two_steps():
        return [await planner.step(_snapshot(jiuke, bundle, k), bundle, None) for k in (8, 9)]

    remote = _run(planner, two_steps)
    assert not planner.running
    for k, decision in zip((8, 9), remote, strict=True):
        mine = local.step(_snapshot(jiuke, bundle, k), bundle)
        assert decision.record.fallback is None and mine.record.fallback is None
        assert decision.time == mine.time
        assert decision.record.objective_cny == pytest.approx(mine.record.objective_cny,
                                                              rel=1e-4, abs=1e-3)
        assert decision.setpoints.keys() == mine.setpoints.keys()
        for device, points in mine.setpoints.items():
            for point, value in points.items():
                assert decision.setpoints[device][point] == pytest.approx(value, abs=1e-4)
        # the second step starts from the first one's plan in the worker, as it does here
        assert np.allclose(decision.schedule.bess_soc_frac.to_numpy(),
                           mine.schedule.bess_soc_frac.to_numpy(), atol=1e-4)
    assert planner.starts == 1


def test_a_plan_past_its_time_ends_the_worker_and_the_next_step_starts_a_fresh_one(
        jiuke, bundle):
    # the first step of a worker builds the problem too: far longer than a millisecond
    planner = PlannerProcess(jiuke, horizon_steps=HORIZON, timeout_s=0.001)

    async def run():
        with pytest.raises(PlannerError, match=r"no plan within 0\.001 s"):
            await planner.step(_snapshot(jiuke, bundle, 8), bundle, None)
        assert not planner.running
        planner.timeout_s = 120.0
        return await planner.step(_snapshot(jiuke, bundle, 8), bundle, None)

    decision = _run(planner, run)
    assert decision.record.fallback is None
    assert planner.starts == 2


def test_a_worker_that_dies_mid_plan_fails_that_step_only(jiuke):
    # a longer window than the other tests: the worker plans for a good part of a second, so
    # the kill lands while it plans, whatever the machine's load
    day = build(jiuke, DAY, "12h", seed=5)
    planner = PlannerProcess(jiuke, horizon_steps=32)

    async def run():
        await planner.step(_snapshot(jiuke, day, 7), day, None)  # built and planning
        step = asyncio.create_task(planner.step(_snapshot(jiuke, day, 8), day, None))
        deadline = time.monotonic() + 60.0
        while not planner.planning:  # the worker has taken the request and plans
            assert not step.done(), "the step ended before its worker was seen planning"
            assert time.monotonic() < deadline, "the worker never took the request"
            await asyncio.sleep(0.001)
        assert planner._process is not None
        os.kill(planner._process.pid, signal.SIGKILL)
        with pytest.raises(PlannerError, match=r"ended \(exit code -9\)"):
            await step
        assert not planner.running and not planner.planning
        return await planner.step(_snapshot(jiuke, day, 9), day, None)

    decision = _run(planner, run)
    assert decision.record.fallback is None
    assert planner.starts == 2


def test_a_controller_that_cannot_be_built_is_reported_at_every_step(jiuke, bundle):
    planner = PlannerProcess(jiuke, horizon_steps=0)

    async def run():
        for k in (8, 9):
            with pytest.raises(PlannerError, match="building the controller"):
                await planner.step(_snapshot(jiuke, bundle, k), bundle, None)
        assert planner.running  # the worker lives on and answers: no restart loop

    _run(planner, run)
    assert planner.starts == 1


def test_a_timeout_that_is_not_a_duration_is_refused(jiuke):
    with pytest.raises(ValueError, match="timeout_s 0"):
        PlannerProcess(jiuke, horizon_steps=HORIZON, timeout_s=0)


def test_a_background_start_never_outlives_a_close(jiuke):
    for _ in range(3):
        planner = PlannerProcess(jiuke, horizon_steps=HORIZON)
        planner.start_soon()
        planner.close()  # before, during or after the start: either way, nothing lives on
        time.sleep(0.3)
        assert not planner.running
        planner.close()


def test_a_worker_that_died_between_steps_is_replaced_and_asked_again(jiuke, bundle):
    planner = PlannerProcess(jiuke, horizon_steps=HORIZON)

    async def run():
        first = await planner.step(_snapshot(jiuke, bundle, 8), bundle, None)
        assert planner._process is not None
        os.kill(planner._process.pid, signal.SIGKILL)  # it may still look alive for a while
        second = await planner.step(_snapshot(jiuke, bundle, 9), bundle, None, first.schedule)
        return first, second

    first, second = _run(planner, run)
    assert first.record.fallback is None and second.record.fallback is None
    assert second.time == bundle.index[9]
    assert planner.starts == 2


def test_a_planner_closed_for_good_refuses_steps_and_starts_nothing(jiuke, bundle):
    planner = PlannerProcess(jiuke, horizon_steps=HORIZON)
    planner.close(final=True)

    async def run():
        with pytest.raises(PlannerError, match="shut down"):
            await planner.step(_snapshot(jiuke, bundle, 8), bundle, None)
        planner.start()
        planner.start_soon()
        await asyncio.sleep(0.2)

    _run(planner, run)
    assert planner.starts == 0 and not planner.running
