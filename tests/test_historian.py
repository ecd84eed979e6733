"""The historian keeps what was committed, even through kill -9, and gives the runtime its state."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from gridctl.historian import Historian, StoredSession
from gridctl.historian_schema import SCHEMA_V1 as V1_SCHEMA

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
                    id="s1",
                    site="EV_L1_1",
                    connector="c1",
                    arrival=T0,
                    departure=T0 + pd.Timedelta(hours=8),
                    energy_kwh=30.0,
                    max_kw=7.0,
                    energy_delivered_kwh=1.75,
                )
            ],
        )
        h.upsert_sessions(
            T0 + pd.Timedelta(minutes=15),
            [
                StoredSession(
                    id="s1",
                    site="EV_L1_1",
                    connector="c1",
                    arrival=T0,
                    departure=T0 + pd.Timedelta(hours=8),
                    energy_kwh=30.0,
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
    return StoredSession(id="s1", site="EV_L7_3", connector="c2", arrival=T0,
                         departure=T0 + pd.Timedelta(minutes=40), energy_kwh=30.0,
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


# -- one time base: field time in t, the historian's own wall time beside it -------------------
def test_an_events_t_is_field_time_and_its_wall_time_is_stamped_apart(tmp_path):
    field_t = T0 - pd.Timedelta(days=200)  # a simulator far from today's date
    before = pd.Timestamp.now(tz="Asia/Shanghai")
    with Historian(tmp_path / "h.sqlite") as h:
        h.record_event(field_t, "reconnected", gap_wall_s=1.5)
        h.record_decision(field_t, "mpc", {"status": "optimal"})
    after = pd.Timestamp.now(tz="Asia/Shanghai")
    with Historian(tmp_path / "h.sqlite") as h:
        (event,) = h.events()
        (decision,) = h.decisions()
    assert pd.Timestamp(event["t"]) == field_t and event["gap_wall_s"] == 1.5
    assert before <= pd.Timestamp(event["wall_t"]) <= after
    assert pd.Timestamp(decision["t"]) == field_t
    assert before <= pd.Timestamp(decision["wall_t"]) <= after


def test_an_event_with_no_field_time_yet_keeps_its_wall_time_and_its_place(tmp_path):
    with Historian(tmp_path / "h.sqlite") as h:
        h.record_event(None, "connected", endpoint="opc.tcp://127.0.0.1:4840")
        h.record_event(T0, "resumed", setpoints=518)
        h.record_event(None, "connection_lost", error="ConnectionError")
        events = h.events()
    assert [e["kind"] for e in events] == ["connected", "resumed", "connection_lost"]
    assert events[0]["t"] is None and events[2]["t"] is None
    assert pd.Timestamp(events[1]["t"]) == T0
    walls = [pd.Timestamp(e["wall_t"]) for e in events]
    assert walls == sorted(walls)  # kept in the order recorded: wall time


# -- runs: segments of the record that are never merged ------------------------------------------
def _a_run(h: Historian, reason: str, import_mw: float) -> int:
    run = h.begin_run(reason, endpoint="opc.tcp://127.0.0.1:4840")
    for k in range(3):  # the same field times in every run (a simulator started again)
        t = T0 + pd.Timedelta(minutes=15 * k)
        h.record_measurements(t, {("A_T1", "p_mw"): import_mw + k})
        h.record_decision(t, "mpc", {"status": "optimal", "planned_import_mw": import_mw})
        h.record_event(t, "ev_resplit", site="EV_L1_1")
        h.record_commands(t, [("BESS_1", "p_set_mw", import_mw, "Good")], reason="mpc")
    return run


def test_two_runs_with_the_same_field_times_are_kept_apart(tmp_path):
    db = tmp_path / "h.sqlite"
    with Historian(db) as h:
        first = _a_run(h, "start", 10.0)
        second = _a_run(h, "clock_jumped_back", 20.0)
    with Historian(db) as h:
        runs = h.runs()
        assert [(r.id, r.reason) for r in runs] == [(first, "start"), (second, "clock_jumped_back")]
        for r in runs:
            assert r.first_t == T0 and r.last_t == T0 + pd.Timedelta(minutes=30)
            assert r.rows["measurement_frames"] == 3 and r.rows["decisions"] == 3
            assert r.rows["write_batches"] == 3 and r.rows["commands"] == 3
            assert r.detail == {"endpoint": "opc.tcp://127.0.0.1:4840"}
            assert r.wall_start is not None
        assert list(h.measurements(run=first)["value"]) == [10.0, 11.0, 12.0]
        assert list(h.measurements(run=second)["value"]) == [20.0, 21.0, 22.0]
        # by default every run, in order, each row with its run
        every = h.measurements("A_T1", "p_mw")
        assert list(every["value"]) == [10.0, 11.0, 12.0, 20.0, 21.0, 22.0]
        assert list(every["run"]) == [first] * 3 + [second] * 3
        assert [d["planned_import_mw"] for d in h.decisions("mpc", run=second)] == [20.0] * 3
        assert {e["run"] for e in h.events(run=first)} == {first}
        assert list(h.commands(run=second)["value"]) == [20.0] * 3
        table = h.measurement_table(run=second)
        assert list(table["A_T1.p_mw"]) == [20.0, 21.0, 22.0]  # not a merge of both runs


def test_rows_written_before_any_run_is_begun_go_to_the_files_last_run(tmp_path):
    db = tmp_path / "h.sqlite"
    with Historian(db) as h:
        h.record_event(T0, "x")
        (implicit,) = h.runs()
        assert implicit.reason == "implicit" and implicit.rows["events"] == 1
    with Historian(db) as h:  # a writer that does not know runs goes on with the last one
        h.record_event(T0, "y")
        assert [r.rows["events"] for r in h.runs()] == [2]
        started = h.begin_run("start")
        h.record_event(T0, "z")
        assert [e["kind"] for e in h.events(run=started)] == ["z"]


def test_a_session_id_seen_again_after_the_clock_jumped_back_is_another_session(tmp_path):
    with Historian(tmp_path / "h.sqlite") as h:
        first = h.begin_run("start")
        h.upsert_sessions(T0, [_session(10.0)])
        assert h.record_session_end(T0 + pd.Timedelta(minutes=40), "s1", 30.0)
        again = h.begin_run("clock_jumped_back")  # the simulator replays the same vehicles
        h.upsert_sessions(T0, [_session(4.0)])
        assert h.record_session_end(T0 + pd.Timedelta(minutes=40), "s1", 29.0)
        (one,) = h.sessions(run=first)
        (other,) = h.sessions(run=again)
        (latest,) = h.sessions()
    assert one.energy_delivered_kwh == 30.0 and other.energy_delivered_kwh == 29.0
    assert latest.energy_delivered_kwh == 29.0  # by default each session as its latest run saw it


def test_a_vehicle_that_stays_over_a_restart_ends_in_the_new_run(tmp_path):
    with Historian(tmp_path / "h.sqlite") as h:
        first = h.begin_run("start")
        h.upsert_sessions(T0, [_session(10.0)])
        restarted = h.begin_run("start")  # killed and started again while it charged
        left = T0 + pd.Timedelta(minutes=40)
        assert h.record_session_end(left, "s1", 30.0)
        assert not h.record_session_end(left, "s1", 31.0)  # reported once
        (before,) = h.sessions(run=first)
        (ended,) = h.sessions(run=restarted)
    assert before.ended is None and before.energy_delivered_kwh == 10.0  # as that run saw it
    assert ended.ended == left and ended.energy_delivered_kwh == 30.0
    assert ended.arrival == T0 and ended.site == "EV_L7_3"


# -- heartbeats: one row per batch, the refused points one by one ---------------------------------
def _setpoints(n: int, refused: set[int]) -> list[tuple[str, str, float, str]]:
    return [(f"EV_{i // 35}", f"c{i % 35}.p_set_kw", 7.0,
             "BadNoCommunication" if i in refused else "Good") for i in range(n)]


def test_a_heartbeat_is_one_batch_row_and_only_its_refused_points(tmp_path):
    with Historian(tmp_path / "h.sqlite") as h:
        h.record_commands(T0, _setpoints(518, {3, 400}), reason="heartbeat")
        h.record_commands(T0 + pd.Timedelta(minutes=2), _setpoints(518, set()),
                          reason="heartbeat")
        h.record_commands(T0, _setpoints(518, {3}), reason="mpc")
        batches = h.write_batches()
        commands = h.commands()
    assert list(batches["reason"]) == ["heartbeat", "heartbeat", "mpc"]
    assert list(batches["points"]) == [518, 518, 518] and list(batches["refused"]) == [2, 0, 1]
    heartbeat = commands[commands.reason == "heartbeat"]
    assert list(heartbeat.device + "." + heartbeat.point) == ["EV_0.c3.p_set_kw",
                                                             "EV_11.c15.p_set_kw"]
    assert set(heartbeat.result) == {"BadNoCommunication"}
    mpc = commands[commands.reason == "mpc"]  # other writes: every point, in the order sent
    assert len(mpc) == 518 and list(mpc.point[:2]) == ["c0.p_set_kw", "c1.p_set_kw"]
    assert (mpc.result == "Good").sum() == 517


def test_a_day_of_heartbeats_with_a_device_refusing_stores_one_row_per_batch(tmp_path):
    db = tmp_path / "h.sqlite"
    with Historian(db) as h:
        for k in range(720):  # every 2 minutes of a day, one PV inverter out of communication
            h.record_commands(T0 + pd.Timedelta(minutes=2 * k), _setpoints(518, {7, 8}),
                              reason="heartbeat")
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM write_batches").fetchone()[0] == 720
        assert c.execute("SELECT count(*) FROM commands").fetchone()[0] == 2 * 720


# -- a historian written before runs (schema 1) ---------------------------------------------------
def test_a_historian_written_before_runs_is_upgraded_with_every_row_in_run_1(tmp_path):
    db = tmp_path / "old.sqlite"
    t1 = T0 + pd.Timedelta(minutes=1)
    table = pd.DataFrame({"BESS_1.p_set_mw": [0.5, -1.0]},
                         index=pd.date_range(T0, periods=2, freq="15min"))
    with sqlite3.connect(db) as c:  # as the release before runs wrote it
        c.execute("PRAGMA journal_mode=WAL")
        c.executescript(V1_SCHEMA)
        m = [(T0, "A_T1", "p_mw", 3.5, "Good"), (T0, "BESS_1", "soc_frac", None,
              "BadNoCommunication"), (t1, "A_T1", "p_mw", 3.25, "Good"),
             (t1, "A_T1", "p_mw", 3.0, "Good")]  # one point twice at one time: two readings
        c.executemany("INSERT INTO measurements VALUES (?,?,?,?,?,?)",
                      [(t.value / 1e9, t.isoformat(), d, p, v, s) for t, d, p, v, s in m])
        cmds = [(T0, "BESS_1", "p_set_mw", 0.5, "Good"), (T0, "PV_1", "p_limit_mw", 1.0, "Good"),
                (t1, "FB_FD_L2_0", "close_cmd", 1.0, "BadNoCommunication")]
        c.executemany("INSERT INTO commands (t_unix, t, device, point, value, result) "
                      "VALUES (?,?,?,?,?,?)",
                      [(t.value / 1e9, t.isoformat(), d, p, v, r) for t, d, p, v, r in cmds])
        wall = pd.Timestamp("2026-12-01 09:00", tz="Asia/Shanghai")  # stamped by the wall clock
        c.executemany("INSERT INTO events (t_unix, t, kind, detail_json) VALUES (?,?,?,?)",
                      [(wall.value / 1e9, wall.isoformat(), "connected", "{}"),
                       (T0.value / 1e9, T0.isoformat(), "flisr_step", '{"step": "detection"}')])
        c.execute("INSERT INTO decisions (t_unix, t, kind, status, fallback, record_json) "
                  "VALUES (?,?,'mpc','optimal',NULL,'{\"status\": \"optimal\"}')",
                  (T0.value / 1e9, T0.isoformat()))
        c.execute("INSERT INTO schedules (t_unix, t, kind, table_json) VALUES (?,?,'mpc',?)",
                  (T0.value / 1e9, T0.isoformat(),
                   table.to_json(orient="split", date_format="iso")))
        c.execute("INSERT INTO ev_sessions VALUES ('s1','EV_L7_3','c2',?,?,30,60,10,0)",
                  (T0.isoformat(), (T0 + pd.Timedelta(minutes=40)).isoformat()))
    with Historian(db) as h:
        (run,) = h.runs()
        assert run.id == 1 and run.reason == "before_runs" and run.wall_start is None
        got = h.measurements()
        assert list(got["device"] + "." + got["point"]) == [
            "A_T1.p_mw", "BESS_1.soc_frac", "A_T1.p_mw", "A_T1.p_mw"]
        assert list(got["value"].fillna(-1)) == [3.5, -1, 3.25, 3.0]
        assert list(got["status"]) == ["Good", "BadNoCommunication", "Good", "Good"]
        assert list(got["t"]) == [T0, T0, t1, t1] and set(got["run"]) == {1}
        commands = h.commands()
        assert list(commands["device"]) == ["BESS_1", "PV_1", "FB_FD_L2_0"]
        assert list(commands["result"]) == ["Good", "Good", "BadNoCommunication"]
        assert list(h.write_batches()["points"]) == [2, 1]  # one batch per time written
        connected, step = h.events()
        # the old file's wall-clock stamp becomes the wall time; no field time was known
        assert connected["t"] is None and pd.Timestamp(connected["wall_t"]) == wall
        assert pd.Timestamp(step["t"]) == T0 and step["step"] == "detection"
        assert h.decisions("mpc")[0]["status"] == "optimal"
        t, back = h.last_schedule("mpc")
        assert t == T0 and back.iloc[1, 0] == -1.0
        (s,) = h.sessions()
        assert s.energy_delivered_kwh == 10.0 and s.ended is None
        h.record_event(T0, "after_the_upgrade")  # goes on in run 1
        assert h.runs()[0].rows["events"] == 3
    with sqlite3.connect(db) as c:  # vacuumed once: it shrinks incrementally from now on
        assert c.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert c.execute("PRAGMA user_version").fetchone()[0] == 2
        assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_new_historian_vacuums_incrementally(tmp_path):
    with Historian(tmp_path / "h.sqlite"):
        pass
    with sqlite3.connect(tmp_path / "h.sqlite") as c:
        assert c.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- kill -9 in the middle of every kind of write ---------------------------------------------
def test_a_writer_killed_mid_way_leaves_an_intact_file_holding_every_commit(tmp_path):
    db = tmp_path / "h.sqlite"
    writer = textwrap.dedent(f"""
        import pandas as pd
        from gridctl.historian import Historian, StoredSession
        h = Historian({str(db)!r})
        h.begin_run("start")
        t0 = pd.Timestamp("2026-07-15 08:00", tz="Asia/Shanghai")
        i = 0
        while True:
            t = t0 + pd.Timedelta(seconds=i)
            h.record_measurements(t, {{("M_%d" % k, "v_pu"): 1.0 + i / 1e6 for k in range(300)}})
            h.record_commands(t, [("BESS_1", "p_set_mw", float(i), "Good")] * 20, reason="mpc")
            h.record_event(t, "tick", i=i)
            h.upsert_sessions(t, [StoredSession(id="s%d" % i, site="EV", connector="c1",
                arrival=t, departure=t, energy_kwh=1.0, max_kw=7.0,
                energy_delivered_kwh=0.0)])
            print(i, flush=True)  # printed only after every commit of this round returned
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    last = -1
    deadline = time.monotonic() + 60
    while last < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            last = int(line)
    os.kill(proc.pid, signal.SIGKILL)  # wherever it is: mid-transaction, likely
    proc.wait()
    assert last >= 150
    with Historian(db) as h:  # opens: quick_check passed
        (run,) = h.runs()
        frames = run.rows["measurement_frames"]
        assert frames >= last + 1
        assert run.rows["commands"] >= 20 * (last + 1)
        assert run.rows["events"] >= last + 1 and run.rows["ev_sessions"] >= last + 1
        ticks = [e["i"] for e in h.events("tick")]
        assert ticks == list(range(len(ticks)))  # in order, none missing
        stored = h.measurements("M_7", "v_pu")
    assert len(stored) == frames and stored["value"].is_monotonic_increasing
