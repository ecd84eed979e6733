"""A run report is of one run: two simulator runs with the same field times are never merged."""

from __future__ import annotations

import pandas as pd
import pytest

from gridctl.cli import main
from gridctl.historian import Historian, HistorianSettings, StoredSession
from gridctl.run_report import write_run_report

T0 = pd.Timestamp("2026-07-15 08:00", tz="Asia/Shanghai")
TRANSFORMERS = ("A_T1", "A_T2", "B_T1", "B_T2")


def _run(h: Historian, reason: str, import_mw: float, steps: int, energy_kwh: float) -> int:
    """A run of ``steps`` control steps from T0, importing ``import_mw`` in all."""
    run = h.begin_run(reason)
    for k in range(steps):
        t = T0 + pd.Timedelta(minutes=15 * k)
        for m in range(15):  # polls every minute of the step
            h.record_measurements(t + pd.Timedelta(minutes=m), {
                **{(tr, "p_mw"): import_mw / 4 for tr in TRANSFORMERS},
                ("BESS_1", "soc_frac"): 0.5})
        h.record_decision(t, "mpc", {"status": "optimal", "fallback": None, "solve_s": 0.2,
                                     "planned_import_mw": import_mw})
    h.upsert_sessions(T0, [StoredSession(
        id="s1", site="EV_L7_3", connector="c1", arrival=T0,
        departure=T0 + pd.Timedelta(minutes=30), energy_kwh=30.0, max_kw=60.0,
        energy_delivered_kwh=0.0)])
    h.record_session_end(T0 + pd.Timedelta(minutes=30), "s1", energy_kwh)
    return run


@pytest.fixture
def two_runs(tmp_path):
    db = tmp_path / "h.sqlite"
    with Historian(db) as h:
        h.set_meta("model", "jiuke_oasis")
        _run(h, "start", 20.0, 4, 30.0)  # the simulator, then started again at the same time
        _run(h, "start", 12.0, 3, 25.0)
        h.begin_run("start")  # a restart that has not stepped yet
        h.record_event(None, "connected")
    return db


def test_a_report_is_of_the_last_run_that_stepped_and_never_merges_runs(two_runs, tmp_path):
    _, last = write_run_report(two_runs, tmp_path / "last.html")
    _, first = write_run_report(two_runs, tmp_path / "first.html", run=1)
    assert last["run"] == 2 and last["runs_in_historian"] == 3
    assert last["steps"] == 3 and first["steps"] == 4
    assert last["measured_peak_import_mw"] == 12.0 and first["measured_peak_import_mw"] == 20.0
    # 45 and 60 minutes of polls: the energy of each run alone
    assert last["measured_energy_import_mwh"] == pytest.approx(12.0 * 45 / 60)
    assert first["measured_energy_import_mwh"] == pytest.approx(20.0 * 60 / 60)
    assert last["ev_sessions_ended"] == 1 and last["ev_energy_owed_at_departure_kwh"] == 5.0
    assert first["ev_energy_owed_at_departure_kwh"] == 0.0
    page = (tmp_path / "last.html").read_text(encoding="utf-8")
    assert "run 2" in page and "reported: run 2" in page


def test_gridctl_report_lists_the_runs_and_reports_the_one_asked_for(two_runs, tmp_path, capsys):
    assert main(["report", "--db", str(two_runs), "--out", str(tmp_path / "r.html"),
                 "--run", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [line for line in out if line[2:].startswith("run ")]
    assert len(listed) == 3 and listed[0].startswith("* run 1 (start")
    assert "4 decisions" in listed[0] and "no field time yet" in listed[2]
    assert "steps: 4" in out and "run: 1" in out


def test_gridctl_report_refuses_a_run_the_historian_does_not_hold(two_runs, tmp_path, capsys):
    assert main(["report", "--db", str(two_runs), "--out", str(tmp_path / "r.html"),
                 "--run", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--run" in err and "no such run" in err and "1, 2, 3" in err
    assert not (tmp_path / "r.html").exists()


def test_a_report_shows_downsampled_days_as_their_15_minute_means(tmp_path):
    db = tmp_path / "h.sqlite"
    with Historian(db, settings=HistorianSettings(raw_days=1 / 24)) as h:
        h.set_meta("model", "jiuke_oasis")
        _run(h, "start", 20.0, 8, 30.0)  # two hours: the first one downsampled
        while h.maintain(T0 + pd.Timedelta(hours=2)).frames_downsampled:
            pass
        assert h.measurements().t.min() == T0 + pd.Timedelta(hours=1)
    _, kpis = write_run_report(db, tmp_path / "r.html")
    assert kpis["from"] == T0.isoformat() and kpis["steps"] == 8
    assert kpis["measured_peak_import_mw"] == 20.0
    assert kpis["measured_energy_import_mwh"] == pytest.approx(20.0 * 2)
