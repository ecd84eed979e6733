"""OPC UA field link and simulator speed on the Jiuke Oasis model (prints figures, asserts nothing).

1. One full read of every measurement plus one write of every setpoint over OPC UA, each one
   batched request, median of ``--repeats`` rounds; without message security and with
   Basic256Sha256 SignAndEncrypt (a user session each).
2. Wall time of ``--hours`` simulated hours at maximum speed without a controller: the physics
   alone (``Simulator.step``) and the server with its clock free-running (``--speed 0``,
   publishing every tick).

Run: ``PYTHONPATH=. python benchmarks/bench_opcua.py [--hours 6] [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from gridctl.field.security import (
    AnonymousPolicy,
    ClientSecurity,
    Role,
    SecurityMode,
    ServerSecurity,
    UserAccount,
    UserStore,
    hash_password,
)
from gridctl.field_client import FieldClient
from hil_sim.server import SimServer
from hil_sim.simulator import Simulator
from network_models import load_model

START = "2026-07-15 00:00"


async def _read_write_round(client: FieldClient) -> tuple[float, float, int, int]:
    measurements = [p.key for p in client.contract.measurements()]
    setpoints = [p.key for p in client.contract.setpoints()]
    t0 = time.perf_counter()
    readings = await client.read(measurements)
    t1 = time.perf_counter()
    current = await client.read_values(setpoints)  # write back what is there: nothing changes
    t2 = time.perf_counter()
    results = await client.write(current)
    t3 = time.perf_counter()
    assert all(r.good for r in readings) and all(r.good for r in results)
    return (t1 - t0) * 1e3, (t3 - t2) * 1e3, len(measurements), len(setpoints)


async def bench_read_write(model, repeats: int, pki: Path) -> None:
    users = UserStore.of(UserAccount(name="op", role=Role.OPERATOR,
                                     password_hash=hash_password("pw", iterations=10_000)))
    security = ServerSecurity(modes=(SecurityMode.NONE, SecurityMode.SIGN_ENCRYPT),
                              pki_dir=pki, users=users, anonymous=AnonymousPolicy.REFUSE,
                              allow_insecure_passwords=True)  # the None round, on 127.0.0.1
    t0 = time.perf_counter()
    server = SimServer(model, port=0, step_mode=True, start=START, security=security)
    await server.start()
    print(f"server start (address space of {len(server.simulator.contract)} points): "
          f"{time.perf_counter() - t0:.2f} s")
    try:
        for mode in (SecurityMode.NONE, SecurityMode.SIGN_ENCRYPT):
            client_security = ClientSecurity(mode=mode, pki_dir=pki, username="op",
                                             password="pw")
            t0 = time.perf_counter()
            async with FieldClient(server.endpoint, server.simulator.contract,
                                   security=client_security, timeout_s=60) as client:
                connect_ms = (time.perf_counter() - t0) * 1e3
                rounds = [await _read_write_round(client) for _ in range(repeats)]
            reads = [r[0] for r in rounds]
            writes = [r[1] for r in rounds]
            total = [r[0] + r[1] for r in rounds]
            n_read, n_write = rounds[0][2], rounds[0][3]
            print(f"[{mode.value}] connect + session {connect_ms:.0f} ms; "
                  f"read {n_read} measurements: median {statistics.median(reads):.1f} ms; "
                  f"write {n_write} setpoints: median {statistics.median(writes):.1f} ms; "
                  f"read + write: median {statistics.median(total):.1f} ms "
                  f"(min {min(total):.1f}, max {max(total):.1f}, {repeats} rounds)")
    finally:
        await server.stop()


def bench_physics(model, hours: float) -> None:
    sim = Simulator(model, start=START)
    ticks = int(hours * 3600 / sim.config.tick_s)
    t0 = time.perf_counter()
    sim.step(ticks)
    wall = time.perf_counter() - t0
    print(f"physics only ({sim.config.engine.value}): {hours:g} simulated h = {ticks} ticks "
          f"in {wall:.1f} s ({wall / ticks * 1e3:.1f} ms per tick; 24 h would take "
          f"{wall / hours * 24:.0f} s)")


async def bench_free_running_server(model, hours: float, pki: Path) -> None:
    security = ServerSecurity(modes=(SecurityMode.NONE,), pki_dir=pki,
                              anonymous=AnonymousPolicy.VIEWER)
    server = SimServer(model, port=0, speed=0.0, start=START, security=security)
    ticks = int(hours * 3600 / server.simulator.config.tick_s)
    await server.start()
    t0 = time.perf_counter()
    first = server.simulator.tick
    try:
        while server.simulator.tick - first < ticks:
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
    finally:
        await server.stop()
    print(f"server at --speed 0, publishing every tick: {hours:g} simulated h in {wall:.1f} s "
          f"({wall / ticks * 1e3:.1f} ms per tick; 24 h would take {wall / hours * 24:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jiuke_oasis")
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench_read_write(model, args.repeats, Path(tmp) / "pki"))
        bench_physics(model, args.hours)
        asyncio.run(bench_free_running_server(model, args.hours, Path(tmp) / "pki2"))


if __name__ == "__main__":
    main()
