"""Real EV session data: unservable sessions kept and reported, midnight, several days, time zones.

ACN-Data holds sessions whose recorded energy exceeds what the connector could give in the
recorded stay; they are planned at the most they can get and reported apart from any shortfall
the grid or the plan causes. A plan may span up to a week, and the model's site says the clock.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controllers.dayahead import run_dayahead, sessions_at_start, unservable_sessions
from controllers.ev_charging import allocate_site
from forecasts.bundle import build
from forecasts.errors import ForecastInputError, ForecastInputWarning
from forecasts.ev_csv import read_ev_sessions_csv
from forecasts.ev_generator import generate_sessions
from forecasts.tariffs import DEFAULT_FLAT_PRICE_CNY_PER_KWH
from forecasts.timegrid import local_days
from gridctl.cli import main
from gridctl.commands.dayahead import write_dayahead_outputs
from gridctl.historian import Historian, StoredSession
from gridctl.run_report import write_run_report

DAY = dt.date(2026, 7, 15)
SH = "Asia/Shanghai"
HEADER = "sessionID,stationID,connectionTime,disconnectTime,kWhDelivered"
WHY = "needs 42.0 kWh, at most 31.5 kWh in its 4.5 h stay at 7 kW"


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _delivered_kwh(result, session_id: str, mask=None) -> float:
    p = result.plan.schedule.ev_session_p_kw[session_id].to_numpy()
    if mask is not None:
        p = p[mask]
    return float(p.sum() * result.bundle.step_h)


# --- one unservable session in a real file ------------------------------------------------------

REAL_DAY = [
    # 7 kW for 4.5 h is 31.5 kWh: the record says 42 (times rounded, or the car's own figure)
    "greedy,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42",
    "commuter,EV_L1_1,2026-07-15 08:30,2026-07-15 17:30,20",
    "shopper,EV_L2_1,2026-07-15 12:00,2026-07-15 16:00,10",
    "taxi,EV_L3_1,2026-07-15T12:00:00+08:00,2026-07-15T13:00:00+08:00,30",
]


@pytest.fixture(scope="module")
def real_day(jiuke, tmp_path_factory):
    path = _csv(tmp_path_factory.mktemp("real") / "acn.csv", REAL_DAY)
    with pytest.warns(ForecastInputWarning, match=r"1 of 4 sessions cannot be fully served"):
        bundle = build(jiuke, DAY, "24h", seed=0, ev_sessions=path)
    return run_dayahead(jiuke, DAY, bundle=bundle)


def test_the_reader_keeps_a_session_its_stay_cannot_serve_and_names_its_row(jiuke, tmp_path):
    path = _csv(tmp_path / "acn.csv", REAL_DAY)
    with pytest.warns(ForecastInputWarning) as caught:
        sessions = {s.id: s for s in read_ev_sessions_csv(path, jiuke.registry.ev_sites)}
    assert len(sessions) == 4
    text = str(caught[0].message)
    assert str(path) in text and f"row 2 (greedy): {WHY}" in text and "10.5 kWh" in text
    greedy = sessions["greedy"]
    assert greedy.energy_kwh == 42.0  # the record is kept as it was asked for
    assert greedy.servable_kwh == pytest.approx(31.5)
    assert greedy.unservable_kwh == pytest.approx(10.5)
    assert greedy.unservable_reason() == WHY
    assert all(s.is_feasible() for sid, s in sessions.items() if sid != "greedy")


def test_an_unservable_session_is_planned_at_its_maximum_and_the_rest_are_served(real_day):
    r = real_day
    assert r.kpis["ac_validated"]
    # planned at the most it can get: 7 kW over the whole 4.5 h stay
    assert _delivered_kwh(r, "greedy") == pytest.approx(31.5, abs=0.01)
    for sid, kwh in (("commuter", 20.0), ("shopper", 10.0), ("taxi", 30.0)):
        assert _delivered_kwh(r, sid) == pytest.approx(kwh, abs=1e-3), sid
    k = r.kpis
    assert k["ev_sessions_unservable"] == 1
    assert k["ev_energy_unservable_mwh"] == pytest.approx(0.0105, abs=1e-5)
    assert k["ev_energy_short_by_grid_or_plan_mwh"] == pytest.approx(0.0, abs=1e-5)
    assert k["ev_energy_shortfall_mwh"] == pytest.approx(0.0105, abs=1e-5)
    assert r.plan.record.ev_shortfall_kwh == {"greedy": pytest.approx(10.5, abs=0.01)}
    assert any("unservable on their own" in n and "greedy" in n for n in r.plan.record.notes)


def test_the_per_site_split_of_the_planned_site_power_gives_it_its_maximum(real_day, jiuke):
    r = real_day
    site = jiuke.registry["EV_L2_1"]
    row = [s.id for s in jiuke.registry.ev_sites].index(site.id)
    states = sessions_at_start(r.bundle)
    split = allocate_site(site, states, r.plan.solution.ev_p_mw[row], r.bundle.index,
                          r.bundle.step_h)
    kwh = dict(zip(split.session_ids, split.p_kw.sum(axis=1) * r.bundle.step_h, strict=True))
    assert kwh["greedy"] == pytest.approx(31.5, abs=0.01)
    assert kwh["shopper"] == pytest.approx(10.0, abs=1e-3)
    stay = (r.bundle.index >= pd.Timestamp("2026-07-15 10:00", tz=SH)) & (
        r.bundle.index < pd.Timestamp("2026-07-15 14:30", tz=SH))
    at_greedy = r.plan.schedule.ev_session_p_kw["greedy"].to_numpy()
    assert np.allclose(at_greedy[stay], 7.0, atol=0.01) and np.all(at_greedy[~stay] == 0)


def test_the_outputs_report_it_as_unservable_with_its_shortfall_and_why(real_day, tmp_path):
    written = write_dayahead_outputs(real_day, tmp_path, model_name="jiuke_oasis")
    assert {p.name for p in written} >= {"sessions.csv", "decision.json", "report.html"}
    table = pd.read_csv(tmp_path / "sessions.csv").set_index("session_id")
    greedy = table.loc["greedy"]
    assert greedy.energy_requested_kwh == 42.0 and greedy.energy_servable_kwh == 31.5
    assert greedy.unservable_kwh == 10.5 and greedy.short_by_grid_or_plan_kwh == 0.0
    assert greedy.unservable_why == WHY
    assert (table.drop("greedy").unservable_kwh == 0).all()
    decision = json.loads((tmp_path / "decision.json").read_text(encoding="utf-8"))
    [entry] = decision["ev_unservable_sessions"]
    assert entry["session_id"] == "greedy" and entry["why"] == WHY
    assert entry["energy_planned_kwh"] == pytest.approx(31.5, abs=0.01)
    assert entry["unservable_kwh"] == 10.5
    assert decision["kpis"]["ev_energy_unservable_mwh"] == pytest.approx(0.0105, abs=1e-5)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "unservable on its own" in page and WHY in page
    assert unservable_sessions(real_day.bundle, sessions_at_start(real_day.bundle),
                               real_day.plan.schedule) == decision["ev_unservable_sessions"]


@pytest.mark.parametrize(
    ("rows", "row", "column", "what"),
    [
        (["a,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42",
          "b,EV_L2_1,2026-07-15 09:00,2026-07-15 08:00,5"], 3, "disconnectTime",
         "not after arrival"),
        (["a,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42",
          "b,EV_L2_1,half past ten,2026-07-15 14:30,5"], 3, "connectionTime",
         "expected a date and time"),
        (["a,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42",
          "b,EV_L9_9,2026-07-15 10:00,2026-07-15 14:30,5"], 3, "stationID", "unknown charger"),
        (["a,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42",
          "b,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,nan"], 3, "kWhDelivered", "NaN"),
    ],
)
def test_bad_rows_next_to_an_unservable_one_are_still_refused_naming_file_row_and_column(
        jiuke, tmp_path, rows, row, column, what):
    path = _csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ForecastInputError, match=what) as err:
        read_ev_sessions_csv(path, jiuke.registry.ev_sites)
    assert (err.value.source, err.value.row, err.value.field) == (str(path), row, column)


def test_overlapping_and_unknown_connectors_are_still_refused(jiuke, tmp_path):
    head = HEADER + ",connector"
    path = tmp_path / "c.csv"
    path.write_text(f"{head}\na,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42,c1\n"
                    "b,EV_L2_1,2026-07-15 14:00,2026-07-15 16:00,5,c1\n", encoding="utf-8")
    with pytest.raises(ForecastInputError, match="overlaps the session in row 2") as err:
        read_ev_sessions_csv(path, jiuke.registry.ev_sites)
    assert (err.value.row, err.value.field) == (3, "connectionTime")
    path.write_text(f"{head}\na,EV_L2_1,2026-07-15 10:00,2026-07-15 14:30,42,c99\n",
                    encoding="utf-8")
    with pytest.raises(ForecastInputError, match="unknown connector") as err:
        read_ev_sessions_csv(path, jiuke.registry.ev_sites)
    assert (err.value.row, err.value.field) == (2, "connector")


# --- the run report: unservable on its own apart from short by the grid or the plan ----------

T0 = pd.Timestamp("2026-07-15 08:00", tz=SH)


def _session(sid: str, hours: float, requested: float, delivered: float) -> StoredSession:
    return StoredSession(id=sid, site="EV_L2_1", connector=f"c{len(sid)}",
                         arrival=T0, departure=T0 + pd.Timedelta(hours=hours),
                         energy_kwh=requested, max_kw=7.0,
                         energy_delivered_kwh=delivered)


def test_the_run_report_separates_unservable_sessions_from_those_the_grid_left_short(tmp_path):
    db = tmp_path / "h.sqlite"
    sessions = [
        _session("greedy", 4.5, 42.0, 31.5),  # got all it could: unservable only
        _session("short", 4.0, 20.0, 15.0),  # could have had 20: the plan's 5 kWh
        _session("both", 4.5, 42.0, 25.0),  # 10.5 unservable and 6.5 the plan's
        _session("served", 4.0, 10.0, 10.0),
    ]
    with Historian(db) as h:
        h.set_meta("model", "jiuke_oasis")
        h.begin_run("start")
        for k in range(20):
            t = T0 + pd.Timedelta(minutes=15 * k)
            h.record_measurements(t, {("A_T1", "p_mw"): 10.0, ("BESS_1", "soc_frac"): 0.5,
                                      ("EV_L2_1", "p_charge_kw"): 7.0, ("M_1", "v_pu"): 1.0})
            h.record_decision(t, "mpc", {"status": "optimal", "fallback": None, "solve_s": 0.2,
                                         "planned_import_mw": 10.0})
        h.upsert_sessions(T0, sessions)
        for s in sessions:
            h.record_session_end(s.departure, s.id, s.energy_delivered_kwh)
    _, k = write_run_report(db, tmp_path / "r.html")
    assert k["ev_sessions_ended"] == 4
    assert k["ev_energy_owed_at_departure_kwh"] == pytest.approx(10.5 + 5.0 + 17.0)
    assert k["ev_sessions_unservable_on_their_own"] == 2
    assert k["ev_energy_unservable_on_their_own_kwh"] == pytest.approx(21.0)
    assert k["ev_energy_short_by_grid_or_plan_kwh"] == pytest.approx(5.0 + 6.5)
    assert k["ev_sessions_short_by_grid_or_plan_over_0_5_kwh"] == 2
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"unservable on its own: greedy at EV_L2_1 c6: {WHY}" in page


# --- midnight and several days ------------------------------------------------------------------

def test_a_session_across_midnight_is_planned_and_served_on_both_sides(jiuke, tmp_path):
    path = _csv(tmp_path / "night.csv", [
        # 14 kWh at 7 kW in a 2 h stay: full power on both sides of midnight
        "night,EV_L2_5,2026-07-15 23:00,2026-07-16 01:00,14",
        "late,EV_L2_5,2026-07-15 20:00,2026-07-16 07:00,30",
        "morning,EV_L1_1,2026-07-16 08:30,2026-07-16 17:00,12",
    ])
    start, horizon = local_days(DAY, 2, SH)
    r = run_dayahead(jiuke, DAY, bundle=build(jiuke, start, horizon, ev_sessions=path))
    assert len(r.bundle.index) == 2 * 96 and r.kpis["ac_validated"]
    before = r.bundle.index < pd.Timestamp("2026-07-16", tz=SH)
    assert _delivered_kwh(r, "night", before) == pytest.approx(7.0, abs=0.01)
    assert _delivered_kwh(r, "night", ~before) == pytest.approx(7.0, abs=0.01)
    for sid, kwh in (("late", 30.0), ("morning", 12.0)):
        assert _delivered_kwh(r, sid) == pytest.approx(kwh, abs=1e-3)
    assert r.kpis["ev_energy_shortfall_mwh"] == 0


def test_a_two_day_plan_serves_every_vehicle_that_stays_over_the_first_night(jiuke):
    r = run_dayahead(jiuke, DAY, days=2)
    idx = r.bundle.index
    assert len(idx) == 192 and idx[0] == pd.Timestamp("2026-07-15", tz=SH)
    assert idx[-1] == pd.Timestamp("2026-07-16 23:45", tz=SH)
    midnight = pd.Timestamp("2026-07-16", tz=SH)
    overnight = [s for s in r.bundle.ev_sessions
                 if s.arrival >= idx[0] and s.arrival < midnight < s.departure <= r.bundle.end]
    assert len(overnight) > 100  # residential evenings and depot buses
    delivered = r.plan.schedule.ev_session_p_kw.sum(axis=0) * r.bundle.step_h
    got = np.array([delivered[s.id] for s in overnight])
    assert np.allclose(got, [s.energy_kwh for s in overnight], atol=1e-3)
    assert r.kpis["ev_energy_shortfall_mwh"] == 0 and r.kpis["ac_validated"]


def _repeated(bundle, days: int, model):
    """``bundle``'s day ``days`` times in a row: the same loads, PV, prices and carbon, and its
    sessions that begin and end inside it again each day."""
    start, horizon = local_days(bundle.start.date(), days, str(bundle.index.tz))
    long = build(model, start, horizon, seed=0)
    n = len(bundle.index)

    def tile(x):
        values = np.tile(x.to_numpy(), (days, 1) if x.ndim == 2 else days)
        return type(x)(values, index=long.index, **(
            {"columns": x.columns} if x.ndim == 2 else {"name": x.name}))

    inside = [s for s in bundle.ev_sessions if s.arrival >= bundle.start
              and s.departure <= bundle.end]
    sessions = tuple(
        replace(s, id=f"{s.id}/d{k}", arrival=s.arrival + pd.Timedelta(days=k),
                departure=s.departure + pd.Timedelta(days=k))
        for k in range(days) for s in inside)
    assert len(long.index) == days * n
    return replace(long, pv_p_mw=tile(bundle.pv_p_mw), load_p_mw=tile(bundle.load_p_mw),
                   load_q_mvar=tile(bundle.load_q_mvar),
                   price_cny_per_kwh=tile(bundle.price_cny_per_kwh),
                   carbon_kg_per_kwh=tile(bundle.carbon_kg_per_kwh),
                   temperature_c=tile(bundle.temperature_c), ev_sessions=sessions)


def test_two_identical_days_cost_twice_one_within_what_the_batteries_can_carry_over(jiuke):
    one = _repeated(build(jiuke, DAY, "24h", seed=0), 1, jiuke)
    two = _repeated(one, 2, jiuke)
    r1 = run_dayahead(jiuke, DAY, bundle=one)
    r2 = run_dayahead(jiuke, DAY, bundle=two)
    assert r1.kpis["ac_validated"] and r2.kpis["ac_validated"]
    assert r2.kpis["ev_sessions"] == 2 * r1.kpis["ev_sessions"]
    assert r2.kpis["ev_energy_shortfall_mwh"] == 0 == r1.kpis["ev_energy_shortfall_mwh"]
    # each battery ends where it started (the terminal target) in both plans; in between the two
    # days may differ by what the batteries carry over midnight, at most a full battery each
    # bought at the day's lowest price and sold at its highest
    price = one.price_cny_per_kwh.to_numpy()
    carry_cny = sum(b.e_mwh for b in jiuke.registry.bess) * 1000.0 * (price.max() - price.min())
    assert abs(r2.kpis["cost_cny"] - 2 * r1.kpis["cost_cny"]) <= carry_cny
    assert r2.kpis["energy_import_mwh"] == pytest.approx(2 * r1.kpis["energy_import_mwh"],
                                                         rel=0.01)
    # the peak weight is a day's share of the demand charge, so two days weigh it twice: the
    # same day twice is planned to the same peak (with one share it rose by 2 MW)
    assert r2.kpis["peak_import_mw"] == pytest.approx(r1.kpis["peak_import_mw"], abs=0.2)
    soc = r2.plan.schedule.bess_soc_frac.iloc[-1]
    for b in jiuke.registry.bess:
        assert soc[b.id] == pytest.approx(b.soc_init_frac, abs=0.01)


def test_dayahead_days_plans_the_whole_horizon_and_refuses_more_than_a_week(tmp_path, capsys):
    out = tmp_path / "two"
    assert main(["dayahead", "--date", "2026-07-15", "--days", "2", "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["days"] == 2
    schedule = pd.read_csv(out / "schedule.csv", index_col=0)
    assert len(schedule) == 192
    assert schedule.index[-1].startswith("2026-07-16 23:45")
    decision = json.loads((out / "decision.json").read_text(encoding="utf-8"))
    assert decision["horizon"]["steps"] == 192
    assert decision["horizon"]["end"] == "2026-07-17T00:00:00+08:00"
    assert "2026-07-15 to 2026-07-16" in (out / "report.html").read_text(encoding="utf-8")
    for days in ("0", "8"):
        target = tmp_path / f"d{days}"
        assert main(["dayahead", "--days", days, "--out", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--days" in err and "1 to 7" in err
        assert "Traceback" not in err and not target.exists()


# --- the model's time zone ----------------------------------------------------------------------

BERLIN = "Europe/Berlin"
SPRING = dt.date(2026, 3, 29)  # clocks go from 02:00 CET to 03:00 CEST: a 23-hour day


@pytest.fixture(scope="module")
def berlin(jiuke):
    return replace(jiuke, site=replace(jiuke.site, timezone=BERLIN))


def _local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=BERLIN)


def test_a_grid_in_berlin_plans_its_local_day_on_its_local_tariff_clock(berlin, tmp_path):
    path = _csv(tmp_path / "utc.csv", [
        # stamped in UTC: 19:00 to midnight on the Berlin clock (CEST, +02:00)
        "evening,EV_L2_1,2026-03-29T17:00:00Z,2026-03-29T22:00:00Z,7",
        # naive: local time of the model's site
        "office,EV_L1_1,2026-03-29 08:30,2026-03-29 17:00,10",
    ])
    start, horizon = local_days(SPRING, 1, BERLIN)
    bundle = build(berlin, start, horizon, seed=0, ev_sessions=path)
    idx = bundle.index
    assert str(idx.tz) == BERLIN and len(idx) == 92  # 23 h of quarter-hours
    assert idx[0] == _local("2026-03-29 00:00") and idx[-1] == _local("2026-03-29 23:45")
    price = bundle.price_cny_per_kwh
    flat = DEFAULT_FLAT_PRICE_CNY_PER_KWH
    # March: peak 08-11 and 18-21 (x1.6), flat 21-22, valley 22-06 (x0.5), on the local clock
    assert price[_local("2026-03-29 19:00")] == pytest.approx(1.6 * flat)
    assert price[_local("2026-03-29 17:45")] == pytest.approx(flat)
    assert price[_local("2026-03-29 22:00")] == pytest.approx(0.5 * flat)
    assert price[_local("2026-03-29 03:00")] == pytest.approx(0.5 * flat)
    by_id = {s.id: s for s in bundle.ev_sessions}
    assert by_id["evening"].arrival == _local("2026-03-29 19:00")
    assert by_id["office"].arrival == _local("2026-03-29 08:30")
    r = run_dayahead(berlin, SPRING, bundle=bundle)
    assert r.kpis["ac_validated"] and r.kpis["ev_energy_shortfall_mwh"] == 0
    hour = np.asarray(idx.hour)
    # the evening car charges in the local valley (22-24), none of it in the local peak
    assert _delivered_kwh(r, "evening", (hour >= 18) & (hour < 21)) == pytest.approx(0, abs=0.01)
    assert _delivered_kwh(r, "evening", hour >= 22) == pytest.approx(7.0, abs=0.01)


def test_run_dayahead_plans_the_models_local_day_across_a_clock_change(berlin):
    autumn = dt.date(2026, 10, 25)  # 03:00 CEST back to 02:00 CET: a 25-hour day
    r = run_dayahead(berlin, autumn)
    idx = r.bundle.index
    assert len(idx) == 100 and str(idx.tz) == BERLIN
    assert idx[0] == _local("2026-10-25 00:00") and idx[-1] == _local("2026-10-25 23:45")
    assert r.kpis["ac_validated"]
    # office commuters arrive in the morning of the local clock
    office = [s for s in r.bundle.ev_sessions
              if s.site == "EV_L1_1" and s.arrival.date() == autumn]
    assert office and all(6.5 <= s.arrival.hour + s.arrival.minute / 60 <= 11 for s in office)


def test_generated_sessions_follow_the_local_clock_of_their_zone(jiuke):
    sites = [s for s in jiuke.registry.ev_sites if s.site_type == "office_ac"]
    day = pd.Timestamp("2026-07-15", tz=BERLIN)
    sessions = generate_sessions(sites, day, day + pd.Timedelta(days=1), seed=0)
    hours = np.array([s.arrival.hour + s.arrival.minute / 60 for s in sessions])
    assert len(hours) > 50 and hours.min() >= 6.5 and hours.max() <= 11
    assert all(str(s.arrival.tz) == BERLIN for s in sessions)


def test_a_naive_time_the_clocks_skip_is_refused_naming_row_and_column(berlin, tmp_path):
    path = _csv(tmp_path / "skip.csv", [
        "ok,EV_L2_1,2026-03-29 01:00,2026-03-29 05:00,5",
        "skipped,EV_L2_1,2026-03-29 02:30,2026-03-29 06:00,5",
    ])
    with pytest.raises(ForecastInputError, match="not a single local time") as err:
        read_ev_sessions_csv(path, berlin.registry.ev_sites, tz=BERLIN)
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 3, "connectionTime")


def test_naive_times_next_to_utc_ones_are_local_time_not_utc(jiuke, tmp_path):
    # pandas reads a column of "Z" and naive times all as UTC; naive ones are the site's clock
    path = _csv(tmp_path / "mixed.csv", [
        "utc,EV_L2_1,2026-07-15T02:00:00Z,2026-07-15T06:00:00Z,5",
        "local,EV_L2_1,2026-07-15 10:00,2026-07-15 14:00,5",
    ])
    by_id = {s.id: s for s in read_ev_sessions_csv(path, jiuke.registry.ev_sites)}
    assert by_id["utc"].arrival == pd.Timestamp("2026-07-15 10:00", tz=SH)
    assert by_id["local"].arrival == pd.Timestamp("2026-07-15 10:00", tz=SH)
