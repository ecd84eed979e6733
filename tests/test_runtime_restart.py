"""`gridctl run` killed with SIGKILL and started again resumes from its historian."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys

import pandas as pd
from test_runtime_integration import SERVER_SECURITY

from hil_sim.server import SimServer

START = pd.Timestamp("2026-07-15 07:00", tz="Asia/Shanghai")


def _count(db, sql: str) -> int:
    try:
        with sqlite3.connect(db) as c:
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


async def _wait(predicate, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.2)):
        if predicate():
            return True
        await asyncio.sleep(0.2)
    return False


def _start_controller(endpoint: str, db) -> subprocess.Popen:
    env = {**os.environ, "GRIDCTL_OPCUA_PASSWORD": "s3cret"}
    return subprocess.Popen(
        [sys.executable, "-m", "gridctl.cli", "run", "--endpoint", endpoint, "--user", "ctl",
         "--db", str(db), "--horizon", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_killed_controller_loses_nothing_committed_and_resumes(jiuke, tmp_path):
    db = tmp_path / "historian.sqlite"
    server = SimServer(jiuke, port=0, speed=200.0, start=START, security=SERVER_SECURITY)
    await server.start()
    proc = _start_controller(server.endpoint, db)
    try:
        decided = await _wait(lambda: _count(db, "SELECT COUNT(*) FROM decisions") >= 2, 120)
        assert decided, "the controller should decide twice"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        decisions = _count(db, "SELECT COUNT(*) FROM decisions")
        commands = _count(db, "SELECT COUNT(*) FROM commands")
        sessions = _count(db, "SELECT COUNT(*) FROM ev_sessions")
        assert decisions >= 2 and commands > 0 and sessions > 0
        proc = _start_controller(server.endpoint, db)
        resumed = await _wait(
            lambda: _count(db, "SELECT COUNT(*) FROM events WHERE kind='resumed'") >= 1, 60)
        assert resumed
        more = await _wait(lambda: _count(db, "SELECT COUNT(*) FROM decisions") > decisions, 120)
        assert more, "the restarted controller goes on deciding"
        # nothing committed before the kill was lost
        assert _count(db, "SELECT COUNT(*) FROM commands") >= commands
        assert _count(db, "SELECT COUNT(*) FROM ev_sessions") >= sessions
    finally:
        proc.kill()
        proc.wait()
        await server.stop()
