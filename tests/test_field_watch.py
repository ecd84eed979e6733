"""The field watch: an OPC UA subscription that delivers whole publications of the simulator.

Real server and real client on 127.0.0.1 (ephemeral port), the simulator in step mode.
"""

from __future__ import annotations

import asyncio
import contextlib

import pandas as pd
import pytest

from gridctl.field.contract import FieldContract
from gridctl.field.security import loopback_operator
from gridctl.field_client import FieldClient, PointReading
from gridctl.field_watch import FieldWatch
from gridctl.self_healing import protection_points
from hil_sim.drill_client import DrillClient
from hil_sim.server import SimServer

SERVER_SECURITY, OPERATOR = loopback_operator("ctl", "s3cret")
START = pd.Timestamp("2026-07-15 19:00", tz="Asia/Shanghai")


async def _next(watch: FieldWatch):
    return await asyncio.wait_for(watch.next(), timeout=10.0)


async def _until_seq(watch: FieldWatch, seq: int):
    """Batches until the one that brings publication ``seq``, merged."""
    changed: dict = {}
    while True:
        update = await _next(watch)
        changed.update(update.changed)
        if update.publish_seq is not None and update.publish_seq >= seq:
            return update, changed


async def test_a_trip_arrives_in_one_batch_with_the_indicators_the_fault_set(jiuke):
    server = SimServer(jiuke, port=0, step_mode=True, start=START, security=SERVER_SECURITY)
    await server.start()
    points = protection_points(jiuke)
    try:
        async with FieldClient(server.endpoint, FieldContract.from_model(jiuke),
                               security=OPERATOR) as client:
            watch = await FieldWatch.start(client, points, simulator=True, period_ms=5.0)
            first = await _next(watch)
            assert first.first and set(first.changed) == set(points)  # the whole image
            assert first.publish_seq == server.publish_seq
            assert pd.Timestamp(first.time) == START
            assert watch.value(("FB_FD_L2_0", "tripped")) is False

            await DrillClient(client).call("FaultLine", "FD_L2_1")
            trip = ("FB_FD_L2_0", "tripped")
            while True:  # the batch in which the trip first appears...
                update = await _next(watch)
                if trip in update.changed:
                    break
            # ...holds every indicator the fault current passed: one publication, same instant
            assert pd.Timestamp(update.time) == START
            assert update.changed[trip].value is True
            shown = {k[0] for k, r in update.changed.items()
                     if k[1] == "fault_detected" and r.value}
            expected = {fi for fi, on in server.simulator.indications.items() if on}
            assert shown == expected and shown
            assert update.publish_seq == server.publish_seq

            await server.step(3)
            update, _ = await _until_seq(watch, server.publish_seq)
            assert pd.Timestamp(update.time) == START + pd.Timedelta(minutes=3)
            await watch.close()
    finally:
        await server.stop()


async def test_an_integrity_read_puts_what_the_subscription_missed_into_the_stream(jiuke):
    server = SimServer(jiuke, port=0, step_mode=True, start=START, security=SERVER_SECURITY)
    await server.start()
    key = ("FB_FD_L3_0", "closed")
    try:
        async with FieldClient(server.endpoint, FieldContract.from_model(jiuke),
                               security=OPERATOR) as client:
            watch = await FieldWatch.start(client, [key], simulator=True, period_ms=5.0)
            await _next(watch)
            truth = (await client.read([key]))[0]
            assert watch.reconcile([truth]) == 0  # nothing missed
            wrong = PointReading(device_id=key[0], point=key[1], value=not truth.value,
                                 status=0, source_time=None)
            assert watch.reconcile([wrong]) == 1
            update = await _next(watch)
            assert update.changed[key].value is (not truth.value)
            assert watch.value(key) is (not truth.value)
            await watch.close()
    finally:
        await server.stop()


async def test_the_watch_ends_with_a_connection_error_when_the_server_goes_away(jiuke):
    server = SimServer(jiuke, port=0, step_mode=True, start=START, security=SERVER_SECURITY)
    await server.start()
    client = FieldClient(server.endpoint, FieldContract.from_model(jiuke), security=OPERATOR,
                         timeout_s=1.0)
    await client.connect()
    try:
        watch = await FieldWatch.start(client, [("FB_FD_L3_0", "closed")], simulator=True,
                                       period_ms=5.0)
        await _next(watch)
        await server.stop()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(watch.next(), timeout=20.0)
    finally:
        with contextlib.suppress(Exception):  # the session is gone either way
            await client.disconnect()
        await server.stop()


def test_a_publishing_interval_of_zero_is_refused():
    with pytest.raises(ValueError, match="publishing interval"):
        asyncio.run(FieldWatch.start(None, [], simulator=True, period_ms=0.0))  # type: ignore[arg-type]
