"""The historian keeps what was committed, even through kill -9, and gives the runtime its state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from gridctl.historian import Historian, StoredSession

T0 = pd.Timestamp("2026-07-15 08:00", tz="Asia/Shanghai")


def test_schedule_sessions_decisions_and_events_round_trip(tmp_path):
    db = tmp_path / "h.sqlite"
    table = pd.DataFrame(
        {"BESS_1.p_set_mw": [0.5, -1.0]}, index=pd.date_range(T0, periods=2, freq="15min")
    )
    with Historian(db) as h:
        h.record_schedule(T0, "mpc", table)
        h.record_decision(T0, "mpc", {"status": "optimal", "fallback": None, "solve_s": 0.3})
        h.record_event(T0, "reconnect", gap_s=12.5)
        h.record_commands(T0, [("BESS_1", "p_set_mw", 0.5, "Good")])
        h.upsert_sessions(
            T0,
            [
                StoredSession(
                    session_id="s1",
                    charger="EV_L1_1",
                    connector="c1",
                    arrival=T0,
                    departure=T0 + pd.Timedelta(hours=8),
                    energy_requested_kwh=30.0,
                    max_kw=7.0,
                    energy_delivered_kwh=1.75,
                )
            ],
        )
        h.upsert_sessions(
            T0 + pd.Timedelta(minutes=15),
            [
                StoredSession(
                    session_id="s1",
                    charger="EV_L1_1",
                    connector="c1",
                    arrival=T0,
                    departure=T0 + pd.Timedelta(hours=8),
                    energy_requested_kwh=30.0,
                    max_kw=7.0,
                    energy_delivered_kwh=3.5,
                )
            ],
        )
    with Historian(db) as h:
        t, back = h.last_schedule("mpc")
        assert t == T0 and back.iloc[1, 0] == -1.0 and back.index[0] == T0
        (s,) = h.sessions()
        assert s.energy_delivered_kwh == 3.5 and s.departure == T0 + pd.Timedelta(hours=8)
        assert h.decisions()[0]["status"] == "optimal"
        assert h.events("reconnect")[0]["gap_s"] == 12.5
        assert h.commands().iloc[0]["result"] == "Good"


def test_naive_times_are_refused(tmp_path):
    with Historian(tmp_path / "h.sqlite") as h, pytest.raises(ValueError, match="timezone"):
        h.record_event(pd.Timestamp("2026-07-15 08:00"), "x")


def test_nothing_committed_before_a_kill_9_is_lost(tmp_path):
    db = tmp_path / "h.sqlite"
    writer = textwrap.dedent(f"""
        import sys, pandas as pd
        from gridctl.historian import Historian
        h = Historian({str(db)!r})
        t = pd.Timestamp("2026-07-15 08:00", tz="Asia/Shanghai")
        i = 0
        while True:
            h.record_measurements(t, {{("BESS_1", "soc_frac"): i / 1e6}})
            print(i, flush=True)  # printed only after the commit returned
            i += 1
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", writer],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    last = -1
    deadline = time.monotonic() + 60
    while last < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last >= 300
    with Historian(db) as h:
        stored = h.measurements("BESS_1", "soc_frac")
    assert len(stored) >= last + 1  # every commit acknowledged before the kill is there
    assert stored["value"].is_monotonic_increasing


def _session(delivered: float) -> StoredSession:
    return StoredSession(session_id="s1", charger="EV_L7_3", connector="c2", arrival=T0,
                         departure=T0 + pd.Timedelta(minutes=40), energy_requested_kwh=30.0,
                         max_kw=60.0, energy_delivered_kwh=delivered)


def test_a_chargers_end_of_session_report_is_final(tmp_path):
    with Historian(tmp_path / "h.sqlite") as h:
        h.upsert_sessions(T0, [_session(10.0)])  # last control step: 10 kWh so far
        left = T0 + pd.Timedelta(minutes=40)
        assert h.record_session_end(left, "s1", 30.0)
        h.upsert_sessions(left, [_session(12.0)])  # a late, older reading changes nothing
        (s,) = h.sessions()
        assert s.energy_delivered_kwh == 30.0 and s.ended == left
        assert not h.record_session_end(left, "s1", 5.0)  # reported once
        assert not h.record_session_end(left, "never-seen", 5.0)
        assert h.sessions()[0].energy_delivered_kwh == 30.0


def test_a_historian_written_before_session_ends_were_recorded_opens_and_gains_the_column(
        tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as c:  # the ev_sessions table as the first release wrote it
        c.execute("CREATE TABLE ev_sessions (session_id TEXT PRIMARY KEY, charger TEXT NOT NULL, "
                  "connector TEXT NOT NULL, arrival TEXT NOT NULL, departure TEXT NOT NULL, "
                  "energy_requested_kwh REAL NOT NULL, max_kw REAL NOT NULL, "
                  "energy_delivered_kwh REAL NOT NULL, updated_unix REAL NOT NULL)")
        c.execute("INSERT INTO ev_sessions VALUES ('s1','EV_L7_3','c2',?,?,30,60,10,0)",
                  (T0.isoformat(), (T0 + pd.Timedelta(minutes=40)).isoformat()))
    with Historian(db) as h:
        (s,) = h.sessions()
        assert s.energy_delivered_kwh == 10.0 and s.ended is None  # kept as it was
        assert h.record_session_end(T0 + pd.Timedelta(minutes=40), "s1", 29.5)
